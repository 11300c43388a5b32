import ConfvaultCore
import Foundation
import GRDB

extension SQLiteStore: PrincipalStore {
  public func users() async throws -> [UserRecord] {
    try await reading { db in
      try Row.fetchAll(db, sql: "SELECT * FROM user_account ORDER BY name").map(Self.userRecord)
    }
  }

  public func user(_ name: String) async throws -> UserRecord? {
    try await reading { db in
      try Row.fetchOne(db, sql: "SELECT * FROM user_account WHERE name = ?", arguments: [name]).map(Self.userRecord)
    }
  }

  public func addUser(_ user: UserRecord) async throws {
    try await writing { db in
      if try Bool.fetchOne(db, sql: "SELECT 1 FROM user_account WHERE name = ?", arguments: [user.name]) == true {
        throw OperationError(.conflict, "user '\(user.name)' exists already")
      }
      // Users and tokens author changes by name: one name, one principal.
      if try Bool.fetchOne(db, sql: "SELECT 1 FROM api_token WHERE name = ?", arguments: [user.name]) == true {
        throw OperationError(.conflict, "'\(user.name)' is a token's name already; a user needs a name of its own")
      }
      try db.execute(
        sql: "INSERT INTO user_account (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
        arguments: [user.name, user.role.rawValue, user.passwordHash, Queries.seconds(user.createdAt)])
    }
  }

  public func removeUser(_ name: String) async throws {
    try await writing { db in
      try db.execute(sql: "DELETE FROM session WHERE user_name = ?", arguments: [name])
      try db.execute(sql: "DELETE FROM user_account WHERE name = ?", arguments: [name])
      guard db.changesCount > 0 else { throw OperationError(.notFound, "no user '\(name)'") }
    }
  }

  public func tokens() async throws -> [TokenRecord] {
    try await reading { db in
      try Row.fetchAll(db, sql: "SELECT * FROM api_token ORDER BY name").map(Self.tokenRecord)
    }
  }

  public func token(hash: SHA256Hex) async throws -> TokenRecord? {
    try await reading { db in
      try Row.fetchOne(db, sql: "SELECT * FROM api_token WHERE hash = ?", arguments: [hash.bytes]).map(Self.tokenRecord)
    }
  }

  public func addToken(_ token: TokenRecord) async throws {
    try await writing { db in
      if try Bool.fetchOne(db, sql: "SELECT 1 FROM api_token WHERE name = ?", arguments: [token.name]) == true {
        throw OperationError(
          .conflict, "a token named '\(token.name)' exists already (revoked tokens keep their names)")
      }
      if try Bool.fetchOne(db, sql: "SELECT 1 FROM user_account WHERE name = ?", arguments: [token.name]) == true {
        throw OperationError(.conflict, "'\(token.name)' is a user's name already; a token needs a name of its own")
      }
      try db.execute(
        sql: "INSERT INTO api_token (name, role, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, NULL)",
        arguments: [token.name, token.role.rawValue, token.hash.bytes, Queries.seconds(token.createdAt)])
    }
  }

  public func revokeToken(_ name: String, at: Date) async throws {
    try await writing { db in
      try db.execute(
        sql: "UPDATE api_token SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
        arguments: [Queries.seconds(at), name])
      guard db.changesCount > 0 else { throw OperationError(.notFound, "no live token named '\(name)'") }
    }
  }

  public func addSession(_ session: SessionRecord) async throws {
    try await writing { db in
      try db.execute(
        sql: "INSERT INTO session (hash, user_name, csrf_token, expires_at) VALUES (?, ?, ?, ?)",
        arguments: [session.hash.bytes, session.user, session.csrfToken, Queries.seconds(session.expiresAt)])
      // Expired sessions go as new ones come.
      try db.execute(sql: "DELETE FROM session WHERE expires_at < ?", arguments: [Queries.seconds(Date())])
    }
  }

  public func session(hash: SHA256Hex, now: Date) async throws -> SessionRecord? {
    try await reading { db in
      try Row.fetchOne(
        db, sql: "SELECT * FROM session WHERE hash = ? AND expires_at > ?",
        arguments: [hash.bytes, Queries.seconds(now)]
      ).map { row in
        SessionRecord(
          hash: try Queries.digest(row["hash"]), user: row["user_name"], csrfToken: row["csrf_token"],
          expiresAt: Queries.date(row["expires_at"]))
      }
    }
  }

  public func removeSession(hash: SHA256Hex) async throws {
    try await writing { db in try db.execute(sql: "DELETE FROM session WHERE hash = ?", arguments: [hash.bytes]) }
  }

  private static func role(_ row: Row) throws -> Role {
    let text: String = row["role"]
    guard let role = Role(rawValue: text) else {
      throw OperationError(.internal, "a stored role is damaged: `\(text)`", hint: .runCheck)
    }
    return role
  }

  private static func userRecord(_ row: Row) throws -> UserRecord {
    UserRecord(
      name: row["name"], role: try role(row), createdAt: Queries.date(row["created_at"]),
      passwordHash: row["password_hash"])
  }

  private static func tokenRecord(_ row: Row) throws -> TokenRecord {
    TokenRecord(
      name: row["name"], role: try role(row), createdAt: Queries.date(row["created_at"]),
      revokedAt: (row["revoked_at"] as Int64?).map(Queries.date), hash: try Queries.digest(row["hash"]))
  }
}
