import ConfvaultCore
import Foundation

/// A string from an archive or the store, as it may be printed: see `SafeText`.
func safe(_ text: String) -> String { SafeText.escaping(text) }

/// Where the executable writes: data on standard output, messages and progress on standard error.
enum Terminal {
  static func error(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
  }

  static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

  /// Replaces the line standard error's cursor is on with `line` (a progress line); "" clears it.
  static func redraw(_ line: String) {
    FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
  }

  /// Whether to colour standard output: only on a terminal, and never when `NO_COLOR` is set.
  static var colours: Bool {
    isTerminal(STDOUT_FILENO) && ProcessInfo.processInfo.environment["NO_COLOR"] == nil
  }
}

/// Prints JSON values the same way everywhere: sorted keys, no escaped slashes.
enum JSONOutput {
  static func print<Value: Encodable>(_ value: Value, to handle: FileHandle = .standardOutput) throws {
    let data = try JSONCoding.encoder().encode(value)
    handle.write(data + Data("\n".utf8))
  }
}
