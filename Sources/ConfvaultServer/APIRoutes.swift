import AsyncAlgorithms
import ConfvaultCore
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The HTTP API under `/api/v1`: JSON in and out, `Authorization: Bearer <token>` (or a page session),
/// every failure a problem document. The paths are the contract in `openapi.yaml`.
struct APIRoutes {
  let vault: Vault
  let principals: any PrincipalStore
  let uploads: UploadRegistry
  let configuration: ServerConfiguration
  let metrics: ServerMetrics

  func add(to router: Router<ServerContext>) {
    router.get("/healthz") { _, _ in
      Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
    }
    router.get("/metrics") { _, _ in
      Response(
        status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
        body: .init(byteBuffer: ByteBuffer(string: metrics.text())))
    }
    let api = router.group("api/v1")
    api.get("openapi.yaml") { _, _ in
      Response(
        status: .ok, headers: [.contentType: "application/yaml"],
        body: .init(byteBuffer: ByteBuffer(bytes: PackageResources.openapi_yaml)))
    }
    api.get("apps") { _, context in
      _ = try context.require(.read)
      return try JSONReply.ok(try await vault.apps(logger: context.logger))
    }
    api.post("apps") { request, context in
      let principal = try context.require(.administer)
      let body = try await JSONReply.decode(NewApp.self, request, context)
      try validateName(body.name, as: "app")
      for environment in body.environments ?? [] { try validateName(environment, as: "environment") }
      let environments = body.environments ?? ["development", "staging", "production"]
      if let production = body.production, !environments.contains(production) {
        throw OperationError(.usage, "production `\(production)` is not among the environments")
      }
      try await vault.createApp(
        body.name, environments: environments,
        production: body.production ?? (body.environments == nil ? "production" : nil), author: principal.name,
        logger: context.logger)
      return try JSONReply.make(try await vault.app(body.name, logger: context.logger), status: .created)
    }
    api.get("apps/:app/environments") { _, context in
      _ = try context.require(.read)
      return try JSONReply.ok(try await vault.app(try app(context), logger: context.logger).environments)
    }
    api.post("apps/:app/environments") { request, context in
      let principal = try context.require(.administer)
      let body = try await JSONReply.decode(NewEnvironment.self, request, context)
      try validateName(body.name, as: "environment")
      let app = try app(context)
      try await vault.createEnvironment(
        app: app, name: body.name, production: body.production ?? false, author: principal.name,
        logger: context.logger)
      return try JSONReply.make(
        try await vault.app(app, logger: context.logger).environment(body.name), status: .created)
    }
    api.delete("apps/:app/environments/:env") { _, context in
      let principal = try context.require(.administer)
      try await vault.deleteEnvironment(
        app: try app(context), name: try environment(context), author: principal.name, logger: context.logger)
      return Response(status: .noContent)
    }
    api.get("apps/:app/versions") { request, context in
      _ = try context.require(.read)
      let query = request.uri.queryParameters
      let limit = try queryInt(request, "limit").map { value -> Int in
        guard (1...1000).contains(value) else {
          throw OperationError(.usage, "limit must be between 1 and 1000")
        }
        return value
      }
      let environment = try query.get("env").map { try validateName(String($0), as: "environment") }
      let page = try await vault.versionsPage(
        app: try app(context), environment: environment, before: try queryInt(request, "before"),
        limit: limit ?? 50, logger: context.logger)
      return try JSONReply.ok(VersionsList(versions: page.rows, nextBefore: page.nextBefore))
    }
    api.get("apps/:app/versions/:n") { request, context in
      _ = try context.require(.read)
      let detail = try await vault.show(app: try app(context), number: try number(context), logger: context.logger)
      let etag = Self.etag(detail.version)
      if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
      return try JSONReply.make(detail, headers: [.eTag: etag])
    }
    api.get("apps/:app/versions/:n/diff") { request, context in
      _ = try context.require(.read)
      let app = try app(context)
      let number = try number(context)
      let against = try queryInt(request, "against")
      let details = try queryBool(request, "details") ?? true
      return try JSONReply.ok(
        try await vault.diff(
          app: app, against.map { .versions(from: $0, to: number) } ?? .version(number), details: details,
          asText: try queryBool(request, "text") ?? false, logger: context.logger))
    }
    api.get("apps/:app/versions/:n/archive") { request, context in
      let principal = try context.require(.read)
      let version = try await vault.resolve(
        app: try app(context), environment: nil, number: try number(context), logger: context.logger)
      return try download(version, environment: nil, request: request, principal: principal, logger: context.logger)
    }
    api.get("apps/:app/environments/:env/archive") { request, context in
      let principal = try context.require(.read)
      let environment = try environment(context)
      let version = try await vault.resolve(
        app: try app(context), environment: environment, number: nil, logger: context.logger)
      return try download(
        version, environment: environment, request: request, principal: principal, logger: context.logger)
    }
    api.post("apps/:app/environments/:env/uploads") { request, context in
      try await upload(request, context: context)
    }
    api.post("apps/:app/environments/:env/uploads/:id/apply") { request, context in
      try await apply(request, context: context)
    }
    api.delete("apps/:app/environments/:env/uploads/:id") { _, context in
      let app = try app(context)
      let environment = try environment(context)
      _ = try context.require(.change(production: try await isProduction(app, environment, context)))
      let id = try context.parameters.require("id")
      guard let upload = await uploads.upload(id, now: vault.clock()), upload.app == app,
        upload.environment == environment
      else { throw OperationError(.notFound, "no upload \(id) waits for \(app)/\(environment)") }
      try Self.requireOwner(upload, principal: try context.require(.read))
      await uploads.remove(id)
      return Response(status: .noContent)
    }
    api.post("apps/:app/environments/:env/restore") { request, context in
      let app = try app(context)
      let environment = try environment(context)
      let principal = try context.require(.change(production: try await isProduction(app, environment, context)))
      let body = try await JSONReply.decode(RestoreRequest.self, request, context)
      if try queryBool(request, "dryRun") == true {
        return try JSONReply.ok(
          try await vault.previewRestore(
            app: app, number: body.version, environment: environment, logger: context.logger))
      }
      let expected = try expectedHead(request)
      let change = try await headMovedIsPreconditionFailed(expected) {
        try await vault.restore(
          app: app, number: body.version, environment: environment, comment: body.comment, author: principal.name,
          expectedHead: expected, logger: context.logger)
      }
      return try changeReply(change)
    }
    api.post("apps/:app/sync") { request, context in
      let principal = try context.require(.sync)
      let app = try app(context)
      let body = try await JSONReply.decode(SyncRequest.self, request, context)
      if let to = body.to { try validateName(to, as: "environment") }
      if try queryBool(request, "dryRun") == true {
        return try JSONReply.ok(
          try await vault.previewSync(app: app, number: body.version, environment: body.to, logger: context.logger))
      }
      let expected = try expectedHead(request)
      let result = try await headMovedIsPreconditionFailed(expected) {
        try await vault.sync(
          app: app, number: body.version, environment: body.to, author: principal.name, expectedHead: expected,
          logger: context.logger)
      }
      return try JSONReply.ok(result)
    }
    api.get("apps/:app/audit") { request, context in
      _ = try context.require(.read)
      let limit = try queryInt(request, "limit") ?? 100
      guard (1...10_000).contains(limit) else { throw OperationError(.usage, "limit must be between 1 and 10000") }
      return try JSONReply.ok(try await vault.audit(app: try app(context), limit: limit, logger: context.logger))
    }
  }

  // MARK: Uploads

  /// Spools the raw archive, checks it whole and previews it against the head; 201 with the
  /// preview, the previewed head as the `ETag` to name in the apply's `If-Match`.
  private func upload(_ request: Request, context: ServerContext) async throws -> Response {
    let app = try app(context)
    let environment = try environment(context)
    let principal = try context.require(.change(production: try await isProduction(app, environment, context)))
    let folder = uploads.folder
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let id = Secret.make().prefix(22).description
    let path = folder + "/upload-\(getpid())-" + id
    do {
      let received = try await UploadSpool.write(
        request.body, to: path, limit: configuration.maxUploadBytes, minimumRate: configuration.minimumUploadRate,
        grace: configuration.uploadGrace)
      let source = ArchiveSource.named(path: path, name: Self.uploadName(request))
      let (contents, preview) = try await vault.previewImport(
        source, app: app, environment: environment, reader: try reader(request),
        allowOtherApp: try queryBool(request, "allowOtherApp") ?? false, logger: context.logger)
      await uploads.add(
        .init(
          id: id, app: app, environment: environment, path: path, name: source.displayName,
          plain: try queryBool(request, "plain") ?? false, preview: preview, author: principal.name,
          expiresAt: vault.clock().addingTimeInterval(configuration.uploadLifetime)))
      context.logger.info(
        "upload checked", metadata: ["app": "\(app)", "env": "\(environment)", "bytes": "\(received)"])
      let reply = UploadReply(
        id: id, preview: preview, treeDigest: contents.treeDigest, fileCount: contents.files.count,
        totalSize: contents.totalSize, archiveSHA256: contents.archiveSHA256, manifest: contents.manifest)
      return try JSONReply.make(reply, status: .created, headers: [.eTag: Self.headETag(preview.head)])
    } catch {
      unlink(path)
      if let refusal = error as? ArchiveRefusal { metrics.refusedUpload(rule: refusal.rule) }
      throw error
    }
  }

  /// Adds the checked upload as a new version, if the head is still the one its preview showed.
  private func apply(_ request: Request, context: ServerContext) async throws -> Response {
    let app = try app(context)
    let environment = try environment(context)
    let principal = try context.require(.change(production: try await isProduction(app, environment, context)))
    let id = try context.parameters.require("id")
    let key = request.headers[HTTPField.Name("Idempotency-Key")!].map { "\(principal.name) \(id) \($0)" }
    // One apply of an upload at a time: a second one, a client's retry, waits for the first, then
    // answers what it answered when it carries the same Idempotency-Key.
    let waitUntil = Date().addingTimeInterval(600)
    while !(await uploads.claim(id)) {
      if let key, let reply = await uploads.reply(for: key, now: vault.clock()) { return Self.replay(reply) }
      guard Date() < waitUntil else {
        throw Problem(
          .serviceUnavailable, type: "busy", detail: "this upload is being applied; try again", retryAfter: 2)
      }
      try await Task.sleep(for: .milliseconds(50))
    }
    do {
      let response = try await applyClaimed(request, context: context, id: id, key: key, principal: principal)
      await uploads.release(id)
      return response
    } catch {
      await uploads.release(id)
      throw error
    }
  }

  private func applyClaimed(
    _ request: Request, context: ServerContext, id: String, key: String?, principal: Principal
  ) async throws -> Response {
    let app = try app(context)
    let environment = try environment(context)
    if let key, let reply = await uploads.reply(for: key, now: vault.clock()) { return Self.replay(reply) }
    guard let ifMatch = request.headers[.ifMatch] else {
      throw Problem(
        .preconditionRequired, type: "if-match-required",
        detail: "send the upload's ETag in If-Match, so that a head that moved since the preview is not overwritten")
    }
    guard let upload = await uploads.upload(id, now: vault.clock()), upload.app == app,
      upload.environment == environment
    else { throw OperationError(.notFound, "no upload \(id) waits for \(app)/\(environment); upload again") }
    try Self.requireOwner(upload, principal: principal)
    guard ifMatch == Self.headETag(upload.preview.head) else {
      throw Problem(
        .preconditionFailed, type: "head-moved",
        detail: "If-Match \(ifMatch) is not the ETag of this upload's preview (\(Self.headETag(upload.preview.head)))")
    }
    let body = try await JSONReply.collect(request)
    let comment = body.readableBytes == 0 ? nil : try JSONReply.decode(ApplyRequest.self, from: body).comment
    let result: Vault.ImportResult
    do {
      result = try await vault.importArchive(
        .named(path: upload.path, name: upload.name), app: app, environment: environment, comment: comment,
        author: principal.name,
        reader: ArchiveReader(limits: configuration.limits, layout: upload.plain ? .plain : .manifest),
        allowOtherApp: true, dryRun: false, expectedHead: upload.preview.expectedHead, logger: context.logger)
    } catch let error as OperationError where error.kind == .conflict {
      await uploads.remove(id)  // its preview no longer holds: it is uploaded again or not at all
      throw Problem(
        .preconditionFailed, type: "head-moved",
        detail: "the head of \(app)/\(environment) moved since this upload was previewed; preview it again. \(error)")
    }
    await uploads.remove(id)
    guard case .imported(let change) = result.outcome else { throw OperationError(.internal, "an apply ran dry") }
    let reply = try changeReplyParts(change)
    if let key { await uploads.remember(reply, for: key, now: vault.clock()) }
    return try changeReply(change)
  }

  /// A remembered apply's answer, again.
  static func replay(_ reply: (status: Int, body: Data, etag: String?)) -> Response {
    var headers: HTTPFields = [.contentType: "application/json"]
    if let etag = reply.etag { headers[.eTag] = etag }
    return Response(
      status: .init(code: reply.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: reply.body)))
  }

  /// An upload is applied or cancelled by who uploaded it, or an admin: its preview was theirs.
  static func requireOwner(_ upload: UploadRegistry.Upload, principal: Principal) throws {
    guard upload.author == principal.name || principal.role == .admin else {
      throw Problem(.forbidden, type: "forbidden", detail: "this upload is \(upload.author)'s to apply or cancel")
    }
  }

  /// The reader of an upload: the server's limits, and the plain layout when asked for.
  private func reader(_ request: Request) throws -> ArchiveReader {
    ArchiveReader(limits: configuration.limits, layout: try queryBool(request, "plain") == true ? .plain : .manifest)
  }

  /// What an upload is called in comments and the audit log: `?name=` (its file's name), else "an upload".
  static func uploadName(_ request: Request) -> String {
    let name = request.uri.queryParameters.get("name").map { String($0) } ?? ""
    return name.isEmpty ? "an upload" : String(SafeText.escaping(name).prefix(200))
  }

  // MARK: Downloads

  /// Streams `version` as an archive, a piece at a time, never built in memory.
  private func download(
    _ version: Version, environment: String?, request: Request, principal: Principal, logger: Logger
  ) throws -> Response {
    let compression =
      try request.uri.queryParameters.get("compression").map { text -> Compression in
        guard let compression = Compression(rawValue: String(text)), compression != .bzip2 else {
          throw OperationError(.usage, "compression must be gzip, zstd, xz or none")
        }
        return compression
      } ?? .gzip
    let label = environment ?? version.environment
    let etag = Self.etag(version, compression: compression)
    if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
    let name = "\(version.app)-\(label)-v\(version.number)\(compression.fileExtension)"
    let headers: HTTPFields = [
      .contentType: compression.mediaType, .contentDisposition: "attachment; filename=\"\(name)\"", .eTag: etag,
    ]
    let vault = self.vault
    return Response(
      status: .ok, headers: headers,
      body: ResponseBody { writer in
        let pieces = AsyncThrowingChannel<ByteBuffer, any Error>()
        try await withThrowingTaskGroup(of: Void.self) { group in
          group.addTask {
            do {
              _ = try await vault.export(
                version, environment: environment, compression: compression,
                to: .stream(name: "a download") { await pieces.send(ByteBuffer(bytes: $0)) }, author: principal.name,
                logger: logger)
              pieces.finish()
            } catch {
              pieces.fail(error)
            }
          }
          for try await piece in pieces { try await writer.write(piece) }
          try await group.waitForAll()
        }
        try await writer.finish(nil)
      })
  }

  // MARK: Helpers

  /// A change's reply as status, JSON body and ETag, as an `Idempotency-Key` remembers it.
  private func changeReplyParts(_ change: Vault.Change) throws -> (status: Int, body: Data, etag: String?) {
    switch change {
    case .created(let version, let changes):
      let body = try JSONCoding.encoder().encode(ChangeReply(version: version, changes: changes, unchanged: false))
      return (201, body, Self.headETag(version.number))
    case .unchanged(let head):
      let body = try JSONCoding.encoder().encode(ChangeReply(version: head, changes: [], unchanged: true))
      return (200, body, Self.headETag(head.number))
    }
  }

  private func changeReply(_ change: Vault.Change) throws -> Response {
    switch change {
    case .created(let version, let changes):
      return try JSONReply.make(
        ChangeReply(version: version, changes: changes, unchanged: false), status: .created,
        headers: [.eTag: Self.headETag(version.number)])
    case .unchanged(let head):
      return try JSONReply.make(
        ChangeReply(version: head, changes: [], unchanged: true), headers: [.eTag: Self.headETag(head.number)])
    }
  }

  /// Whether `environment` is production, asked only of a signed-in caller.
  private func isProduction(_ app: String, _ environment: String, _ context: ServerContext) async throws -> Bool {
    try context.requireSignedIn()
    return try await vault.app(app, logger: context.logger).environment(environment).isProduction
  }

  /// A change decided on the head the client named (`If-Match`) that finds another answers 412, as an
  /// upload's apply does; without `If-Match`, the store's conflict stands (409).
  private func headMovedIsPreconditionFailed<T>(_ expected: Vault.ExpectedHead?, _ change: () async throws -> T)
    async throws -> T
  {
    do {
      return try await change()
    } catch let error as OperationError where error.kind == .conflict && expected != nil {
      throw Problem(.preconditionFailed, type: "head-moved", detail: error.message)
    }
  }

  /// `If-Match` on a restore or sync: the head its preview showed, which must still be the head.
  private func expectedHead(_ request: Request) throws -> Vault.ExpectedHead? {
    guard let value = request.headers[.ifMatch] else { return nil }
    if value == Self.headETag(nil) { return Vault.ExpectedHead.none }
    guard value.hasPrefix("\"head-"), value.hasSuffix("\""), value.count > 7,
      value.dropFirst(6).dropLast().allSatisfy(\.isASCII), value.dropFirst(6).dropLast().allSatisfy(\.isNumber),
      let number = Int(value.dropFirst(6).dropLast())
    else {
      throw OperationError(.usage, "If-Match must be a head ETag such as \"head-12\"")
    }
    return .version(number)
  }

  /// The ETag naming an environment's head: what a change decided on it carries in `If-Match`.
  static func headETag(_ head: Int?) -> String { head.map { "\"head-\($0)\"" } ?? "\"head-none\"" }

  /// A version's ETag: its number and tree, and for an archive its compression.
  static func etag(_ version: Version, compression: Compression? = nil) -> String {
    let tree = version.treeDigest.value.dropFirst("sha256:".count).prefix(32)
    return "\"v\(version.number)-" + (compression.map { "\($0.rawValue)-" } ?? "") + "\(tree)\""
  }
}

/// An optional boolean query parameter: `true` or `false`; anything else is a usage error.
func queryBool(_ request: Request, _ name: String) throws -> Bool? {
  switch request.uri.queryParameters.get(name) {
  case nil: return nil
  case "true": return true
  case "false": return false
  default: throw OperationError(.usage, "`\(name)` must be true or false")
  }
}

/// An optional integer query parameter; one that is there but no integer is a usage error.
func queryInt(_ request: Request, _ name: String) throws -> Int? {
  guard let text = request.uri.queryParameters.get(name) else { return nil }
  guard let value = Int(String(text)) else {
    throw OperationError(.usage, "`\(name)` must be an integer, not `\(SafeText.escaping(String(text)))`")
  }
  return value
}

/// Route parameters and names, checked against the naming rule before use.
func app(_ context: ServerContext) throws -> String {
  try validateName(try context.parameters.require("app"), as: "app")
}

func environment(_ context: ServerContext) throws -> String {
  try validateName(try context.parameters.require("env"), as: "environment")
}

func number(_ context: ServerContext) throws -> Int {
  let text = try context.parameters.require("n")
  guard let number = Int(text.hasPrefix("v") ? String(text.dropFirst()) : text), number > 0 else {
    throw OperationError(.usage, "`\(SafeText.escaping(text))` is not a version number")
  }
  return number
}

@discardableResult
func validateName(_ name: String, as what: String) throws -> String {
  try Name.validate(name, as: what)
  return name
}

extension Compression {
  var mediaType: String {
    switch self {
    case .gzip: return "application/gzip"
    case .zstd: return "application/zstd"
    case .xz: return "application/x-xz"
    case .bzip2: return "application/x-bzip2"
    case .none: return "application/x-tar"
    }
  }
}

// MARK: Bodies

struct NewApp: Decodable {
  var name: String
  var environments: [String]?
  var production: String?
}

struct NewEnvironment: Decodable {
  var name: String
  var production: Bool?
}

struct RestoreRequest: Decodable {
  var version: Int
  var comment: String?
}

struct SyncRequest: Decodable {
  var version: Int
  var to: String?
}

struct VersionsList: Encodable {
  var versions: [Vault.VersionsPage.Row]
  @ExplicitNull var nextBefore: Int?
}

struct UploadReply: Encodable {
  var id: String
  var preview: Vault.Preview
  var treeDigest: TreeDigest
  var fileCount: Int
  var totalSize: Int64
  var archiveSHA256: SHA256Hex
  @ExplicitNull var manifest: Manifest?
}

struct ChangeReply: Codable {
  var version: Version
  var changes: [FileChange]
  var unchanged: Bool
}

struct ApplyRequest: Decodable {
  var comment: String?
}

/// JSON replies in Confvault's one JSON style.
enum JSONReply {
  static func ok<Value: Encodable>(_ value: Value) throws -> Response { try make(value) }

  static func make<Value: Encodable>(_ value: Value, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:])
    throws -> Response
  {
    var headers = headers
    headers[.contentType] = "application/json"
    return Response(
      status: status, headers: headers,
      body: .init(byteBuffer: ByteBuffer(bytes: try JSONCoding.encoder().encode(value))))
  }

  static func decode<Value: Decodable>(_ type: Value.Type, _ request: Request, _ context: ServerContext) async throws
    -> Value
  {
    try decode(type, from: try await collect(request))
  }

  /// A small request body, whole: 413 past 64 KiB.
  static func collect(_ request: Request) async throws -> ByteBuffer {
    do {
      return try await request.body.collect(upTo: 64 << 10)
    } catch is NIOTooManyBytesError {
      throw Problem(.contentTooLarge, type: "too-large", detail: "this route takes a body of 64 KiB at most")
    }
  }

  static func decode<Value: Decodable>(_ type: Value.Type, from body: ByteBuffer) throws -> Value {
    do {
      return try JSONCoding.decoder().decode(type, from: Data(buffer: body))
    } catch {
      throw OperationError(.usage, "the request body is not the JSON this route takes: \(error)")
    }
  }
}
