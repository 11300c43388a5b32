/// What kind of failure an error is, so that the executable can map it to one exit code.
///
/// The library never exits; it says what happened. The mapping to the sysexits codes of
/// PRODUCT.md lives in one place in the executable.
public enum FailureKind: String, Sendable, Equatable, Codable {
  /// Not found, conflict, inconsistency: the operation could not be done.
  case operationFailed
  /// The command line itself is wrong.
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

/// An error Confvault reports to a person: its description says what happened, to what, and what to do.
public protocol ConfvaultError: Error, CustomStringConvertible {
  var kind: FailureKind { get }
}

/// A failure that is fully described by a sentence and a kind.
public struct OperationError: ConfvaultError, Equatable {
  public var kind: FailureKind
  public var message: String

  public init(_ kind: FailureKind, _ message: String) {
    self.kind = kind
    self.message = message
  }

  public var description: String { message }
}
