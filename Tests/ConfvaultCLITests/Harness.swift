import ConfvaultTestSupport
import Foundation
import Testing

/// What a run of a command printed and how it ended.
struct Outcome: CustomStringConvertible {
  var status: Int32
  var stdout: String
  var stderr: String
  var stdoutData: Data

  var description: String { "exit \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Runs the built `confvault` binary and other programs the way a user would.
enum Harness {
  static let packageRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }()

  /// The binary under test: `CONFVAULT_BIN`, or the debug build beside this package.
  static let binary: String =
    ProcessInfo.processInfo.environment["CONFVAULT_BIN"] ?? packageRoot + "/.build/debug/confvault"

  /// Where the binaries under test keep their stat caches (`XDG_CACHE_HOME`), unless a test names
  /// its own: a folder of this test process, removed when it exits, instead of the user's
  /// `~/.cache`, which every push of a test folder would leave a cache in.
  static let cacheHome: String = {
    let path = NSTemporaryDirectory() + "confvault-test-cache-\(getpid())"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    atexit { try? FileManager.default.removeItem(atPath: Harness.cacheHome) }
    return path
  }()

  static let fixtures = packageRoot + "/Tests/ConfvaultCLITests/Fixtures"
  static let samples = packageRoot + "/Samples/inventory"

  /// Runs `confvault` with `arguments` in `directory`, feeding `input` to its standard input.
  @discardableResult
  static func confvault(
    _ arguments: [String], in directory: String? = nil, input: String? = nil,
    environment: [String: String] = [:]
  ) throws -> Outcome {
    try run(binary, arguments, in: directory, input: input, environment: environment)
  }

  /// Runs a shell command line with `bash -c`, `pipefail` on.
  @discardableResult
  static func shell(_ command: String, in directory: String? = nil) throws -> Outcome {
    try run("/bin/bash", ["-o", "pipefail", "-c", command], in: directory)
  }

  /// Runs the fixture writer `archives.py` with `arguments`.
  @discardableResult
  static func archives(_ arguments: [String]) throws -> Outcome {
    let outcome = try run("/usr/bin/env", ["python3", fixtures + "/archives.py"] + arguments)
    #expect(outcome.status == 0, "archives.py \(arguments): \(outcome)")
    return outcome
  }

  static func run(
    _ program: String, _ arguments: [String], in directory: String? = nil, input: String? = nil,
    environment: [String: String] = [:]
  ) throws -> Outcome {
    let scratch = try TemporaryFolder()
    let process = Process()
    process.executableURL = URL(fileURLWithPath: program)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    var env = ProcessInfo.processInfo.environment
    env["NO_COLOR"] = "1"
    env["XDG_CACHE_HOME"] = cacheHome
    env.merge(environment) { _, new in new }
    process.environment = env
    let outPath = scratch.path + "/stdout"
    let errPath = scratch.path + "/stderr"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardOutput = out
    process.standardError = err
    if let input {
      let inPath = scratch.path + "/stdin"
      if input.hasPrefix("@") {
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: String(input.dropFirst())))
      } else {
        try Data(input.utf8).write(to: URL(fileURLWithPath: inPath))
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
      }
    } else {
      process.standardInput = FileHandle.nullDevice
    }
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    let stdoutData = try Data(contentsOf: URL(fileURLWithPath: outPath))
    let stderrData = try Data(contentsOf: URL(fileURLWithPath: errPath))
    return Outcome(
      status: process.terminationStatus, stdout: String(decoding: stdoutData, as: UTF8.self),
      stderr: String(decoding: stderrData, as: UTF8.self), stdoutData: stdoutData)
  }
}

/// A kind of store the binary runs over: the tests of store commands run once per kind.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
  /// A folder holding an SQLite database.
  case sqlite
  /// A new database of this process's throwaway PostgreSQL cluster (`PostgresCluster`).
  case postgres

  var testDescription: String { rawValue }

  /// What `--store` (`CONFVAULT_STORE`) names for a new, empty store of this kind, beside `folder`.
  func newStore(beside folder: TemporaryFolder) throws -> String {
    switch self {
    case .sqlite: folder.file("store")
    case .postgres: try PostgresCluster.shared().newDatabaseURL()
    }
  }
}

/// A folder under the system's temporary folder, removed when the value goes away.
final class TemporaryFolder {
  let path: String

  init() throws {
    var template = Array((NSTemporaryDirectory() + "/confvault-test-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
    path = String(cString: made)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  func file(_ name: String) -> String { path + "/" + name }

  /// Writes `text` to `name` below the folder, creating subfolders.
  func write(_ name: String, _ text: String, executable: Bool = false) throws {
    let url = URL(fileURLWithPath: file(name))
    try FileManager.default.createDirectory(
      at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try Data(text.utf8).write(to: url)
    if executable { chmod(url.path, 0o755) }
  }

  func exists(_ name: String) -> Bool { FileManager.default.fileExists(atPath: file(name)) }

  func bytes(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: file(name))) }

  /// Everything in the folder, hidden files included, by name.
  func listing() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path).sorted()
  }
}

/// The files of a folder: relative path to (SHA-256 hex, mode), computed with `sha256sum` and `stat`;
/// a checkout's record of where it came from is not one of them.
func folderFingerprint(_ folder: String) throws -> [String: String] {
  let outcome = try Harness.shell(
    "cd '\(folder)' && find . -type f -not -path ./.confvault/checkout.json -printf '%P\\0' | sort -z | xargs -0 -r sh -c 'for f; do printf \"%s %s %s\\n\" \"$(stat -c %a \"$f\")\" \"$(sha256sum < \"$f\" | cut -c1-64)\" \"$f\"; done' _"
  )
  var result: [String: String] = [:]
  for line in outcome.stdout.split(separator: "\n") {
    let parts = line.split(separator: " ", maxSplits: 2)
    result[String(parts[2])] = parts[0] + " " + parts[1]
  }
  return result
}
