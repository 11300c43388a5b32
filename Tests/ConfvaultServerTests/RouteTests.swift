import ConfvaultCore
import ConfvaultServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// The HTTP API in process: every route, who may call it, uploads with their preview and apply,
/// streamed downloads, and problem documents.
@Suite struct RouteTests {
  /// One route of the API, a body that makes a valid call, and the least role that may make it.
  struct Route: CustomTestStringConvertible, Sendable {
    var method: HTTPRequest.Method
    var path: String
    var body: String?
    var least: Role
    var testDescription: String { "\(method) \(path)" }
  }

  static let routes: [Route] = [
    Route(method: .get, path: "/api/v1/apps", least: .viewer),
    Route(method: .post, path: "/api/v1/apps", body: #"{"name": "billing"}"#, least: .admin),
    Route(method: .get, path: "/api/v1/apps/shop/environments", least: .viewer),
    Route(method: .post, path: "/api/v1/apps/shop/environments", body: #"{"name": "qa"}"#, least: .admin),
    Route(method: .delete, path: "/api/v1/apps/shop/environments/staging", least: .admin),
    Route(method: .get, path: "/api/v1/apps/shop/versions", least: .viewer),
    Route(method: .get, path: "/api/v1/apps/shop/versions/1", least: .viewer),
    Route(method: .get, path: "/api/v1/apps/shop/versions/1/diff", least: .viewer),
    Route(method: .get, path: "/api/v1/apps/shop/versions/1/archive", least: .viewer),
    Route(method: .get, path: "/api/v1/apps/shop/environments/development/archive", least: .viewer),
    Route(method: .post, path: "/api/v1/apps/shop/environments/staging/uploads", body: "archive", least: .deployer),
    Route(method: .post, path: "/api/v1/apps/shop/environments/production/uploads", body: "archive", least: .releaser),
    Route(
      method: .post, path: "/api/v1/apps/shop/environments/staging/restore", body: #"{"version": 1}"#, least: .deployer),
    Route(
      method: .post, path: "/api/v1/apps/shop/environments/production/restore", body: #"{"version": 1}"#,
      least: .releaser),
    Route(method: .post, path: "/api/v1/apps/shop/sync", body: #"{"version": 1}"#, least: .releaser),
    Route(method: .get, path: "/api/v1/apps/shop/audit", least: .viewer),
  ]

  @Test("every route × no credentials, a revoked token and each role gives the expected status", arguments: routes)
  func authorisationMatrix(route: Route) async throws {
    // A fresh store per route, so that a change one role makes does not decide another's status.
    let fixture = try await ServerFixture()
    let archive = try fixture.archive(level: "warn")
    try await fixture.application().test(.router) { client in
      func call(_ token: String?) async throws -> HTTPResponse.Status {
        let body: ByteBuffer? =
          route.body == "archive" ? ByteBuffer(bytes: archive) : route.body.map { ByteBuffer(string: $0) }
        return try await client.execute(
          uri: route.path, method: route.method,
          headers: ServerFixture.headers(token, route.body == "archive" ? [:] : [.contentType: "application/json"]),
          body: body
        ) { $0.status }
      }
      #expect(try await call(nil) == .unauthorized, "no credentials")
      #expect(try await call(fixture.revokedToken) == .unauthorized, "a revoked token")
      #expect(try await call("cvt_not-a-token") == .unauthorized, "an unknown token")
      for role in Role.allCases {
        let status = try await call(fixture.tokens[role])
        if role >= route.least {
          #expect(status.code < 400, "\(role) may \(route.method) \(route.path): \(status)")
        } else {
          #expect(status == .forbidden, "\(role) may not \(route.method) \(route.path): \(status)")
        }
      }
    }
  }

  @Test("an upload is checked whole, previewed against the head, then applied with If-Match")
  func uploadPreviewApply() async throws {
    let fixture = try await ServerFixture()
    let token = fixture.tokens[.deployer]!
    let archive = try fixture.archive(level: "debug", extra: ["views/list.json": "[1, 2]\n"])
    try await fixture.application().test(.router) { client in
      let uploaded = try await client.execute(
        uri: "/api/v1/apps/shop/environments/development/uploads", method: .post,
        headers: ServerFixture.headers(token), body: ByteBuffer(bytes: archive)
      ) { $0 }
      #expect(uploaded.status == .created, "\(uploaded.text)")
      #expect(uploaded.headers[.eTag] == "\"head-1\"")
      let reply = uploaded.json
      let preview = reply["preview"] as? [String: Any]
      #expect(preview?["head"] as? Int == 1)
      let files = preview?["files"] as? [[String: Any]] ?? []
      #expect(files.map { $0["path"] as? String } == ["settings.yaml", "views/list.json"])
      let keys = files.first?["keys"] as? [[String: Any]]
      #expect(keys?.first?["path"] as? String == "level" && keys?.first?["new"] as? String == "debug")
      let id = reply["id"] as! String
      let apply = "/api/v1/apps/shop/environments/development/uploads/\(id)/apply"
      try await client.execute(uri: apply, method: .post, headers: ServerFixture.headers(token)) {
        #expect($0.status == .preconditionRequired, "no If-Match: 428")
      }
      try await client.execute(
        uri: apply, method: .post, headers: ServerFixture.headers(token, [.ifMatch: "\"head-7\""])
      ) {
        #expect($0.status == .preconditionFailed, "another head: 412")
      }
      let key = HTTPField.Name("Idempotency-Key")!
      let applied = try await client.execute(
        uri: apply, method: .post, headers: ServerFixture.headers(token, [.ifMatch: "\"head-1\"", key: "k1"])
      ) { $0 }
      #expect(applied.status == .created, "\(applied.text)")
      #expect((applied.json["version"] as? [String: Any])?["number"] as? Int == 2)
      #expect((applied.json["version"] as? [String: Any])?["author"] as? String == "deployer-token")
      let again = try await client.execute(
        uri: apply, method: .post, headers: ServerFixture.headers(token, [.ifMatch: "\"head-1\"", key: "k1"])
      ) { $0 }
      #expect(again.status == .created && again.text == applied.text, "the same key answers the same")
    }
    let versions = try await fixture.store.versions(app: "shop", environment: nil, before: nil, limit: 10)
    #expect(versions.map(\.number) == [2, 1] && versions[0].origin == .import, "applied once")
  }

  @Test("a download streams the archive with its name and ETag; If-None-Match answers 304")
  func download() async throws {
    let fixture = try await ServerFixture()
    try await fixture.application().test(.router) { client in
      let token = fixture.tokens[.viewer]!
      let response = try await client.execute(
        uri: "/api/v1/apps/shop/environments/development/archive?compression=zstd", method: .get,
        headers: ServerFixture.headers(token)
      ) { $0 }
      #expect(response.status == .ok)
      #expect(response.headers[.contentDisposition] == "attachment; filename=\"shop-development-v1.tar.zst\"")
      let etag = try #require(response.headers[.eTag])
      let path = fixture.folder + "/download.tar.zst"
      try Data(buffer: response.body).write(to: URL(fileURLWithPath: path))
      let contents = try ArchiveReader().read(from: .file(path))
      #expect(contents.compression == .zstd && contents.manifest?.environment == "development")
      try await client.execute(
        uri: "/api/v1/apps/shop/environments/development/archive?compression=zstd", method: .get,
        headers: ServerFixture.headers(token, [.ifNoneMatch: etag])
      ) { #expect($0.status == .notModified) }
    }
    let audit = try await fixture.store.audit(app: "shop", limit: 1)
    #expect(audit.first?.action == .export && audit.first?.author == "viewer-token", "downloads are audited")
  }

  @Test("failures are problem documents with the status PRODUCT.md gives them")
  func problems() async throws {
    let fixture = try await ServerFixture()
    try await fixture.application().test(.router) { client in
      let token = fixture.tokens[.admin]!
      let cases: [(String, HTTPRequest.Method, String?, HTTPResponse.Status, String)] = [
        ("/api/v1/apps/nope/versions", .get, nil, .notFound, "/problems/not-found"),
        ("/api/v1/apps/shop/versions/99", .get, nil, .notFound, "/problems/not-found"),
        ("/api/v1/apps/Bad..Name/versions", .get, nil, .badRequest, "/problems/bad-request"),
        ("/api/v1/apps/shop/versions/x", .get, nil, .badRequest, "/problems/bad-request"),
        ("/api/v1/apps", .post, #"{"name": "shop"}"#, .conflict, "/problems/conflict"),
        ("/api/v1/apps/shop/sync", .post, "not json", .badRequest, "/problems/bad-request"),
        (
          "/api/v1/apps/shop/environments/staging/uploads", .post, "not an archive", .unprocessableContent,
          "/problems/archive-refused"
        ),
      ]
      for (path, method, body, status, type) in cases {
        try await client.execute(
          uri: path, method: method, headers: ServerFixture.headers(token), body: body.map { ByteBuffer(string: $0) }
        ) { response in
          #expect(response.status == status, "\(method) \(path): \(response.text)")
          #expect(response.headers[.contentType] == "application/problem+json")
          #expect(response.json["type"] as? String == type && response.json["status"] as? Int == status.code)
        }
      }
    }
  }

  @Test("a page session's change without its CSRF token is refused; with it, it is made")
  func csrf() async throws {
    let fixture = try await ServerFixture()
    let secret = Secret.make()
    let csrf = Secret.make()
    try await fixture.store.addSession(
      SessionRecord(
        hash: Secret.hash(secret), user: "releaser", csrfToken: csrf, expiresAt: Date().addingTimeInterval(600)))
    try await fixture.application().test(.router) { client in
      let cookie: HTTPFields = [.cookie: "confvault_session=\(secret)", .contentType: "application/json"]
      try await client.execute(uri: "/api/v1/apps/shop/versions", method: .get, headers: cookie) {
        #expect($0.status == .ok, "reading needs no token")
      }
      try await client.execute(
        uri: "/api/v1/apps/shop/sync", method: .post, headers: cookie, body: ByteBuffer(string: #"{"version": 1}"#)
      ) {
        #expect($0.status == .forbidden && $0.json["type"] as? String == "/problems/csrf")
      }
      var withToken = cookie
      withToken[HTTPField.Name("X-CSRF-Token")!] = "wrong"
      try await client.execute(
        uri: "/api/v1/apps/shop/sync", method: .post, headers: withToken, body: ByteBuffer(string: #"{"version": 1}"#)
      ) { #expect($0.status == .forbidden) }
      withToken[HTTPField.Name("X-CSRF-Token")!] = csrf
      try await client.execute(
        uri: "/api/v1/apps/shop/sync", method: .post, headers: withToken, body: ByteBuffer(string: #"{"version": 1}"#)
      ) { #expect($0.status == .ok, "\($0.text)") }
    }
    #expect(try await fixture.store.app("shop").production?.head == 1)
  }

  @Test("restore and sync preview with dryRun, then refuse a head that moved since (If-Match)")
  func previews() async throws {
    let fixture = try await ServerFixture()
    try await fixture.application().test(.router) { client in
      let token = fixture.tokens[.releaser]!
      let json: HTTPFields = [.contentType: "application/json"]
      let preview = try await client.execute(
        uri: "/api/v1/apps/shop/sync?dryRun=true", method: .post, headers: ServerFixture.headers(token, json),
        body: ByteBuffer(string: #"{"version": 1}"#)
      ) { $0 }
      #expect(preview.status == .ok && preview.json["environment"] as? String == "production")
      #expect((preview.json["changes"] as? [Any])?.count == 2 && preview.json["head"] is NSNull)
      #expect(try await fixture.store.app("shop").production?.head == nil, "a dry run changes nothing")
      let restored = try await client.execute(
        uri: "/api/v1/apps/shop/environments/staging/restore", method: .post,
        headers: ServerFixture.headers(token, [.contentType: "application/json", .ifMatch: "\"head-none\""]),
        body: ByteBuffer(string: #"{"version": 1}"#)
      ) { $0 }
      #expect(restored.status == .created, "\(restored.text)")
      try await client.execute(
        uri: "/api/v1/apps/shop/environments/staging/restore", method: .post,
        headers: ServerFixture.headers(token, [.contentType: "application/json", .ifMatch: "\"head-none\""]),
        body: ByteBuffer(string: #"{"version": 1}"#)
      ) { #expect($0.status == .preconditionFailed, "decided on a head that moved: 412, as for an upload's apply") }
    }
  }

  @Test("bodies, headers and parameters out of bounds are refused with 4xx, never 500")
  func boundsAndParameters() async throws {
    let fixture = try await ServerFixture()
    try await fixture.application().test(.router) { client in
      let token = fixture.tokens[.admin]!
      let json: HTTPFields = [.contentType: "application/json"]
      let large = #"{"name": ""# + String(repeating: "a", count: 70_000) + #""}"#
      try await client.execute(
        uri: "/api/v1/apps", method: .post, headers: ServerFixture.headers(token, json), body: ByteBuffer(string: large)
      ) { #expect($0.status == .contentTooLarge, "a JSON body over 64 KiB: 413") }
      for bad in ["\"head-1", "\"head-+1\"", "\"head-1x\"", "head-1"] {
        try await client.execute(
          uri: "/api/v1/apps/shop/environments/staging/restore", method: .post,
          headers: ServerFixture.headers(token, [.contentType: "application/json", .ifMatch: bad]),
          body: ByteBuffer(string: #"{"version": 1}"#)
        ) { #expect($0.status == .badRequest, "If-Match \(bad)") }
      }
      try await client.execute(
        uri: "/api/v1/apps/shop/environments/staging/restore", method: .post,
        headers: ServerFixture.headers(token, json),
        body: ByteBuffer(string: #"{"version": 1, "comment": "before\u0000after"}"#)
      ) { #expect($0.status == .badRequest, "a NUL in a comment") }
      for query in ["dryRun=yes", "details=no"] {
        let path =
          query.hasPrefix("dryRun") ? "/api/v1/apps/shop/sync?\(query)" : "/api/v1/apps/shop/versions/1/diff?\(query)"
        try await client.execute(
          uri: path, method: query.hasPrefix("dryRun") ? .post : .get, headers: ServerFixture.headers(token, json),
          body: ByteBuffer(string: #"{"version": 1}"#)
        ) { #expect($0.status == .badRequest, "\(query)") }
      }
      try await client.execute(
        uri: "/api/v1/apps", method: .post, headers: ServerFixture.headers(token, json),
        body: ByteBuffer(string: #"{"name": "billing", "environments": ["dev"], "production": "prod"}"#)
      ) { #expect($0.status == .badRequest, "a production that is not among the environments") }
    }
    #expect(try await fixture.store.versions(app: "shop", environment: nil, before: nil, limit: 10).count == 1)
  }

  @Test("/healthz answers without credentials; /metrics counts requests by route and refusals by rule")
  func healthAndMetrics() async throws {
    let fixture = try await ServerFixture()
    try await fixture.application().test(.router) { client in
      try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok && $0.text == "ok\n") }
      try await client.execute(
        uri: "/api/v1/apps/shop/environments/staging/uploads", method: .post,
        headers: ServerFixture.headers(fixture.tokens[.deployer]), body: ByteBuffer(string: "junk")
      ) { #expect($0.status == .unprocessableContent) }
      try await client.execute(uri: "/metrics", method: .get) { response in
        let text = response.text
        #expect(
          text.contains(#"confvault_http_requests_total{route="/healthz",method="GET",status="200"} 1"#), "\(text)")
        #expect(text.contains(#"confvault_uploads_refused_total{rule="not a tar archive"} 1"#))
        #expect(text.contains("confvault_http_request_duration_seconds_bucket"))
      }
    }
  }

  @Test(
    "what a review found: a bare `=` form, a form-typed API change with a session, a stale head whose tree matches, names before credentials"
  )
  func reviewFindings() async throws {
    let fixture = try await ServerFixture()
    let secret = Secret.make()
    try await fixture.store.addSession(
      SessionRecord(
        hash: Secret.hash(secret), user: "releaser", csrfToken: Secret.make(), expiresAt: Date().addingTimeInterval(600)
      ))
    try await fixture.application().test(.router) { client in
      for body in ["=", "&=&", "=="] {
        try await client.execute(
          uri: "/sign-in", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
          body: ByteBuffer(string: body)
        ) { #expect($0.status == .forbidden, "a form of `\(body)` is refused, the server lives") }
      }
      try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
      try await client.execute(
        uri: "/api/v1/apps/shop/environments/staging/restore", method: .post,
        headers: [.cookie: "confvault_session=\(secret)", .contentType: "application/x-www-form-urlencoded"],
        body: ByteBuffer(string: #"{"version": 1}"#)
      ) {
        #expect(
          $0.status == .forbidden && $0.json["type"] as? String == "/problems/csrf", "the API takes the header only")
      }
      try await client.execute(
        uri: "/api/v1/apps/nosuch/environments/production/restore", method: .post,
        body: ByteBuffer(string: #"{"version": 1}"#)
      ) { response in
        #expect(response.status == .unauthorized, "no credentials: 401 before any name is looked up")
        #expect(!response.text.contains("shop"))
      }
      let token = fixture.tokens[.releaser]!
      try await client.execute(
        uri: "/api/v1/apps/shop/environments/staging/restore", method: .post,
        headers: ServerFixture.headers(token, [.contentType: "application/json", .ifMatch: "\"head-1\""]),
        body: ByteBuffer(string: #"{"version": 1}"#)
      ) { #expect($0.status == .preconditionFailed, "staging has no head: v1 is not it, though its tree is v1's") }
    }
    #expect(try await fixture.store.app("shop").environment("staging").head == nil)
  }

  @Test("the loopback rule reads addresses, not name prefixes")
  func loopback() {
    for (host, loopback) in [
      ("127.0.0.1", true), ("127.1.2.3", true), ("localhost", true), ("::1", true), ("127.example.com", false),
      ("0.0.0.0", false), ("10.0.0.1", false),
    ] {
      var configuration = ServerConfiguration()
      configuration.host = host
      #expect(configuration.isLoopback == loopback, "\(host)")
    }
  }

  @Test("an upload is applied by who uploaded it, once: concurrent applies with one Idempotency-Key answer alike")
  func uploadOwnershipAndIdempotency() async throws {
    let fixture = try await ServerFixture()
    let secret = Secret.make(prefix: "cvt_")
    try await fixture.store.addToken(
      TokenRecord(name: "other-deployer", role: .deployer, createdAt: Date(), revokedAt: nil, hash: Secret.hash(secret))
    )
    await #expect {
      try await fixture.store.addToken(
        TokenRecord(name: "viewer", role: .viewer, createdAt: Date(), revokedAt: nil, hash: Secret.hash(Secret.make())))
    } throws: { ($0 as? OperationError)?.kind == .conflict }
    let archive = try fixture.archive(level: "warn")
    try await fixture.application().test(.router) { client in
      let owner = fixture.tokens[.deployer]!
      let uploaded = try await client.execute(
        uri: "/api/v1/apps/shop/environments/development/uploads", method: .post,
        headers: ServerFixture.headers(owner), body: ByteBuffer(bytes: archive)
      ) { $0 }
      let id = uploaded.json["id"] as! String
      let apply = "/api/v1/apps/shop/environments/development/uploads/\(id)/apply"
      let key = HTTPField.Name("Idempotency-Key")!
      try await client.execute(
        uri: apply, method: .post, headers: ServerFixture.headers(secret, [.ifMatch: "\"head-1\"", key: "k"])
      ) { #expect($0.status == .forbidden, "another deployer may not apply it") }
      let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
        for _ in 0..<4 {
          group.addTask {
            try await client.execute(
              uri: apply, method: .post, headers: ServerFixture.headers(owner, [.ifMatch: "\"head-1\"", key: "k"])
            ) { ($0.status.code, $0.text) }
          }
        }
        return try await group.reduce(into: []) { $0.append($1) }
      }
      #expect(
        Set(answers.map(\.0)) == [201] && Set(answers.map(\.1)).count == 1, "one apply, one answer: \(answers.map(\.0))"
      )
    }
    #expect(try await fixture.store.versions(app: "shop", environment: nil, before: nil, limit: 10).count == 2)
  }
}
