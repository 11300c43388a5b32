/// What kind of failure an error is, so that each front end can map it to one exit code or status.
///
/// The library never exits and never names a flag or a route; it says what happened. The mapping to
/// the sysexits codes of docs/exit-codes.md lives in one place in the executable (and to HTTP statuses in one
/// place in a server).
public enum FailureKind: String, Sendable, Equatable, Codable {
  /// The operation could not be done (a rule of the product forbids it).
  case operationFailed
  /// An app, environment, version or blob that does not exist.
  case notFound
  /// The state moved under the change: a head that moved since the change was decided, a name taken.
  case conflict
  /// A bug or damaged state: something that should not happen; the cause is kept for the logs.
  case `internal`
  /// The request itself is wrong.
  case usage
  /// An archive, manifest, checksum or entry is bad or unsafe.
  case badInput
  /// An input file is missing or unreadable.
  case inputUnreadable
  /// An output file or folder cannot be created.
  case cannotCreateOutput
  /// Reading or writing failed part way (disk full, device error).
  case ioError
  /// The store or a folder is locked by another process; retrying later may work.
  case temporaryFailure
  /// The operating system refused access.
  case permissionDenied
}

/// What a person can do about a failure, which each front end says in its own words (a flag on the
/// command line, a button on a page).
public enum Hint: Sendable, Equatable {
  /// There is no store yet: create one (with a first app).
  case createStore
  /// There is no such app: create it.
  case createApp(String)
  /// There is no such environment: create it.
  case createEnvironment(app: String, name: String)
  /// The app has no production environment: name the target, or make one production.
  case nameTargetOrCreateProduction
  /// An ordinary tar of a folder (no manifest) is read in the plain layout.
  case readAsPlain
  /// The archive is of another app; accepting it must be said explicitly.
  case allowOtherApp
  /// The output exists; replacing it must be said explicitly.
  case replaceExisting
  /// Another run holds the lock; wait for it.
  case waitForLock
  /// The store may be damaged: run its check.
  case runCheck
  /// The store was written by a newer confvault.
  case upgrade
  /// An empty configuration; accepting one must be said explicitly.
  case allowEmpty
  /// Past a limit on what a configuration may hold: raise it if that is intended.
  case raiseLimit(Limit)

  /// A limit on what a configuration may hold (`ArchiveLimits`).
  public enum Limit: String, Sendable, Equatable {
    case fileSize = "file-size"
    case totalSize = "total-size"
    case files
  }
}

/// An error Confvault reports to a person: its description says what happened, to what, and what to do.
public protocol ConfvaultError: Error, CustomStringConvertible {
  var kind: FailureKind { get }
  /// What to do about it, for the front end to say; nil when the description says it all.
  var hint: Hint? { get }
}

extension ConfvaultError {
  public var hint: Hint? { nil }
}

/// A failure that is fully described by a sentence and a kind, with the error that caused it, if any.
public struct OperationError: ConfvaultError, Sendable {
  public var kind: FailureKind
  public var message: String
  public var hint: Hint?
  /// The underlying error (a database's, the system's), for logs; never shown instead of `message`.
  public var cause: (any Error)?

  public init(_ kind: FailureKind, _ message: String, hint: Hint? = nil, cause: (any Error)? = nil) {
    self.kind = kind
    self.message = message
    self.hint = hint
    self.cause = cause
  }

  public var description: String { message }
}

extension OperationError: Equatable {
  public static func == (a: OperationError, b: OperationError) -> Bool {
    a.kind == b.kind && a.message == b.message && a.hint == b.hint
  }
}

extension Hint {
  /// A stable text form, as an HTTP problem document carries it: `create-app:NAME`.
  public var code: String {
    switch self {
    case .createStore: return "create-store"
    case .createApp(let name): return "create-app:\(name)"
    case .createEnvironment(let app, let name): return "create-environment:\(app):\(name)"
    case .nameTargetOrCreateProduction: return "name-target-or-create-production"
    case .readAsPlain: return "read-as-plain"
    case .allowOtherApp: return "allow-other-app"
    case .replaceExisting: return "replace-existing"
    case .waitForLock: return "wait-for-lock"
    case .runCheck: return "run-check"
    case .upgrade: return "upgrade"
    case .allowEmpty: return "allow-empty"
    case .raiseLimit(let limit): return "raise-limit:\(limit.rawValue)"
    }
  }

  /// The hint a `code` stands for; nil for one this confvault does not know.
  public init?(code: String) {
    let parts = code.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
    switch (parts[0], parts.count) {
    case ("create-store", 1): self = .createStore
    case ("create-app", 2): self = .createApp(parts[1])
    case ("create-environment", 3): self = .createEnvironment(app: parts[1], name: parts[2])
    case ("name-target-or-create-production", 1): self = .nameTargetOrCreateProduction
    case ("read-as-plain", 1): self = .readAsPlain
    case ("allow-other-app", 1): self = .allowOtherApp
    case ("replace-existing", 1): self = .replaceExisting
    case ("wait-for-lock", 1): self = .waitForLock
    case ("run-check", 1): self = .runCheck
    case ("upgrade", 1): self = .upgrade
    case ("allow-empty", 1): self = .allowEmpty
    case ("raise-limit", 2):
      guard let limit = Limit(rawValue: parts[1]) else { return nil }
      self = .raiseLimit(limit)
    default: return nil
    }
  }
}
