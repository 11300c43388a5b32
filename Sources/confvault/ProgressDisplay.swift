import ConfvaultCore
import Foundation

/// Shows long work's progress on standard error: files and bytes done and the rate, redrawn on one
/// line, once the work has run for a second. Only on a terminal, and never with `--quiet`, so logs
/// and pipes get no control characters.
enum ProgressDisplay {
  static func run<T>(_ label: String, quiet: Bool, _ body: () async throws -> T) async throws -> T {
    guard !quiet, Terminal.isTerminal(STDERR_FILENO) else { return try await body() }
    let meter = ProgressMeter()
    let painter = Task { () -> Bool in
      let start = ContinuousClock.now
      var painted = false
      while !Task.isCancelled {
        try? await Task.sleep(for: .milliseconds(250))
        let elapsed = ContinuousClock.now - start
        guard !Task.isCancelled, elapsed >= .seconds(1) else { continue }
        if meter.isPaused {
          if painted { Terminal.redraw("") }
          painted = false
          continue
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        Terminal.redraw(line(label, meter.snapshot, seconds: seconds))
        painted = true
      }
      return painted
    }
    let result: Result<T, any Error>
    do {
      result = .success(try await ProgressMeter.$current.withValue(meter) { try await body() })
    } catch {
      result = .failure(error)
    }
    painter.cancel()
    if await painter.value { Terminal.redraw("") }
    return try result.get()
  }

  /// `importing (reading archive): 12,345 files, 45.6 MiB, 12.3 MiB/s`
  static func line(_ label: String, _ snapshot: ProgressMeter.Snapshot, seconds: Double) -> String {
    let rate = seconds > 0 ? Int64(Double(snapshot.bytes) / seconds) : 0
    let files = snapshot.files.formatted(.number.grouping(.automatic))
    return "\(label)\(snapshot.phase.isEmpty ? "" : " (\(snapshot.phase))"): \(files) files, "
      + "\(ByteCount.format(snapshot.bytes)), \(ByteCount.format(rate))/s"
  }
}
