import ConfvaultCore
import PostgresNIO

/// Turns PostgreSQL's failures into Confvault's kinds: a taken name is a conflict, a database that
/// cannot be reached or is starting is a temporary failure (75, 503), a full disk an I/O error (74, 507).
enum PostgresFailure {
  /// SQLSTATEs after which the whole transaction is tried again: serialisation failures and deadlocks.
  static let retryable: Set<String> = ["40001", "40P01"]

  static func sqlState(_ error: any Error) -> String? {
    (error as? PSQLError)?.serverInfo?[.sqlState]
  }

  static func isRetryable(_ error: any Error) -> Bool {
    sqlState(error).map(retryable.contains) ?? false
  }

  /// Why a connection failed, in a few words ("connection refused"): the socket's error when there is
  /// one, else the client's code for it.
  static func reason(_ error: PSQLError) -> String {
    var underlying = error.underlying
    if let connection = underlying as? NIOConnectionError {
      underlying = connection.connectionErrors.first?.error ?? connection.dnsAError ?? connection.dnsAAAAError
    }
    if let failure = underlying as? IOError { return String(cString: strerror(failure.errnoCode)).lowercased() }
    if case .connectTimeout = underlying as? ChannelError { return "no answer in time" }
    return "\(error.code)"
  }

  /// Why the client refused the server's TLS (its certificate), in words; nil when TLS is not why the
  /// connection failed.
  static func tlsRefusal(_ error: PSQLError) -> String? {
    switch error.underlying {
    case let failure as NIOSSLExtraError where failure == .failedToValidateHostname:
      return "its TLS certificate does not name the host of the URL (sslmode=verify-full checks the name, "
        + "verify-ca does not)"
    case .handshakeFailed(let failure) as NIOSSLError where "\(failure)".contains("CERTIFICATE_VERIFY_FAILED"):
      return "its TLS certificate is not signed by an authority the URL's sslrootcert file holds (without "
        + "sslrootcert, the system's trusted authorities)"
    case .handshakeFailed(let failure) as NIOSSLError:
      // A connection cut in the middle of the handshake is an outage, as before TLS.
      if case .syscallError = failure { return nil }
      return "the TLS handshake failed (\(failure))"
    case .unableToValidateCertificate as NIOSSLError, .noCertificateToValidate as NIOSSLError:
      return "its TLS certificate could not be checked"
    default:
      return nil
    }
  }

  /// The error to report for `error`, met on the store `store`; an `OperationError` passes unchanged.
  static func translate(_ error: any Error, store: String) -> any Error {
    if error is OperationError || error is CancellationError { return error }
    guard let error = error as? PSQLError else {
      return OperationError(.internal, "store `\(store)`: \(error)", cause: error)
    }
    let unreachable = OperationError(
      .temporaryFailure,
      "the PostgreSQL server of the store `\(store)` cannot be reached (\(reason(error))); nothing was changed, try "
        + "again when it is running",
      cause: error)
    guard let state = error.serverInfo?[.sqlState] else {
      // Before the generic "cannot be reached": a certificate that does not verify is no outage, and
      // trying again does not help.
      if let refusal = tlsRefusal(error) {
        return OperationError(
          .operationFailed,
          "the PostgreSQL server of the store `\(store)` was not trusted: \(refusal); nothing was changed",
          cause: error)
      }
      switch error.code {
      case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed:
        return unreachable
      case .sslUnsupported:
        return OperationError(
          .operationFailed,
          "the PostgreSQL server of the store `\(store)` does not offer TLS, which its URL requires (sslmode)",
          cause: error)
      case .authMechanismRequiresPassword, .unsupportedAuthMechanism, .saslError:
        return OperationError(
          .permissionDenied,
          "the PostgreSQL server of the store `\(store)` refused to sign in (\(error.code)); give the password in "
            + "PGPASSWORD or ~/.pgpass",
          cause: error)
      default:
        return OperationError(.internal, "store `\(store)`: \(error.code)", cause: error)
      }
    }
    let message = error.serverInfo?[.message] ?? "\(error.code)"
    switch state {
    case "23505":
      return OperationError(.conflict, "store `\(store)`: \(message); nothing was changed", cause: error)
    case "40001", "40P01", "55P03":
      return OperationError(
        .temporaryFailure, "the store `\(store)` is busy with other writers (\(message)); try again", cause: error)
    case "53100":
      return OperationError(
        .ioError, "the disk of the PostgreSQL server of the store `\(store)` is full; nothing was changed",
        cause: error)
    case "57P01", "57P02", "57P03", "53300":
      return OperationError(
        .temporaryFailure,
        "the PostgreSQL server of the store `\(store)` is not accepting work now (\(message)); try again", cause: error)
    case "28000" where message.contains("no pg_hba.conf entry"):
      // Not a password: the server's pg_hba.conf takes no connection like this one (without TLS, say).
      let tls =
        message.hasSuffix("no encryption")
        ? "; it refuses connections without TLS: set sslmode=require (or verify-full) in the URL, not disable" : ""
      return OperationError(
        .permissionDenied, "the PostgreSQL server of the store `\(store)` refused the connection: \(message)\(tls)",
        cause: error)
    case "28000", "28P01":
      return OperationError(
        .permissionDenied,
        "the PostgreSQL server of the store `\(store)` refused to sign in: \(message) (the password comes from "
          + "PGPASSWORD or ~/.pgpass)",
        cause: error)
    case "42501":
      return OperationError(.permissionDenied, "store `\(store)`: \(message)", cause: error)
    case "3D000":
      return OperationError(
        .inputUnreadable,
        "store `\(store)`: \(message); the database must exist (confvault makes its tables, not the database)",
        cause: error)
    case "CVA01":
      return OperationError(.operationFailed, "store `\(store)`: \(message)", cause: error)
    default:
      if state.hasPrefix("08") { return unreachable }
      if state.hasPrefix("53") {
        return OperationError(
          .temporaryFailure, "the PostgreSQL server of the store `\(store)` is short of resources: \(message)",
          cause: error)
      }
      return OperationError(.internal, "store `\(store)`: \(message) (SQLSTATE \(state))", cause: error)
    }
  }
}
