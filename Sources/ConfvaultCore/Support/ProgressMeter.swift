import Foundation

/// Counts the files and bytes long work has done, for a front end to show while it runs.
///
/// The work finds the meter as a task-local value (`ProgressMeter.current`), carried into `offload`,
/// so use cases need no parameter for it; without one, counting costs nothing.
public final class ProgressMeter: @unchecked Sendable {
  /// The meter of the work running now, if its caller wants progress.
  @TaskLocal public static var current: ProgressMeter?

  public struct Snapshot: Sendable {
    /// What is being done now: "reading archive", "checking blobs".
    public var phase: String
    public var files: Int
    public var bytes: Int64
  }

  private let lock = NSLock()
  private var state = Snapshot(phase: "", files: 0, bytes: 0)

  public init() {}

  /// Counts `files` finished files and `bytes` bytes.
  public func add(files: Int = 0, bytes: Int64 = 0) {
    lock.withLock {
      state.files += files
      state.bytes += bytes
    }
  }

  /// Starts a new phase: its counts start again from zero.
  public func begin(_ phase: String) {
    lock.withLock { state = Snapshot(phase: phase, files: 0, bytes: 0) }
  }

  public var snapshot: Snapshot { lock.withLock { state } }

  /// Whether the front end should stop drawing for now (while it asks a question).
  public var isPaused: Bool {
    get { lock.withLock { paused } }
    set { lock.withLock { paused = newValue } }
  }
  private var paused = false
}
