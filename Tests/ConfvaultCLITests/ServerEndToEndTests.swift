import Foundation
import Testing

/// `confvault serve` through the built binary on loopback, as a team runs it: uploads from the
/// hostile corpus, concurrent uploads, a slow client, TLS, SIGTERM.
@Suite struct ServerEndToEndTests {
  /// A store with a version in development, and a token per role.
  final class Setup {
    let store: StoreFixture
    var tokens: [String: String] = [:]

    init() throws {
      store = try StoreFixture()
      try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
      for role in ["viewer", "deployer", "releaser", "admin"] {
        tokens[role] = try store.ok(["token", "create", "--name", "\(role)-token", "--role", role])
          .trimmingCharacters(in: .whitespacesAndNewlines)
      }
    }
  }

  @Test("every archive of the hostile corpus uploaded is 422 naming the entry and rule; the store is unchanged")
  func hostileUploads() throws {
    let setup = try Setup()
    let server = try ServerProcess(store: setup.store)
    let before = try setup.store.snapshot()
    for hostile in HostileArchiveTests.cases {
      let (status, body) = try server.curl([
        "-X", "POST", "-H", "Authorization: Bearer \(setup.tokens["deployer"]!)", "--data-binary",
        "@" + HostileArchiveTests.folder + "/\(hostile.name).tar.gz",
        "/api/v1/apps/inventory/environments/staging/uploads",
      ])
      #expect(status == 422, "\(hostile.name): \(status) \(body)")
      let problem = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
      #expect(problem["type"] as? String == "/problems/archive-refused", "\(hostile.name)")
      #expect((problem["detail"] as? String ?? "").contains(hostile.rule), "\(hostile.name): \(body)")
      if !hostile.entry.isEmpty {
        #expect((problem["entry"] as? String ?? "").hasPrefix(hostile.entry), "\(hostile.name): \(body)")
      }
    }
    #expect(try setup.store.snapshot() == before, "no refused upload changed the store")
    let uploadsFolder = setup.store.environment["CONFVAULT_STORE"]! + "/staging/uploads"
    #expect((try? FileManager.default.contentsOfDirectory(atPath: uploadsFolder))?.isEmpty ?? true, "no spool left")
  }

  @Test(
    "20 concurrent uploads to one environment, each applied on the head it previewed: 201 or 412, no gap, nothing lost")
  func concurrentUploads() throws {
    let setup = try Setup()
    let server = try ServerProcess(store: setup.store)
    let token = setup.tokens["deployer"]!
    // Twenty different configurations: each one's tree digest identifies the upload.
    var archives: [String] = []
    for index in 0..<20 {
      let folder = try setup.store.copy("staging", to: "c\(index)")
      try Data("writer: \(index)\n".utf8).write(to: URL(fileURLWithPath: folder + "/writer.yaml"))
      let archive = setup.store.folder.file("c\(index).tar.gz")
      try Harness.confvault(["pack", folder, "-o", archive, "--app", "inventory"])
      archives.append(archive)
    }
    let results = ResultsBox<Applied>(count: 20)
    let paths = archives
    DispatchQueue.concurrentPerform(iterations: 20) { index in
      results.set(index, Result { try uploadAndApply(server, token: token, archive: paths[index]) })
    }
    let outcomes = try results.values()
    #expect(outcomes.allSatisfy { $0.status == 201 || $0.status == 412 }, "\(outcomes.map(\.status))")
    let applied = outcomes.filter { $0.status == 201 }
    #expect(!applied.isEmpty)
    let versions = try setup.store.versions()
    let numbers = versions.compactMap { $0["number"] as? Int }.sorted()
    #expect(numbers == Array(1...numbers.count), "numbers without gap or duplicate: \(numbers)")
    #expect(numbers.count == 1 + applied.count, "one version per 201")
    let digests = Set(versions.compactMap { $0["treeDigest"] as? String })
    for outcome in applied { #expect(digests.contains(outcome.treeDigest), "a 201's archive is a version") }
    let staging = versions.filter { $0["environment"] as? String == "staging" }
      .sorted { ($0["number"] as! Int) < ($1["number"] as! Int) }
    for (previous, next) in zip(staging, staging.dropFirst()) {
      #expect(next["parent"] as? Int == previous["number"] as? Int, "each parent is the previous head")
    }
    #expect(try setup.store.ok(["check"]).hasPrefix("OK"))
  }

  struct Applied {
    var status: Int
    var treeDigest: String
  }

  private func uploadAndApply(_ server: ServerProcess, token: String, archive: String) throws -> Applied {
    let work = try TemporaryFolder()
    let headers = work.file("headers")
    let (status, body) = try server.curl([
      "-X", "POST", "-H", "Authorization: Bearer \(token)", "--data-binary", "@" + archive, "-D", headers,
      "/api/v1/apps/inventory/environments/staging/uploads",
    ])
    guard status == 201 else { return Applied(status: status, treeDigest: "") }
    let reply = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
    let etag =
      try String(contentsOfFile: headers, encoding: .utf8).split(separator: "\r\n")
      .first { $0.lowercased().hasPrefix("etag:") }.map { String($0.dropFirst(5)).trimmingCharacters(in: .whitespaces) }
      ?? ""
    let id = reply["id"] as? String ?? ""
    let applied = try server.curl([
      "-X", "POST", "-H", "Authorization: Bearer \(token)", "-H", "If-Match: \(etag)",
      "/api/v1/apps/inventory/environments/staging/uploads/\(id)/apply",
    ])
    return Applied(status: applied.status, treeDigest: reply["treeDigest"] as? String ?? "")
  }

  @Test("a client sending one byte a second delays no other upload, and is cut off")
  func slowClient() throws {
    let setup = try Setup()
    let server = try ServerProcess(
      store: setup.store, arguments: ["--upload-grace", "10", "--min-upload-rate", "1024"])
    let port = server.baseURL.split(separator: ":").last!
    let slow = Process()
    slow.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    let output = Pipe()
    slow.standardOutput = output
    slow.arguments = [
      "python3", "-c",
      """
      import socket, sys, time
      s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
      s.sendall(("POST /api/v1/apps/inventory/environments/staging/uploads HTTP/1.1\\r\\nHost: x\\r\\n"
                 "Authorization: Bearer " + sys.argv[2] + "\\r\\nContent-Length: 100000\\r\\n\\r\\n").encode())
      s.settimeout(1)
      answer = b""
      for _ in range(40):
          try:
              s.sendall(b"\\x1f")
          except OSError:
              break
          try:
              data = s.recv(4096)
              if not data:
                  break
              answer += data
              if b"\\r\\n\\r\\n" in answer:
                  break
          except socket.timeout:
              pass
      print(answer.split(b"\\r\\n")[0].decode() if answer else "no answer")
      """,
      String(port), setup.tokens["deployer"]!,
    ]
    try slow.run()
    Thread.sleep(forTimeInterval: 1)
    let started = Date()
    let other = try uploadAndApply(
      server, token: setup.tokens["deployer"]!,
      archive: {
        let archive = setup.store.folder.file("other.tar.gz")
        _ = try? Harness.confvault(["pack", Harness.samples + "/staging", "-o", archive, "--app", "inventory"])
        return archive
      }())
    #expect(other.status == 201, "another client's upload is applied while the slow one trickles")
    #expect(slow.isRunning, "the other upload was applied before the slow one was cut off")
    #expect(Date().timeIntervalSince(started) < 8, "without waiting for the slow one")
    slow.waitUntilExit()
    let answer = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    #expect(answer.contains("408"), "the slow upload was cut off: \(answer)")
  }

  @Test("SIGTERM stops the server with exit 0; plain HTTP beyond loopback needs --insecure-http; TLS serves HTTPS")
  func lifecycleAndTLS() throws {
    let setup = try Setup()
    let server = try ServerProcess(store: setup.store)
    #expect(try server.curl(["/healthz"]).status == 200)
    #expect(server.stop() == 0, "a graceful stop")
    let exposed = try setup.store.run(["serve", "--host", "0.0.0.0", "--port", "0"])
    #expect(exposed.status == 64 && exposed.stderr.contains("TLS"), "\(exposed)")
    let work = try TemporaryFolder()
    let generated = try Harness.shell(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost -keyout '\(work.file("key.pem"))' -out '\(work.file("cert.pem"))' 2>&1"
    )
    #expect(generated.status == 0, "\(generated)")
    let secure = try ServerProcess(
      store: setup.store, arguments: ["--tls-cert", work.file("cert.pem"), "--tls-key", work.file("key.pem")])
    #expect(secure.baseURL.hasPrefix("https://"))
    #expect(try secure.curl(["-k", "/healthz"]).status == 200, "HTTPS with the test's own certificate")
    let cookie = try secure.curl(["-k", "-D", "-", "-o", "/dev/null", "/sign-in"]).body
    #expect(cookie.contains("Secure") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "\(cookie)")
    #expect(secure.stop() == 0)
  }
}

/// One result slot per index, filled by concurrent workers.
final class ResultsBox<Value>: @unchecked Sendable {
  private var slots: [Result<Value, any Error>?]
  private let lock = NSLock()

  init(count: Int) { slots = Array(repeating: nil, count: count) }

  func set(_ index: Int, _ result: Result<Value, any Error>) {
    lock.lock()
    slots[index] = result
    lock.unlock()
  }

  func values() throws -> [Value] { try slots.map { try $0!.get() } }
}
