import AsyncHTTPClient
import ConfvaultCore
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// The use cases over a Confvault server's HTTP API, as `--server` runs them: the same results as
/// `Vault` on a local store, and every problem mapped back to the failure kind it came from.
///
/// The server decides who acts: its token's name is the author of every change.
public struct RemoteVault: VaultService {
  /// The server's base URL, without a trailing slash.
  public let server: String
  let token: String?

  public init(server: String, token: String?) {
    var server = server
    while server.hasSuffix("/") { server.removeLast() }
    self.server = server
    self.token = token
  }

  // MARK: Reading

  public func apps(logger: Logger) async throws -> [AppInfo] {
    try await get("/apps")
  }

  public func app(_ name: String, logger: Logger) async throws -> AppInfo {
    // The environments' route answers the server's own "no app" problem; the list has the rest.
    let environments: [EnvironmentInfo] = try await get("/apps/\(try path(name))/environments")
    let created = try await apps(logger: logger).first { $0.name == name }?.createdAt ?? Date(timeIntervalSince1970: 0)
    return AppInfo(name: name, createdAt: created, environments: environments)
  }

  public func versionsPage(
    app: String, environment: String?, before: Int?, limit: Int, logger: Logger
  ) async throws -> Vault.VersionsPage {
    var query = [("limit", String(limit))]
    if let environment { query.append(("env", environment)) }
    if let before { query.append(("before", String(before))) }
    let list: VersionsList = try await get("/apps/\(try path(app))/versions", query: query)
    return Vault.VersionsPage(
      app: try await self.app(app, logger: logger), rows: list.versions, nextBefore: list.nextBefore)
  }

  public func show(app: String, number: Int, logger: Logger) async throws -> Vault.VersionDetail {
    try await get("/apps/\(try path(app))/versions/\(number)")
  }

  public func diff(app: String, _ selection: Vault.DiffSelection, details: Bool, asText: Bool, logger: Logger)
    async throws -> Vault.Diff
  {
    let (number, against): (Int, Int?)
    switch selection {
    case .version(let version): (number, against) = (version, nil)
    case .versions(let from, let to): (number, against) = (to, from)
    case .environments(let from, let to):
      let info = try await self.app(app, logger: logger)
      func head(_ name: String) throws -> Int {
        guard let head = try info.environment(name).head else {
          throw OperationError(.notFound, "environment '\(name)' of app '\(app)' has no version yet")
        }
        return head
      }
      (number, against) = (try head(to), try head(from))
    }
    var query = against.map { [("against", String($0))] } ?? []
    if !details { query.append(("details", "false")) }
    if asText { query.append(("text", "true")) }
    return try await get("/apps/\(try path(app))/versions/\(number)/diff", query: query)
  }

  public func audit(app: String?, limit: Int, logger: Logger) async throws -> [AuditEntry] {
    var names: [String] = []
    if let app { names = [app] } else { names = try await apps(logger: logger).map(\.name) }
    var entries: [AuditEntry] = []
    for name in names {
      entries +=
        try await get("/apps/\(try path(name))/audit", query: [("limit", String(min(limit, 10_000)))]) as [AuditEntry]
    }
    return Array(entries.sorted { $0.id < $1.id }.suffix(limit))
  }

  public func resolve(app: String, environment: String?, number: Int?, logger: Logger) async throws -> Version {
    if let number { return try await show(app: app, number: number, logger: logger).version }
    guard let environment else { throw OperationError(.usage, "name a version or an environment") }
    guard let head = try await self.app(app, logger: logger).environment(environment).head else {
      throw OperationError(
        .notFound, "environment '\(environment)' of app '\(app)' has no version yet; push or import one first")
    }
    return try await show(app: app, number: head, logger: logger).version
  }

  // MARK: Archives

  public func export(
    _ version: Version, environment: String?, compression: Compression, to output: ArchiveOutput, author: String,
    logger: Logger
  ) async throws -> ExportedArchive {
    let route =
      environment.map { "/apps/\(version.app)/environments/\($0)/archive" }
      ?? "/apps/\(version.app)/versions/\(version.number)/archive"
    let response = try await send(.GET, route, query: [("compression", compression.rawValue)])
    let target = try OpenedOutput(output)
    var hasher = SHA256Stream()
    var bytes: Int64 = 0
    for try await buffer in response.body {
      try buffer.withUnsafeReadableBytes { chunk in
        hasher.update(chunk)
        try target.sink.write(chunk)
      }
      bytes += Int64(buffer.readableBytes)
      try await target.flush()
    }
    try await target.flush(all: true)
    try target.commit()
    return ExportedArchive(
      fileCount: version.fileCount, totalSize: version.totalSize, treeDigest: version.treeDigest, bytes: bytes,
      sha256: hasher.finalize())
  }

  public func writeBackup(
    _ version: Version, environment: String, compression: Compression, to output: ArchiveOutput, logger: Logger
  ) async throws -> ExportedArchive {
    // The head of `environment` was asked for by number: download it by number, named for the environment.
    try await export(version, environment: nil, compression: compression, to: output, author: "", logger: logger)
  }

  /// The server records each download in its audit log as it serves it.
  public func recordBackup(
    app: String, environment: String, version: Int?, author: String, detail: String, archiveSHA256: SHA256Hex?
  ) async throws {}

  // MARK: Changing

  public func importArchive(
    _ source: ArchiveSource, app: String, environment: String, comment: String?, author: String,
    reader: ArchiveReader, allowOtherApp: Bool, dryRun: Bool, expectedHead: Vault.ExpectedHead?,
    approval: Approval?, logger: Logger
  ) async throws -> Vault.ImportResult {
    // A head that moved between the upload's preview and its apply makes the upload be previewed
    // again, as a local import decides again, unless the caller named the head it decided on.
    var attempt = 1
    while true {
      let (upload, etag) = try await uploadArchive(
        source, app: app, environment: environment, plain: reader.layout == .plain, allowOtherApp: allowOtherApp)
      let base = "/apps/\(try path(app))/environments/\(try path(environment))/uploads/\(upload.id)"
      if let expectedHead, expectedHead != upload.preview.expectedHead {
        _ = try? await send(.DELETE, base)
        throw OperationError(
          .conflict, "the head of \(app)/\(environment) moved since the change was decided; nothing was changed")
      }
      if dryRun {
        _ = try? await send(.DELETE, base)
        var head: Version?
        if let number = upload.preview.head { head = try await show(app: app, number: number, logger: logger).version }
        return result(upload, .dryRun(changes: upload.preview.changes, head: head))
      }
      var pinned = false
      if let approval {
        do {
          pinned = try await approval(upload.preview)
        } catch {
          _ = try? await send(.DELETE, base)
          throw error
        }
      }
      do {
        let body = try JSONCoding.encoder().encode(ApplyBody(comment: comment))
        let reply: ChangeReply = try await decode(
          try await send(.POST, base + "/apply", headers: [("If-Match", etag)], body: .bytes(ByteBuffer(data: body))))
        return result(upload, .imported(reply.change))
      } catch let error as OperationError
        where error.kind == .conflict && expectedHead == nil && !pinned && attempt < 5
      {
        logger.debug("the head moved before the apply; uploading again", metadata: ["attempt": "\(attempt)"])
        attempt += 1
      }
    }
  }

  public func restore(
    app: String, number: Int, environment: String, comment: String?, author: String,
    expectedHead: Vault.ExpectedHead?, logger: Logger
  ) async throws -> Vault.Change {
    let body = try JSONCoding.encoder().encode(RestoreBody(version: number, comment: comment))
    let reply: ChangeReply = try await decode(
      try await send(
        .POST, "/apps/\(try path(app))/environments/\(try path(environment))/restore",
        headers: Self.ifMatch(expectedHead), body: .bytes(ByteBuffer(data: body))))
    return reply.change
  }

  public func sync(
    app: String, number: Int, environment: String?, author: String, expectedHead: Vault.ExpectedHead?,
    logger: Logger
  ) async throws -> Vault.SyncResult {
    let body = try JSONCoding.encoder().encode(SyncBody(version: number, to: environment))
    return try await decode(
      try await send(
        .POST, "/apps/\(try path(app))/sync", headers: Self.ifMatch(expectedHead), body: .bytes(ByteBuffer(data: body)))
    )
  }

  public func previewRestore(app: String, number: Int, environment: String, logger: Logger) async throws
    -> Vault.Preview
  {
    let body = try JSONCoding.encoder().encode(RestoreBody(version: number, comment: nil))
    return try await decode(
      try await send(
        .POST, "/apps/\(try path(app))/environments/\(try path(environment))/restore", query: [("dryRun", "true")],
        body: .bytes(ByteBuffer(data: body))))
  }

  public func previewSync(app: String, number: Int, environment: String?, logger: Logger) async throws
    -> Vault.Preview
  {
    let body = try JSONCoding.encoder().encode(SyncBody(version: number, to: environment))
    return try await decode(
      try await send(
        .POST, "/apps/\(try path(app))/sync", query: [("dryRun", "true")], body: .bytes(ByteBuffer(data: body))))
  }

  // MARK: HTTP

  private func uploadArchive(
    _ source: ArchiveSource, app: String, environment: String, plain: Bool, allowOtherApp: Bool
  ) async throws -> (UploadReply, String) {
    let fd: Int32
    switch source {
    case .standardInput: fd = dup(STDIN_FILENO)
    case .file(let file), .named(let file, _):
      fd = open(file, O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else { throw SystemError(.open, file) }
    }
    defer { close(fd) }
    var query = [("name", source.displayName)]
    if plain { query.append(("plain", "true")) }
    if allowOtherApp { query.append(("allowOtherApp", "true")) }
    let response = try await send(
      .POST, "/apps/\(try path(app))/environments/\(try path(environment))/uploads", query: query,
      headers: [("Content-Type", "application/octet-stream")],
      body: .stream(FileChunks(fd: fd, name: source.displayName), length: .unknown))
    let etag = response.headers.first(name: "ETag") ?? ""
    return (try await decode(response), etag)
  }

  private func result(_ upload: UploadReply, _ outcome: Vault.ImportResult.Outcome) -> Vault.ImportResult {
    Vault.ImportResult(
      fileCount: upload.fileCount, totalSize: upload.totalSize, treeDigest: upload.treeDigest,
      archiveSHA256: upload.archiveSHA256, outcome: outcome)
  }

  private static func ifMatch(_ head: Vault.ExpectedHead?) -> [(String, String)] {
    switch head {
    case nil: return []
    case .some(.none): return [("If-Match", "\"head-none\"")]
    case .some(.version(let number)): return [("If-Match", "\"head-\(number)\"")]
    }
  }

  /// A name as a path component; names follow the naming rule, so they need no escaping.
  private func path(_ name: String) throws -> String {
    try Name.validate(name, as: "name")
    return name
  }

  private func get<Value: Decodable>(_ route: String, query: [(String, String)] = []) async throws -> Value {
    try await decode(try await send(.GET, route, query: query))
  }

  private func decode<Value: Decodable>(_ response: HTTPClientResponse) async throws -> Value {
    let body = try await response.body.collect(upTo: 256 << 20)
    do {
      return try JSONCoding.decoder().decode(Value.self, from: Data(buffer: body))
    } catch {
      throw OperationError(
        .internal, "the server at \(server) answered JSON this confvault does not read; are both the same version?",
        cause: error)
    }
  }

  /// One client for the process. A server that cannot be reached fails the command at once (75),
  /// instead of being retried until the request's deadline.
  private static let client: HTTPClient = {
    var configuration = HTTPClient.Configuration()
    configuration.timeout = .init(connect: .seconds(10), read: .seconds(600))
    configuration.connectionPool.retryConnectionEstablishment = false
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
  }()

  /// Sends a request; an answer that is not 2xx becomes the failure its problem document describes.
  private func send(
    _ method: HTTPMethod, _ route: String, query: [(String, String)] = [], headers: [(String, String)] = [],
    body: HTTPClientRequest.Body? = nil
  ) async throws -> HTTPClientResponse {
    var components = URLComponents(string: server + "/api/v1" + route)
    if !query.isEmpty { components?.queryItems = query.map { URLQueryItem(name: $0.0, value: $0.1) } }
    guard let url = components?.url?.absoluteString else {
      throw OperationError(.usage, "`\(server)` is not a server URL such as http://127.0.0.1:8080")
    }
    var request = HTTPClientRequest(url: url)
    request.method = method
    if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    request.body = body
    let response: HTTPClientResponse
    do {
      response = try await Self.client.execute(request, timeout: .hours(1))
    } catch let error as ConfvaultError {
      throw error
    } catch {
      throw OperationError(
        .temporaryFailure, "cannot reach the server at \(server): \(error); try again", cause: error)
    }
    guard (200..<300).contains(response.status.code) else { throw await failure(response) }
    return response
  }

  /// The failure a problem answer stands for, with the exit code its status maps back to.
  private func failure(_ response: HTTPClientResponse) async -> OperationError {
    let body = (try? await response.body.collect(upTo: 1 << 20)).map { Data(buffer: $0) } ?? Data()
    let problem = try? JSONDecoder().decode(ProblemBody.self, from: body)
    let detail = problem?.detail ?? "the server answered \(response.status.code) \(response.status.reasonPhrase)"
    let kind: FailureKind
    switch response.status.code {
    case 400, 428: kind = .usage
    case 401, 403: kind = .permissionDenied
    case 404: kind = .notFound
    case 409, 412: kind = .conflict
    case 413, 422: kind = .badInput
    case 408, 429, 503: kind = .temporaryFailure
    case 507: kind = .ioError
    default: kind = problem?.type == "/problems/not-allowed-now" ? .operationFailed : .internal
    }
    return OperationError(kind, detail, hint: problem?.hint.flatMap(Hint.init(code:)))
  }
}

/// A file descriptor's bytes as an async sequence of buffers, for a streamed upload.
struct FileChunks: AsyncSequence, Sendable {
  typealias Element = ByteBuffer
  let fd: Int32
  let name: String

  struct AsyncIterator: AsyncIteratorProtocol {
    let fd: Int32
    let name: String

    mutating func next() async throws -> ByteBuffer? {
      var buffer = ByteBuffer()
      buffer.reserveCapacity(1 << 20)
      let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { pointer in
        while true {
          let count = read(fd, pointer.baseAddress, pointer.count)
          if count >= 0 { return count }
          if errno != EINTR { throw SystemError(.read, name) }
        }
      }
      return count == 0 ? nil : buffer
    }
  }

  func makeAsyncIterator() -> AsyncIterator { AsyncIterator(fd: fd, name: name) }
}

// MARK: Bodies, as the API writes them

struct VersionsList: Decodable {
  var versions: [Vault.VersionsPage.Row]
  var nextBefore: Int?
}

struct UploadReply: Decodable {
  var id: String
  var preview: Vault.Preview
  var treeDigest: TreeDigest
  var fileCount: Int
  var totalSize: Int64
  var archiveSHA256: SHA256Hex
}

struct ChangeReply: Decodable {
  var version: Version
  var changes: [FileChange]
  var unchanged: Bool

  var change: Vault.Change { unchanged ? .unchanged(head: version) : .created(version, changes: changes) }
}

struct ApplyBody: Encodable { var comment: String? }
struct RestoreBody: Encodable {
  var version: Int
  var comment: String?
}
struct SyncBody: Encodable {
  var version: Int
  var to: String?
}

struct ProblemBody: Decodable {
  var type: String?
  var detail: String?
  var hint: String?
}
