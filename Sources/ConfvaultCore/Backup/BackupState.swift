import Foundation

/// `.confvault-backup.json` in a backup folder: the last run, and each environment's last success and
/// last error, kept across runs so monitoring can see a backup that has silently stopped.
public struct BackupState: Codable, Sendable, Equatable {
  public struct Run: Codable, Sendable, Equatable {
    public var startedAt: Date
    public var finishedAt: Date
    public var written: Int
    public var unchanged: Int
    public var failed: Int
  }

  public struct Environment: Codable, Sendable, Equatable {
    public var lastSuccessAt: Date?
    public var lastFile: String?
    public var lastVersion: Int?
    public var lastSizeBytes: Int64?
    public var lastDurationSeconds: Double?
    public var lastErrorAt: Date?
    public var lastError: String?
    public var failuresTotal: Int = 0
  }

  public var lastRun: Run?
  /// Keyed by `app/environment`.
  public var environments: [String: Environment] = [:]

  /// Reads the folder's state, or an empty one.
  public static func load(from folder: String) -> BackupState {
    guard let data = FileManager.default.contents(atPath: folder + "/" + BackupRun.stateName) else {
      return BackupState()
    }
    return (try? JSONCoding.decoder().decode(BackupState.self, from: data)) ?? BackupState()
  }

  /// Merges a run's outcomes into the folder's state and writes it atomically.
  @discardableResult
  static func record(_ outcomes: [BackupRun.Outcome], startedAt: Date, in folder: String) throws -> BackupState {
    var state = load(from: folder)
    let now = Timestamp.now()
    for outcome in outcomes {
      let key = outcome.app + "/" + outcome.environment
      var entry = state.environments[key] ?? Environment()
      entry.lastDurationSeconds = (outcome.seconds * 1000).rounded() / 1000
      if outcome.status == .failed {
        entry.lastErrorAt = now
        entry.lastError = outcome.message
        entry.failuresTotal += 1
      } else {
        entry.lastSuccessAt = now
        entry.lastFile = outcome.file
        entry.lastVersion = outcome.version
        if let file = outcome.file, let size = try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int {
          entry.lastSizeBytes = Int64(size)
        }
      }
      state.environments[key] = entry
    }
    let count = { (status: BackupRun.Outcome.Status) in outcomes.filter { $0.status == status }.count }
    state.lastRun = Run(
      startedAt: startedAt, finishedAt: now, written: count(.written), unchanged: count(.unchanged),
      failed: count(.failed))
    try writeAtomically(try JSONCoding.encoder().encode(state), to: folder + "/" + BackupRun.stateName)
    return state
  }

  /// The state as a Prometheus textfile-collector file.
  public func prometheusText() -> String {
    func escape(_ value: String) -> String {
      value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        .replacingOccurrences(of: "\n", with: "\\n")
    }
    let keys = environments.keys.sorted()
    func labels(_ key: String) -> String {
      let parts = key.split(separator: "/", maxSplits: 1).map(String.init)
      return "{app=\"\(escape(parts[0]))\",env=\"\(escape(parts.count > 1 ? parts[1] : ""))\"}"
    }
    var text = ""
    func metric(_ name: String, _ type: String, _ help: String, _ value: (Environment) -> Double?) {
      text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
      for key in keys {
        if let number = value(environments[key]!) { text += "\(name)\(labels(key)) \(format(number))\n" }
      }
    }
    metric(
      "confvault_backup_last_success_timestamp_seconds", "gauge",
      "Unix time of the last backup written and read back, or found unchanged."
    ) {
      $0.lastSuccessAt?.timeIntervalSince1970
    }
    metric("confvault_backup_last_size_bytes", "gauge", "Size of the newest good backup file.") {
      $0.lastSizeBytes.map(Double.init)
    }
    metric("confvault_backup_duration_seconds", "gauge", "Seconds the last backup run took for the environment.") {
      $0.lastDurationSeconds
    }
    metric("confvault_backup_failures_total", "counter", "Failed backups of the environment into this folder.") {
      Double($0.failuresTotal)
    }
    return text
  }

  private func format(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
  }
}

/// Writes `data` to `path` through an `AtomicFile`, replacing what is there.
public func writeAtomically(_ data: Data, to path: String) throws {
  let file = try AtomicFile(path: path, replaceExisting: true)
  try data.withUnsafeBytes { bytes in
    var offset = 0
    while offset < bytes.count {
      let written = write(file.fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
      if written < 0 {
        if errno == EINTR { continue }
        throw SystemError(.write, path)
      }
      offset += written
    }
  }
  try file.commit()
}
