import Foundation
import Testing

/// `confvault serve` run the way a user runs it, on a free loopback port, over a store fixture;
/// stopped with SIGTERM when the value goes away.
final class ServerProcess: @unchecked Sendable {
  let process = Process()
  let store: StoreFixture
  /// `http://127.0.0.1:PORT`
  private(set) var baseURL = ""
  /// The one-time sign-in link printed at start, when asked for.
  private(set) var signInLink: String?
  private let output = Pipe()
  private var printed = ""

  /// Starts the server over `store`, with `arguments` added to `serve --port 0`.
  init(store: StoreFixture, arguments: [String] = [], environment: [String: String] = [:]) throws {
    self.store = store
    process.executableURL = URL(fileURLWithPath: Harness.binary)
    process.arguments = ["serve", "--port", "0"] + arguments
    process.environment = ProcessInfo.processInfo.environment.merging(store.environment) { _, new in new }
      .merging(environment) { _, new in new }
    process.standardOutput = output
    process.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try process.run()
    let deadline = Date().addingTimeInterval(30)
    while Date() < deadline {
      let data = output.fileHandleForReading.availableData
      if data.isEmpty { break }
      printed += String(decoding: data, as: UTF8.self)
      if let line = printed.split(separator: "\n").first(where: { $0.hasPrefix("confvault serving ") }) {
        baseURL = String(line.split(separator: " ").last!)
        let wantsLink = arguments.contains("--sign-in-link")
        if !wantsLink || printed.contains("sign in as ") { break }
      }
    }
    signInLink = printed.split(separator: "\n").first { $0.hasPrefix("sign in as ") }.map {
      String($0.split(separator: " ").last!)
    }
    #expect(!baseURL.isEmpty, "the server printed where it listens: \(printed)")
  }

  /// Sends SIGTERM and waits for the exit status.
  @discardableResult
  func stop() -> Int32 {
    if process.isRunning {
      process.terminate()
      process.waitUntilExit()
    }
    return process.terminationStatus
  }

  deinit { stop() }

  /// Runs `curl` against the server: the status code on the last line of stdout, after the body.
  /// The last argument is the request's path, made a URL of this server.
  func curl(_ arguments: [String]) throws -> (status: Int, body: String) {
    let outcome = try Harness.run(
      "/usr/bin/env", ["curl", "-s", "-w", "\n%{http_code}"] + arguments.dropLast() + [baseURL + arguments.last!])
    let lines = outcome.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
  }
}
