import ConfvaultCore
import Foundation
import PostgresNIO

/// One leased connection, inside one transaction the store opened: the few ways the store's code
/// runs SQL on it. Every result is read to its end, so the connection is ready for the next statement
/// and an error raised while rows stream is not missed.
struct SQLSession: Sendable {
  let connection: PostgresConnection
  let logger: Logger

  func execute(_ query: PostgresQuery) async throws {
    for try await _ in try await connection.query(query, logger: logger) {}
  }

  func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
    try await connection.query(query, logger: logger).collect()
  }

  func one(_ query: PostgresQuery) async throws -> PostgresRow? {
    try await rows(query).first
  }

  /// Runs `query` and hands each row to `body` as it arrives, so a large result is never held whole.
  func forEach(_ query: PostgresQuery, _ body: (PostgresRow) throws -> Void) async throws {
    for try await row in try await connection.query(query, logger: logger) { try body(row) }
  }
}

extension PostgresRow {
  /// The cell of the column `name`, decoded as `T`.
  func get<T: PostgresDecodable>(_ name: String, as: T.Type = T.self) throws -> T {
    try makeRandomAccess()[name].decode(T.self)
  }
}

extension Data {
  /// As a parameter of a `bytea[]`.
  var buffer: ByteBuffer { ByteBuffer(bytes: self) }
}

/// Seconds since 1970, as every time is stored (as the SQLite store does: whole seconds).
enum StoredTime {
  static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }
  static func seconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970.rounded(.down)) }
}
