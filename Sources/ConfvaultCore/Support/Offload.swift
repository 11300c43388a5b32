import Foundation

/// Runs blocking work (libarchive, file I/O) on a thread of its own, so an async caller's executor
/// (a server's event loops, Swift's cooperative pool) is never blocked by it.
public func offload<T: Sendable>(_ body: @Sendable @escaping () throws -> T) async throws -> T {
  // The caller's progress meter goes with the work to the other thread.
  let meter = ProgressMeter.current
  return try await withCheckedThrowingContinuation { continuation in
    DispatchQueue.global(qos: .userInitiated).async {
      continuation.resume(with: Result { try ProgressMeter.$current.withValue(meter) { try body() } })
    }
  }
}
