import Foundation

/// A user who signs in to the page with a password.
public struct UserRecord: Sendable, Equatable, Codable {
  public var name: String
  public var role: Role
  public var createdAt: Date
  /// The password's bcrypt hash; never the password.
  public var passwordHash: String

  public init(name: String, role: Role, createdAt: Date, passwordHash: String) {
    self.name = name
    self.role = role
    self.createdAt = createdAt
    self.passwordHash = passwordHash
  }
}

/// A named API token. Only its SHA-256 is stored: the token itself is shown once, when made.
public struct TokenRecord: Sendable, Equatable, Codable {
  public var name: String
  public var role: Role
  public var createdAt: Date
  @ExplicitNull public var revokedAt: Date?
  /// The SHA-256 of the token.
  public var hash: SHA256Hex

  public init(name: String, role: Role, createdAt: Date, revokedAt: Date?, hash: SHA256Hex) {
    self.name = name
    self.role = role
    self.createdAt = createdAt
    self.revokedAt = revokedAt
    self.hash = hash
  }
}

/// A signed-in browser session, stored under the SHA-256 of its cookie.
public struct SessionRecord: Sendable, Equatable {
  public var hash: SHA256Hex
  public var user: String
  /// The token every form and every changing request of the session must carry.
  public var csrfToken: String
  public var expiresAt: Date

  public init(hash: SHA256Hex, user: String, csrfToken: String, expiresAt: Date) {
    self.hash = hash
    self.user = user
    self.csrfToken = csrfToken
    self.expiresAt = expiresAt
  }
}

/// Where the server's users, tokens and sessions live: in the store, so that every server of a shared
/// store knows them. Secrets are kept only as hashes.
public protocol PrincipalStore: Sendable {
  func users() async throws -> [UserRecord]
  func user(_ name: String) async throws -> UserRecord?
  /// - Throws: `.conflict` when a user of that name exists.
  func addUser(_ user: UserRecord) async throws
  /// Removes a user and its sessions. - Throws: `.notFound`.
  func removeUser(_ name: String) async throws

  func tokens() async throws -> [TokenRecord]
  /// The token whose SHA-256 is `hash`, revoked or not.
  func token(hash: SHA256Hex) async throws -> TokenRecord?
  /// - Throws: `.conflict` when a token of that name exists.
  func addToken(_ token: TokenRecord) async throws
  /// - Throws: `.notFound` when no live token has that name.
  func revokeToken(_ name: String, at: Date) async throws

  func addSession(_ session: SessionRecord) async throws
  /// The live session stored under `hash`; expired ones are not returned.
  func session(hash: SHA256Hex, now: Date) async throws -> SessionRecord?
  func removeSession(hash: SHA256Hex) async throws
}

/// Making and checking secrets: tokens, session cookies, CSRF tokens.
public enum Secret {
  /// A new random secret, URL-safe, with `prefix` (`cvt_` for API tokens).
  public static func make(prefix: String = "") -> String {
    var generator = SystemRandomNumberGenerator()
    let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    return prefix
      + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
      .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
  }

  /// What is stored for a secret: its SHA-256.
  public static func hash(_ secret: String) -> SHA256Hex {
    SHA256Hex.of(Data(secret.utf8))
  }

  /// Compares two strings in time that does not depend on where they differ.
  public static func equal(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8)
    let y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var difference: UInt8 = 0
    for index in x.indices { difference |= x[index] ^ y[index] }
    return difference == 0
  }
}
