import ConfvaultCore
import Foundation
import PostgresNIO

/// Users, tokens and sessions live in the database, so that every server of the store knows them.
extension PostgresStore: PrincipalStore {
  public func users() async throws -> [UserRecord] {
    try await reading(snapshot: false) { session in
      try await session.rows("SELECT name, role, created_at, password_hash FROM user_account ORDER BY name")
        .map(Self.userRecord)
    }
  }

  public func user(_ name: String) async throws -> UserRecord? {
    try await reading(snapshot: false) { session in
      try await session.one(
        "SELECT name, role, created_at, password_hash FROM user_account WHERE name = \(name)"
      ).map(Self.userRecord)
    }
  }

  public func addUser(_ user: UserRecord) async throws {
    try await writing { session in
      // Users and tokens author changes by name: one name, one principal. The lock keeps two servers
      // from giving one name to a user and a token at the same moment.
      try await Self.lockPrincipalNames(session)
      if try await session.one("SELECT 1 FROM user_account WHERE name = \(user.name)") != nil {
        throw OperationError(.conflict, "user '\(user.name)' exists already")
      }
      if try await session.one("SELECT 1 FROM api_token WHERE name = \(user.name)") != nil {
        throw OperationError(.conflict, "'\(user.name)' is a token's name already; a user needs a name of its own")
      }
      try await session.execute(
        """
        INSERT INTO user_account (name, role, password_hash, created_at)
        VALUES (\(user.name), \(user.role.rawValue), \(user.passwordHash), \(StoredTime.seconds(user.createdAt)))
        """)
    }
  }

  public func removeUser(_ name: String) async throws {
    try await writing { session in
      try await session.execute("DELETE FROM session WHERE user_name = \(name)")
      guard try await session.one("DELETE FROM user_account WHERE name = \(name) RETURNING 1") != nil else {
        throw OperationError(.notFound, "no user '\(name)'")
      }
    }
  }

  public func tokens() async throws -> [TokenRecord] {
    try await reading(snapshot: false) { session in
      try await session.rows("SELECT name, role, created_at, revoked_at, hash FROM api_token ORDER BY name")
        .map(Self.tokenRecord)
    }
  }

  public func token(hash: SHA256Hex) async throws -> TokenRecord? {
    try await reading(snapshot: false) { session in
      try await session.one(
        "SELECT name, role, created_at, revoked_at, hash FROM api_token WHERE hash = \(hash.bytes)"
      ).map(Self.tokenRecord)
    }
  }

  public func addToken(_ token: TokenRecord) async throws {
    try await writing { session in
      try await Self.lockPrincipalNames(session)
      if try await session.one("SELECT 1 FROM api_token WHERE name = \(token.name)") != nil {
        throw OperationError(
          .conflict, "a token named '\(token.name)' exists already (revoked tokens keep their names)")
      }
      if try await session.one("SELECT 1 FROM user_account WHERE name = \(token.name)") != nil {
        throw OperationError(.conflict, "'\(token.name)' is a user's name already; a token needs a name of its own")
      }
      try await session.execute(
        """
        INSERT INTO api_token (name, role, hash, created_at, revoked_at)
        VALUES (\(token.name), \(token.role.rawValue), \(token.hash.bytes), \(StoredTime.seconds(token.createdAt)), NULL)
        """)
    }
  }

  public func revokeToken(_ name: String, at: Date) async throws {
    try await writing { session in
      guard
        try await session.one(
          """
          UPDATE api_token SET revoked_at = \(StoredTime.seconds(at)) WHERE name = \(name) AND revoked_at IS NULL
          RETURNING 1
          """) != nil
      else { throw OperationError(.notFound, "no live token named '\(name)'") }
    }
  }

  public func addSession(_ session: SessionRecord) async throws {
    try await writing { sql in
      try await sql.execute(
        """
        INSERT INTO session (hash, user_name, csrf_token, expires_at)
        VALUES (\(session.hash.bytes), \(session.user), \(session.csrfToken), \(StoredTime.seconds(session.expiresAt)))
        """)
      // Expired sessions go as new ones come.
      try await sql.execute("DELETE FROM session WHERE expires_at < \(StoredTime.seconds(Date()))")
    }
  }

  public func session(hash: SHA256Hex, now: Date) async throws -> SessionRecord? {
    try await reading(snapshot: false) { sql in
      try await sql.one(
        """
        SELECT hash, user_name, csrf_token, expires_at FROM session
        WHERE hash = \(hash.bytes) AND expires_at > \(StoredTime.seconds(now))
        """
      ).map { row in
        let (hash, user, csrf, expires) = try row.decode((Data, String, String, Int64).self)
        return SessionRecord(
          hash: try Queries.digest(hash), user: user, csrfToken: csrf, expiresAt: StoredTime.date(expires))
      }
    }
  }

  public func removeSession(hash: SHA256Hex) async throws {
    try await writing { session in try await session.execute("DELETE FROM session WHERE hash = \(hash.bytes)") }
  }

  /// Serialises changes to principal names across servers (a transaction-level advisory lock).
  private static func lockPrincipalNames(_ session: SQLSession) async throws {
    try await session.execute("SELECT pg_advisory_xact_lock(\(Migrations.lockKey + 1))")
  }

  private static func role(_ text: String) throws -> Role {
    guard let role = Role(rawValue: text) else {
      throw OperationError(.internal, "a stored role is damaged: `\(text)`", hint: .runCheck)
    }
    return role
  }

  private static func userRecord(_ row: PostgresRow) throws -> UserRecord {
    let (name, role, created, hash) = try row.decode((String, String, Int64, String).self)
    return UserRecord(name: name, role: try Self.role(role), createdAt: StoredTime.date(created), passwordHash: hash)
  }

  private static func tokenRecord(_ row: PostgresRow) throws -> TokenRecord {
    let (name, role, created, revoked, hash) = try row.decode((String, String, Int64, Int64?, Data).self)
    return TokenRecord(
      name: name, role: try Self.role(role), createdAt: StoredTime.date(created),
      revokedAt: revoked.map(StoredTime.date), hash: try Queries.digest(hash))
  }
}
