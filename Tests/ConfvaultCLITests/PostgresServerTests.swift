import ConfvaultTestSupport
import Foundation
import Synchronization
import Testing

/// `confvault serve` processes sharing one PostgreSQL database, as a team runs them behind a load
/// balancer: uploads through either server at once, a server killed in the middle of uploads, and the
/// database stopped and started again under running servers.
@Suite struct PostgresServerTests {
  /// A PostgreSQL store with a version in development and in staging, and a deployer's token.
  final class Team: @unchecked Sendable {
    let store: StoreFixture
    let token: String

    /// - Parameter database: the URL of an empty database; else a new one of the shared cluster.
    init(database: String? = nil) throws {
      store = try StoreFixture(kind: .postgres, database: database)
      for environment in ["development", "staging"] {
        try store.ok(["push", "--app", "inventory", "--env", environment, Harness.samples + "/" + environment])
      }
      token = try store.ok(["token", "create", "--name", "deployer-token", "--role", "deployer"])
        .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The archive of a configuration no other upload has: the staging sample, with `writer.yaml` saying
    /// `mark` and `randomFiles` files of random bytes (an apply that stores more takes longer). It is
    /// made in the folder `client`, which one client reuses.
    func archive(_ mark: String, client: String, randomFiles: Int = 0) throws -> String {
      let folder = store.folder.file(client)
      if !FileManager.default.fileExists(atPath: folder) { _ = try store.copy("staging", to: client) }
      try Data("writer: \(mark)\n".utf8).write(to: URL(fileURLWithPath: folder + "/writer.yaml"))
      for index in 0..<randomFiles {
        let bytes = (0..<16_384).map { _ in UInt8.random(in: 0...255) }
        try Data(bytes).write(to: URL(fileURLWithPath: folder + "/data\(index).bin"))
      }
      let archive = store.folder.file(mark + ".tar.gz")
      let packed = try Harness.confvault(["pack", folder, "-o", archive, "--app", "inventory"])
      #expect(packed.status == 0, "\(packed)")
      return archive
    }

    /// Every version, newest first.
    func versions() throws -> [[String: Any]] {
      try store.json(["versions", "--app", "inventory", "--limit", "1000"]) as? [[String: Any]] ?? []
    }
  }

  /// What a server answered to an upload (the preview) and to its apply.
  struct Attempt: Sendable {
    /// The server's index; its status 0 means no answer (the server was gone).
    var server: Int
    var previewStatus: Int
    var applyStatus: Int = 0
    var applyProblem = ""
    /// The version the apply made (201), or the head it found unchanged (200).
    var version: Int?
    var treeDigest = ""
  }

  /// Uploads `archive` to `environment` through `servers[index]`, then applies it there with the head
  /// its preview showed as `If-Match`.
  static func uploadAndApply(
    _ servers: [ServerProcess], _ index: Int, token: String, environment: String, archive: String
  ) throws -> Attempt {
    let server = servers[index]
    let work = try TemporaryFolder()
    let route = "/api/v1/apps/inventory/environments/\(environment)/uploads"
    let (status, body) = try server.curl([
      "-X", "POST", "-H", "Authorization: Bearer \(token)", "--data-binary", "@" + archive, "-D", work.file("headers"),
      route,
    ])
    var attempt = Attempt(server: index, previewStatus: status)
    guard status == 201 else {
      attempt.applyProblem = body
      return attempt
    }
    let preview = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
    attempt.treeDigest = preview["treeDigest"] as? String ?? ""
    let etag = try header("etag", in: work.file("headers")) ?? ""
    let applied = try server.curl([
      "-X", "POST", "-H", "Authorization: Bearer \(token)", "-H", "If-Match: \(etag)",
      route + "/\(preview["id"] as? String ?? "")/apply",
    ])
    attempt.applyStatus = applied.status
    if applied.status == 201 || applied.status == 200 {
      let reply = try JSONSerialization.jsonObject(with: Data(applied.body.utf8)) as? [String: Any] ?? [:]
      attempt.version = (reply["version"] as? [String: Any])?["number"] as? Int
    } else {
      attempt.applyProblem = applied.body
    }
    return attempt
  }

  /// The value of the response header `name` that curl's `-D` wrote to `file`.
  static func header(_ name: String, in file: String) throws -> String? {
    try String(contentsOfFile: file, encoding: .utf8).split(separator: "\r\n")
      .first { $0.lowercased().hasPrefix(name + ":") }
      .map { String($0.dropFirst(name.count + 1)).trimmingCharacters(in: .whitespaces) }
  }

  /// Checks what any run of changes must leave: numbers 1…N without gap or duplicate, each version's
  /// parent its environment's previous head, every 201 a version with its tree, and `check` OK.
  static func expectConsistent(
    _ team: Team, applied: [Attempt], sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let versions = try team.versions()
    let numbers = versions.compactMap { $0["number"] as? Int }.sorted()
    #expect(
      numbers == Array(1...max(1, numbers.count)), "numbers without gap or duplicate", sourceLocation: sourceLocation)
    let byNumber = Dictionary(versions.map { ($0["number"] as? Int ?? 0, $0) }) { first, _ in first }
    for attempt in applied {
      let version = attempt.version.flatMap { byNumber[$0] }
      #expect(
        version?["treeDigest"] as? String == attempt.treeDigest, "the version a 201 named holds its upload",
        sourceLocation: sourceLocation)
    }
    for environment in Set(versions.compactMap { $0["environment"] as? String }) {
      let chain = versions.filter { $0["environment"] as? String == environment }
        .sorted { ($0["number"] as? Int ?? 0) < ($1["number"] as? Int ?? 0) }
      #expect(
        chain.first?["parent"] is NSNull, "\(environment) starts without a parent", sourceLocation: sourceLocation)
      for (previous, next) in zip(chain, chain.dropFirst()) {
        #expect(
          next["parent"] as? Int == previous["number"] as? Int,
          "\(environment): v\(next["number"] ?? "?")'s parent is the previous head v\(previous["number"] ?? "?")",
          sourceLocation: sourceLocation)
      }
    }
    let checked = try team.store.ok(["check"])
    #expect(checked.hasPrefix("OK: \(numbers.count) versions"), "\(checked)", sourceLocation: sourceLocation)
  }

  @Test(
    "two servers on one database: 4 clients × 25 uploads through either, each apply 201 or 412, 100 versions without gap"
  )
  func twoServers() throws {
    let team = try Team()
    let servers = [try ServerProcess(store: team.store), try ServerProcess(store: team.store)]
    let token = team.token

    // A head moved through one server is seen by the other: an upload it previewed before is stale.
    let first = try team.archive("first", client: "first")
    let second = try team.archive("second", client: "second")
    let workFirst = try TemporaryFolder()
    let workSecond = try TemporaryFolder()
    let route = "/api/v1/apps/inventory/environments/staging/uploads"
    let previews = try [(0, first, workFirst), (1, second, workSecond)].map { index, archive, work in
      let (status, body) = try servers[index].curl([
        "-X", "POST", "-H", "Authorization: Bearer \(token)", "--data-binary", "@" + archive, "-D",
        work.file("headers"), route,
      ])
      #expect(status == 201, "\(body)")
      let id = (try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["id"] as? String ?? ""
      return (id: id, etag: try Self.header("etag", in: work.file("headers")) ?? "")
    }
    #expect(previews[0].etag == "\"head-2\"" && previews[1].etag == previews[0].etag, "\(previews)")
    let applied = try servers[0].curl([
      "-X", "POST", "-H", "Authorization: Bearer \(token)", "-H", "If-Match: \(previews[0].etag)",
      route + "/\(previews[0].id)/apply",
    ])
    #expect(applied.status == 201, "\(applied.body)")
    let stale = try servers[1].curl([
      "-X", "POST", "-H", "Authorization: Bearer \(token)", "-H", "If-Match: \(previews[1].etag)",
      route + "/\(previews[1].id)/apply",
    ])
    #expect(stale.status == 412 && stale.body.contains("/problems/head-moved"), "\(stale)")

    // 4 clients, 2 per environment, 25 uploads each; every 412 is previewed again (through the other
    // server) and applied again, until it is applied.
    let results = ResultsBox<[Attempt]>(count: 4)
    concurrently(4) { client in
      results.set(
        client,
        Result {
          let environment = client % 2 == 0 ? "development" : "staging"
          var attempts: [Attempt] = []
          for upload in 0..<25 {
            let archive = try team.archive("c\(client)-u\(upload)", client: "client\(client)")
            for retry in 0..<100 {
              let attempt = try Self.uploadAndApply(
                servers, (client + upload + retry) % 2, token: token, environment: environment, archive: archive)
              attempts.append(attempt)
              guard attempt.previewStatus == 201 && attempt.applyStatus == 412 else { break }
            }
          }
          return attempts
        })
    }
    let attempts = try results.values().flatMap { $0 }
    #expect(attempts.allSatisfy { $0.previewStatus == 201 }, "\(attempts.filter { $0.previewStatus != 201 })")
    #expect(
      attempts.allSatisfy { $0.applyStatus == 201 || $0.applyStatus == 412 },
      "\(attempts.filter { $0.applyStatus != 201 && $0.applyStatus != 412 })")
    let created = attempts.filter { $0.applyStatus == 201 }
    #expect(created.count == 100, "every upload applied once")
    #expect(Set(created.map(\.server)) == [0, 1], "both servers applied uploads")
    #expect(try team.versions().count == 3 + 100)
    try Self.expectConsistent(team, applied: created)
  }

  @Test("a server killed with SIGKILL in the middle of uploads leaves nothing partial; the other goes on serving")
  func killedServer() throws {
    let team = try Team()
    let servers = [try ServerProcess(store: team.store), try ServerProcess(store: team.store)]
    let token = team.token
    let applies = Atomic<Int>(0)
    let results = ResultsBox<[Attempt]>(count: 3)
    // Clients 0 and 1 use the doomed server 0 until it stops answering, then server 1; client 2 uses
    // server 1. The kill comes once a few uploads are in, while the doomed server is busy with more.
    concurrently(4) { worker in
      guard worker < 3 else {
        let deadline = Date().addingTimeInterval(120)
        while applies.load(ordering: .relaxed) < 4 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        kill(servers[0].process.processIdentifier, SIGKILL)
        return
      }
      results.set(
        worker,
        Result {
          var attempts: [Attempt] = []
          var server = worker < 2 ? 0 : 1
          for upload in 0..<8 {
            let archive = try team.archive("c\(worker)-u\(upload)", client: "client\(worker)", randomFiles: 24)
            for _ in 0..<100 {
              let attempt = try Self.uploadAndApply(
                servers, server, token: token, environment: "staging", archive: archive)
              attempts.append(attempt)
              if attempt.applyStatus == 201 { applies.add(1, ordering: .relaxed) }
              if attempt.previewStatus == 0 || (attempt.previewStatus == 201 && attempt.applyStatus == 0) {
                server = 1  // no answer: the doomed server is gone; the same upload goes to the other
                continue
              }
              guard attempt.previewStatus == 201 && attempt.applyStatus == 412 else { break }
            }
          }
          return attempts
        })
    }
    servers[0].process.waitUntilExit()
    #expect(servers[0].process.terminationReason == .uncaughtSignal, "the doomed server was killed")
    let perClient = try results.values()
    let attempts = perClient.flatMap { $0 }
    let unanswered = attempts.filter { $0.server == 0 && ($0.previewStatus == 0 || $0.applyStatus == 0) }
    #expect(!unanswered.isEmpty, "some uploads were in flight on the killed server")
    let answered = attempts.filter { !($0.server == 0 && ($0.previewStatus == 0 || $0.applyStatus == 0)) }
    #expect(answered.allSatisfy { $0.previewStatus == 201 }, "\(answered.filter { $0.previewStatus != 201 })")
    // 200: an upload whose apply the killed server committed but could not answer, found unchanged.
    #expect(
      answered.allSatisfy { [201, 412, 200].contains($0.applyStatus) },
      "\(answered.filter { ![201, 412, 200].contains($0.applyStatus) })")
    #expect(attempts.filter { $0.server == 1 }.allSatisfy { $0.previewStatus == 201 }, "the other server answered all")
    let created = attempts.filter { $0.applyStatus == 201 }
    #expect(
      perClient.allSatisfy { [201, 200].contains($0.last?.applyStatus) }, "every client's last upload landed")
    // Each 201 made one version; an apply cut off by the kill made one or none, never half of one.
    let added = try team.versions().count - 2
    #expect(
      added >= created.count && added <= created.count + unanswered.count, "\(added) versions, \(created.count) 201s")
    try Self.expectConsistent(team, applied: created)
    let after = try Self.uploadAndApply(
      servers, 1, token: token, environment: "development",
      archive: team.archive("after", client: "after"))
    #expect(after.applyStatus == 201, "the other server goes on serving: \(after)")
  }

  @Test(
    "a browser session signed in on one server works on the other, with the CSRF token the first issued; signing out on the other ends it on both"
  )
  func sessionAcrossServers() throws {
    let team = try Team()
    let password = "a-long-password-1"
    let added = try team.store.run(["user", "add", "bea", "--role", "deployer"], input: password + "\n")
    #expect(added.status == 0, "\(added)")
    let servers = [try ServerProcess(store: team.store), try ServerProcess(store: team.store)]
    let work = try TemporaryFolder()
    /// The value of the form field `csrf` of a page.
    func csrfField(_ page: String) -> String? {
      page.firstMatch(of: /name="csrf" value="([^"]+)"/).map { String($0.1) }
    }

    // On server A: the sign-in form (its token also set as a cookie), posted as a browser does.
    let form = try servers[0].curl(["-c", work.file("jar"), "/sign-in"])
    let signInToken = try #require(csrfField(form.body), "the sign-in form: \(form)")
    let signedIn = try servers[0].curl([
      "-b", work.file("jar"), "-D", work.file("signed-in"), "--data-urlencode", "csrf=\(signInToken)",
      "--data-urlencode", "user=bea", "--data-urlencode", "password=\(password)", "/sign-in",
    ])
    #expect(signedIn.status == 302, "\(signedIn)")
    let headers = try String(contentsOfFile: work.file("signed-in"), encoding: .utf8)
    let secret = try #require(
      headers.firstMatch(of: /(?i)set-cookie: confvault_session=([^;\s]+)/).map { String($0.1) }, "\(headers)")
    let cookie = "Cookie: confvault_session=\(secret)"
    let home = try servers[0].curl(["-H", cookie, "/"])
    #expect(home.status == 200 && home.body.contains("bea"), "\(home)")
    let csrf = try #require(csrfField(home.body), "the page carries the session's CSRF token: \(home.body)")

    // On server B: a page, as bea.
    let page = try servers[1].curl(["-H", cookie, "/apps/inventory"])
    #expect(page.status == 200 && page.body.contains("bea") && page.body.contains("staging"), "\(page)")
    // On server B: a change, which a session makes only with its CSRF token: refused without it,
    // applied with the token A issued.
    let route = "/api/v1/apps/inventory/environments/staging/uploads"
    let archive = try team.archive("browser", client: "browser")
    let withoutToken = try servers[1].curl([
      "-X", "POST", "-H", cookie, "--data-binary", "@" + archive, route,
    ])
    #expect(withoutToken.status == 403 && withoutToken.body.contains("/problems/csrf"), "\(withoutToken)")
    let uploaded = try servers[1].curl([
      "-X", "POST", "-H", cookie, "-H", "X-CSRF-Token: \(csrf)", "--data-binary", "@" + archive, "-D",
      work.file("uploaded"), route,
    ])
    #expect(uploaded.status == 201, "\(uploaded)")
    let id = (try JSONSerialization.jsonObject(with: Data(uploaded.body.utf8)) as? [String: Any])?["id"] as? String
    let applied = try servers[1].curl([
      "-X", "POST", "-H", cookie, "-H", "X-CSRF-Token: \(csrf)", "-H",
      "If-Match: \(try Self.header("etag", in: work.file("uploaded")) ?? "")", route + "/\(id ?? "")/apply",
    ])
    #expect(applied.status == 201, "\(applied)")
    let newest = try team.versions().first
    #expect(newest?["number"] as? Int == 3 && newest?["author"] as? String == "bea", "\(newest ?? [:])")

    // Signing out on B ends the session on A too: the page sends to the sign-in form, the API says 401.
    let versionsRoute = "/api/v1/apps/inventory/versions"
    #expect(try servers[0].curl(["-H", cookie, versionsRoute]).status == 200)
    let signedOut = try servers[1].curl(["-H", cookie, "--data-urlencode", "csrf=\(csrf)", "/sign-out"])
    #expect(signedOut.status == 302, "\(signedOut)")
    for server in servers {
      let after = try server.curl(["-H", cookie, "-D", work.file("after"), "/"])
      let location = try Self.header("location", in: work.file("after"))
      #expect(after.status == 303 && location == "/sign-in", "\(after)")
      #expect(try server.curl(["-H", cookie, versionsRoute]).status == 401)
    }
  }

  @Test(
    "PostgreSQL stopped under running servers: commands exit 75, the servers answer 503 with Retry-After; started again, all works without restarting them"
  )
  func databaseStopped() throws {
    // A cluster of this test's own: stopping the shared one would fail every test running meanwhile.
    let cluster = try PostgresCluster.make()
    defer { cluster.remove() }
    let team = try Team(database: try cluster.newDatabaseURL())
    let servers = [try ServerProcess(store: team.store), try ServerProcess(store: team.store)]
    let token = team.token
    let versionsRoute = "/api/v1/apps/inventory/versions"
    for server in servers {
      #expect(try server.curl(["-H", "Authorization: Bearer \(token)", versionsRoute]).status == 200)
    }

    let outageArchive = try team.archive("outage", client: "outage")
    try cluster.stopServer()
    let read = try team.store.run(["versions", "--app", "inventory"])
    #expect(read.status == 75, "\(read)")
    #expect(read.stderr.contains("PostgreSQL server of the store") && read.stderr.contains("try again"), "\(read)")
    #expect(!read.stderr.contains("PSQLError"), "a message for people, not a dump: \(read.stderr)")
    let write = try team.store.run([
      "push", "--app", "inventory", "--env", "development", Harness.samples + "/production",
    ])
    #expect(write.status == 75 && write.stderr.contains("nothing was changed"), "\(write)")
    for (index, server) in servers.enumerated() {
      let work = try TemporaryFolder()
      let (status, body) = try server.curl([
        "-H", "Authorization: Bearer \(token)", "-D", work.file("headers"), versionsRoute,
      ])
      #expect(status == 503, "\(body)")
      #expect(try Self.header("retry-after", in: work.file("headers")).flatMap(Int.init) ?? 0 > 0)
      let problem = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] ?? [:]
      #expect(problem["status"] as? Int == 503 && problem["retryAfter"] as? Int ?? 0 > 0, "\(body)")
      let detail = problem["detail"] as? String ?? ""
      #expect(detail.contains("cannot be reached") && detail.contains("try again"), "\(body)")
      #expect(!detail.contains("127.0.0.1") && !detail.contains("postgres://"), "where the store is stays in the log")
      let upload = try Self.uploadAndApply(
        servers, index, token: token, environment: "staging", archive: outageArchive)
      #expect(upload.previewStatus == 503, "an upload is refused the same way: \(upload)")
    }

    try cluster.startServer()
    // The servers were not restarted: until their pools reconnect they answer 503 with Retry-After, as
    // a client is told to retry; then each works again.
    for server in servers {
      let deadline = Date().addingTimeInterval(90)
      var answers: [Int] = []
      while Date() < deadline {
        let work = try TemporaryFolder()
        let (status, body) = try server.curl([
          "-H", "Authorization: Bearer \(token)", "-D", work.file("headers"), versionsRoute,
        ])
        answers.append(status)
        if status == 200 { break }
        let retryAfter = try Self.header("retry-after", in: work.file("headers"))
        #expect(status == 503 && retryAfter != nil, "\(body)")
        Thread.sleep(forTimeInterval: 0.5)
      }
      #expect(answers.last == 200, "the server works again without a restart: \(answers)")
    }
    var created: [Attempt] = []
    for index in servers.indices {
      let attempt = try Self.uploadAndApply(
        servers, index, token: token, environment: "staging",
        archive: team.archive("after\(index)", client: "after\(index)"))
      #expect(attempt.applyStatus == 201, "\(attempt)")
      created.append(attempt)
    }
    let pushed = try team.store.ok([
      "push", "--app", "inventory", "--env", "development", Harness.samples + "/production",
    ])
    #expect(pushed.contains("pushed v5"), "\(pushed)")
    try Self.expectConsistent(team, applied: created)
  }
}

/// Runs `body(0)` … `body(count - 1)` each on a thread of its own, all at once, and waits for them all
/// (unlike `DispatchQueue.concurrentPerform`, which runs no more at once than there are cores).
func concurrently(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
  let group = DispatchGroup()
  for index in 0..<count {
    group.enter()
    Thread {
      body(index)
      group.leave()
    }.start()
  }
  group.wait()
}
