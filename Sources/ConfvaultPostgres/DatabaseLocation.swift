import ConfvaultCore
import Foundation
import PostgresNIO

/// Where a PostgreSQL store is: a `postgres://user@host:port/database?sslmode=…` URL, and the
/// password found for it in `PGPASSWORD` or a `~/.pgpass`-style file, never in anything printed.
public struct DatabaseLocation: Sendable, CustomStringConvertible {
  /// How the connection is protected, as libpq's `sslmode` says it.
  public enum TLSMode: String, Sendable {
    /// No TLS.
    case disable
    /// TLS when the server offers it, without checking its certificate (libpq's default, `allow` too).
    case prefer
    /// TLS, without checking the certificate.
    case require
    /// TLS with a certificate signed by a trusted authority (`sslrootcert`, else the system's).
    case verifyCA = "verify-ca"
    /// As `verifyCA`, and the certificate names the host.
    case verifyFull = "verify-full"
  }

  public var user: String
  /// A host name or address; a path (from `?host=/dir`) is the folder of a Unix socket.
  public var host: String
  public var port: Int
  public var database: String
  public var tlsMode: TLSMode
  /// A file of trusted certificates (PEM) for `verify-ca` and `verify-full`.
  public var rootCertificate: String?
  /// Never printed, never logged.
  var password: String?

  /// Whether `text` names a PostgreSQL store rather than a folder.
  public static func isURL(_ text: String) -> Bool {
    text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
  }

  /// Reads a `postgres://` URL; the password comes from `PGPASSWORD`, else the password file.
  ///
  /// - Parameters:
  ///   - environment: the process environment (`PGPASSWORD`, `PGPASSFILE`, `PGUSER`, `HOME`).
  ///   - defaultUser: the user when neither the URL nor `PGUSER` names one (the login name).
  /// - Throws: `.usage` when the URL is not one this store understands, or holds a password.
  public init(url text: String, environment: [String: String], defaultUser: String) throws {
    func refuse(_ why: String) -> OperationError {
      OperationError(.usage, "the store URL `\(DatabaseLocation.redacted(text))` \(why)")
    }
    guard DatabaseLocation.isURL(text), let components = URLComponents(string: text) else {
      throw refuse("is not a postgres://user@host:port/database URL")
    }
    var query: [String: String] = [:]
    for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
    user = components.user.flatMap { $0.removingPercentEncoding } ?? environment["PGUSER"] ?? defaultUser
    host = query["host"] ?? components.host.flatMap { $0.isEmpty ? nil : $0 } ?? "localhost"
    port = components.port ?? 5432
    let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
    database = path.removingPercentEncoding.flatMap { $0.isEmpty ? nil : $0 } ?? user
    guard !database.contains("/") else { throw refuse("names a database with a `/` in it") }
    let mode = query["sslmode"] ?? "prefer"
    switch mode {
    case "allow": tlsMode = .prefer
    default:
      guard let known = TLSMode(rawValue: mode) else {
        throw refuse("has an unknown sslmode `\(mode)` (disable, prefer, require, verify-ca, verify-full)")
      }
      tlsMode = known
    }
    rootCertificate = query["sslrootcert"]
    let unknown = Set(query.keys).subtracting(["host", "sslmode", "sslrootcert"])
    guard unknown.isEmpty else {
      throw refuse("has parameters this store does not know: \(unknown.sorted().joined(separator: ", "))")
    }
    // A URL is printed (`init`, `serve`) and seen by every user in the process list: no password in it.
    guard components.password == nil else {
      throw refuse("holds a password; give it in PGPASSWORD or ~/.pgpass (PGPASSFILE) instead")
    }
    password =
      environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
      ?? PasswordFile(environment: environment)?.password(
        host: host.hasPrefix("/") ? "localhost" : host, port: port, database: database, user: user)
  }

  /// The URL without its password: what messages and logs show.
  public var description: String {
    let shownHost = host.hasPrefix("/") ? "localhost" : (host.contains(":") ? "[\(host)]" : host)
    var text = "postgres://\(user)@\(shownHost):\(port)/\(database)"
    var parameters: [String] = []
    if host.hasPrefix("/") { parameters.append("host=\(host)") }
    if tlsMode != .prefer { parameters.append("sslmode=\(tlsMode.rawValue)") }
    if let rootCertificate { parameters.append("sslrootcert=\(rootCertificate)") }
    if !parameters.isEmpty { text += "?" + parameters.joined(separator: "&") }
    return text
  }

  /// `text` with any password in it replaced, for a message about a URL that could not be read.
  static func redacted(_ text: String) -> String {
    guard let at = text.firstIndex(of: "@"), let scheme = text.range(of: "://"), scheme.upperBound < at,
      let colon = text[scheme.upperBound..<at].firstIndex(of: ":")
    else { return text }
    return String(text[..<colon]) + ":***" + String(text[at...])
  }

  /// The client's configuration: TLS as asked, the store's session settings.
  func clientConfiguration(lockTimeout: TimeInterval) throws -> PostgresClient.Configuration {
    var configuration: PostgresClient.Configuration
    if host.hasPrefix("/") {
      configuration = PostgresClient.Configuration(
        unixSocketPath: host + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
    } else {
      configuration = PostgresClient.Configuration(
        host: host, port: port, username: user, password: password, database: database, tls: try tls())
    }
    // Waiting for another server's lock on an app is bounded, as the SQLite store's busy timeout is.
    configuration.options.additionalStartupParameters = [
      ("application_name", "confvault"),
      ("lock_timeout", "\(Int(lockTimeout * 1000))"),
      ("TimeZone", "UTC"),
    ]
    configuration.options.maximumConnections = 8
    configuration.options.connectionIdleTimeout = .seconds(60)
    return configuration
  }

  private func tls() throws -> PostgresClient.Configuration.TLS {
    guard let (configuration, required) = try tlsSettings() else { return .disable }
    return required ? .require(configuration) : .prefer(configuration)
  }

  /// The settings of a single connection made outside the pool: to find out why the pool cannot connect.
  func connectionConfiguration(timeout: Duration) throws -> PostgresConnection.Configuration {
    var configuration: PostgresConnection.Configuration
    if host.hasPrefix("/") {
      configuration = PostgresConnection.Configuration(
        unixSocketPath: host + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
    } else {
      var tls = PostgresConnection.Configuration.TLS.disable
      if let (settings, required) = try tlsSettings() {
        let context = try NIOSSLContext(configuration: settings)
        tls = required ? .require(context) : .prefer(context)
      }
      configuration = PostgresConnection.Configuration(
        host: host, port: port, username: user, password: password, database: database, tls: tls)
    }
    configuration.options.connectTimeout = TimeAmount.milliseconds(Int64(timeout.components.seconds * 1000))
    return configuration
  }

  /// TLS as `sslmode` asks, and whether it is required; nil for none.
  private func tlsSettings() throws -> (TLSConfiguration, required: Bool)? {
    var configuration = TLSConfiguration.makeClientConfiguration()
    switch tlsMode {
    case .disable:
      return nil
    case .prefer, .require:
      // As libpq: these modes encrypt, but check no certificate.
      configuration.certificateVerification = .none
      return (configuration, tlsMode == .require)
    case .verifyCA, .verifyFull:
      configuration.certificateVerification = tlsMode == .verifyCA ? .noHostnameVerification : .fullVerification
      if let rootCertificate {
        guard FileManager.default.isReadableFile(atPath: rootCertificate) else {
          throw OperationError(.inputUnreadable, "cannot read the sslrootcert file `\(rootCertificate)`")
        }
        // Read now, so that a file of something else is said as such rather than as a failed handshake.
        guard let certificates = try? NIOSSLCertificate.fromPEMFile(rootCertificate), !certificates.isEmpty else {
          throw OperationError(
            .inputUnreadable, "the sslrootcert file `\(rootCertificate)` holds no PEM certificate")
        }
        configuration.trustRoots = .certificates(certificates)
      }
      return (configuration, true)
    }
  }
}

/// A `~/.pgpass`-style file: lines `host:port:database:user:password`, `*` matching anything, `\:`
/// and `\\` escaped. As libpq does, a file others may read is ignored.
struct PasswordFile {
  let lines: [[String]]

  init?(environment: [String: String]) {
    let path =
      environment["PGPASSFILE"].flatMap { $0.isEmpty ? nil : $0 }
      ?? (environment["HOME"] ?? NSHomeDirectory()) + "/.pgpass"
    var info = stat()
    guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o077 == 0,
      let text = try? String(contentsOfFile: path, encoding: .utf8)
    else { return nil }
    lines = text.split(separator: "\n").compactMap { line in
      guard !line.hasPrefix("#") else { return nil }
      let fields = PasswordFile.fields(String(line))
      return fields.count == 5 ? fields : nil
    }
  }

  /// The password of the first line that matches, as libpq picks it.
  func password(host: String, port: Int, database: String, user: String) -> String? {
    let wanted = [host, String(port), database, user]
    for fields in lines where zip(fields, wanted).allSatisfy({ $0 == "*" || $0 == $1 }) {
      return fields[4]
    }
    return nil
  }

  static func fields(_ line: String) -> [String] {
    var fields: [String] = []
    var current = ""
    var escaped = false
    for character in line {
      if escaped {
        current.append(character)
        escaped = false
      } else if character == "\\" {
        escaped = true
      } else if character == ":" && fields.count < 4 {
        fields.append(current)
        current = ""
      } else {
        current.append(character)
      }
    }
    fields.append(current)
    return fields
  }
}
