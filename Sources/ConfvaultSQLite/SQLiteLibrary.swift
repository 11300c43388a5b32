import CSQLiteConfig

/// What this process asks of the SQLite library itself: set once, before its first connection opens
/// (`SQLiteStore.init` asks for it first; nothing else in confvault opens a connection).
enum SQLiteLibrary {
  /// SQLite counts the memory it takes by default, under one mutex that every connection in the
  /// process shares, on each of its allocations. `check` reads on two connections at once, and its
  /// halves waited on that mutex several hundred times a run (perf's context switches); nothing in
  /// confvault reads those counts.
  private static let configured: Void = { _ = confvault_sqlite3_stop_counting_memory() }()

  /// Sets the library up, the first time only.
  static func prepare() { configured }
}
