#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A failed system call on a named file, with the `errno` it left.
public struct SystemError: ConfvaultError, Equatable {
  public enum Operation: String, Sendable {
    case open = "cannot open"
    case create = "cannot create"
    case read = "cannot read"
    case write = "cannot write"
    case sync = "cannot flush to disk"
    case rename = "cannot move into place"
    case remove = "cannot remove"
    case list = "cannot list"
    case status = "cannot examine"
    case lock = "cannot lock"
  }

  public var operation: Operation
  public var path: String
  public var code: Int32

  public init(_ operation: Operation, _ path: String, code: Int32 = errno) {
    self.operation = operation
    self.path = path
    self.code = code
  }

  public var kind: FailureKind {
    switch code {
    case EACCES, EPERM, EROFS:
      return operation == .open || operation == .read || operation == .list
        ? .permissionDenied : .cannotCreateOutput
    case ENOSPC, EDQUOT, EIO, EFBIG:
      return .ioError
    case ENOENT, ENOTDIR, EISDIR:
      switch operation {
      case .open, .read, .list, .status: return .inputUnreadable
      default: return .cannotCreateOutput
      }
    default:
      switch operation {
      case .open, .list, .status: return .inputUnreadable
      case .read, .write, .sync: return .ioError
      case .create, .rename, .remove: return .cannotCreateOutput
      case .lock: return .temporaryFailure
      }
    }
  }

  public var description: String {
    let reason = String(cString: strerror(code))
    var text = "\(operation.rawValue) `\(path)`: \(reason)"
    if code == ENOSPC || code == EDQUOT {
      text += "; free some space and try again"
    }
    return text
  }
}
