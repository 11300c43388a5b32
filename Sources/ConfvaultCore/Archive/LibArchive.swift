import CArchive
import Foundation

/// Shared facts about libarchive: its return codes, its locale trap, and its error text.
enum LibArchive {
  static let ok = ARCHIVE_OK
  static let eof = ARCHIVE_EOF
  static let warn = ARCHIVE_WARN
  static let retry = ARCHIVE_RETRY

  // AE_IF* are cast macros Swift does not import.
  static let typeMask: UInt32 = 0o170000
  static let regular: UInt32 = 0o100000
  static let directory: UInt32 = 0o040000
  static let symlink: UInt32 = 0o120000
  static let characterDevice: UInt32 = 0o020000
  static let blockDevice: UInt32 = 0o060000
  static let fifo: UInt32 = 0o010000
  static let socket: UInt32 = 0o140000

  /// Sets `LC_CTYPE` to UTF-8 once per process.
  ///
  /// Swift on Linux leaves the C locale at "C"; libarchive then refuses non-ASCII pax paths on read
  /// and crashes writing them. Every reader and writer calls this before touching libarchive.
  static func prepare() {
    _ = localeSetUp
  }

  private static let localeSetUp: Bool = {
    setlocale(LC_CTYPE, "C.UTF-8") != nil || setlocale(LC_CTYPE, "en_US.UTF-8") != nil
  }()

  /// libarchive's last error message for `archive`, which may be NULL.
  static func message(_ archive: OpaquePointer?, fallback: String) -> String {
    guard let archive, let text = archive_error_string(archive) else { return fallback }
    return String(cString: text)
  }

  /// The `errno` libarchive recorded for its last error, 0 if none.
  static func errorNumber(_ archive: OpaquePointer?) -> Int32 {
    guard let archive else { return 0 }
    return archive_errno(archive)
  }

  /// A human name for a tar entry's type.
  static func typeName(_ type: UInt32) -> String {
    switch type {
    case symlink: return "symbolic link"
    case directory: return "directory"
    case characterDevice: return "character device"
    case blockDevice: return "block device"
    case fifo: return "FIFO"
    case socket: return "socket"
    default: return "an entry of a kind tar readers do not agree on (file type bits 0o\(String(type, radix: 8)))"
    }
  }
}
