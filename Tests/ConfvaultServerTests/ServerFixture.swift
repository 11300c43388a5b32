import ConfvaultCore
import ConfvaultSQLite
import ConfvaultServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore

/// A server over a new SQLite store holding the app `shop` (development, staging, production), a
/// first version in development, a user per role and a token per role, plus a revoked token.
final class ServerFixture: @unchecked Sendable {
  let folder: String
  let store: SQLiteStore
  let vault: Vault
  let server: ConfvaultServer
  /// A live token per role.
  var tokens: [Role: String] = [:]
  let revokedToken: String
  static let password = "correct horse battery"

  init(configuration: ServerConfiguration = ServerConfiguration()) async throws {
    var template = Array((NSTemporaryDirectory() + "/confvault-server-test-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { throw POSIXError(.EIO) }
    folder = String(cString: made)
    store = try SQLiteStore(folder: folder + "/store", create: true, logger: Logger(label: "test"))
    vault = Vault(store: store)
    server = ConfvaultServer(vault: vault, principals: store, configuration: configuration)
    let logger = Logger(label: "test")
    try await vault.createApp(
      "shop", environments: ["development", "staging", "production"], production: "production", author: "ana",
      logger: logger)
    _ = try await vault.push(
      app: "shop", environment: "development", folder: try Self.configuration(in: folder + "/v1", level: "info"),
      comment: "first", author: "ana", backup: false, logger: logger)
    for role in Role.allCases {
      let secret = Secret.make(prefix: "cvt_")
      try await store.addToken(
        TokenRecord(
          name: "\(role.rawValue)-token", role: role, createdAt: Date(), revokedAt: nil, hash: Secret.hash(secret)))
      tokens[role] = secret
      try await store.addUser(
        UserRecord(
          name: role.rawValue, role: role, createdAt: Date(), passwordHash: Passwords.hash(Self.password)))
    }
    revokedToken = Secret.make(prefix: "cvt_")
    try await store.addToken(
      TokenRecord(name: "old", role: .admin, createdAt: Date(), revokedAt: nil, hash: Secret.hash(revokedToken)))
    try await store.revokeToken("old", at: Date())
  }

  deinit { try? FileManager.default.removeItem(atPath: folder) }

  /// Writes a small configuration folder and returns its path.
  static func configuration(in path: String, level: String, extra: [String: String] = [:]) throws -> String {
    var files = [
      "settings.yaml": "level: \(level)\nport: 8080\n",
      "entities/customer.json": "{\"name\": \"text\", \"vip\": false}\n",
    ]
    files.merge(extra) { _, new in new }
    for (name, text) in files {
      let url = URL(fileURLWithPath: path + "/" + name)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(text.utf8).write(to: url)
    }
    return path
  }

  /// A v1 archive of a configuration with `level`, as bytes.
  func archive(level: String, extra: [String: String] = [:]) throws -> Data {
    let source = try Self.configuration(in: folder + "/src-\(UUID().uuidString)", level: level, extra: extra)
    let path = folder + "/\(UUID().uuidString).tar.gz"
    _ = try ConfigurationArchive.pack(
      folder: source, app: "shop", environment: "development", compression: .gzip,
      to: .file(path, replaceExisting: false))
    return try Data(contentsOf: URL(fileURLWithPath: path))
  }

  func application() -> some ApplicationProtocol {
    Application(router: server.router())
  }

  static func headers(_ token: String?, _ extra: HTTPFields = [:]) -> HTTPFields {
    var headers = extra
    if let token { headers[.authorization] = "Bearer \(token)" }
    return headers
  }

  /// What a user can see of the store, to compare before and after a refused change.
  func snapshot() async throws -> String {
    let versions = try await store.versions(app: "shop", environment: nil, before: nil, limit: 1000)
    let heads = try await store.app("shop").environments.map { "\($0.name)=\($0.head ?? 0)" }
    let audit = try await store.audit(app: "shop", limit: 1000)
    let check = try await store.check()
    return "\(versions.map(\.number)) \(heads) \(audit.count) \(check)"
  }
}

extension TestResponse {
  var text: String { String(buffer: body) }

  var json: [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:]
  }
}
