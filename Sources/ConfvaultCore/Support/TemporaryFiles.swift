import Foundation
import Synchronization

/// The temporary files and folders this process is writing, and those that processes now gone left.
///
/// `AtomicFile`, `AtomicFolder` and an import's staging area make their hidden path through `make`,
/// which records it until it is committed or discarded, so that a process stopped by SIGINT or
/// SIGTERM removes it before it ends (the executable's signal handler calls `removeAll()`). A process
/// killed outright (SIGKILL, a crash, a power cut) leaves its temporaries behind; `removeStale(in:)`
/// removes those, in a folder about to get a new one, once no process of their id runs.
public enum TemporaryFiles {
  private struct Registry {
    var paths: Set<String> = []
    /// Set by `removeAll()`: the process is ending, so nothing new is made.
    var closed = false
  }

  private static let registry = Mutex(Registry())

  /// The hidden name of a temporary for `name` in the same folder: `.<name>.tmp-<pid>-<random>`.
  static func hiddenName(for name: String) -> String {
    ".\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
  }

  /// Makes the temporary `path` with `body` and records it, both under the registry's lock, so that
  /// an interrupt either finds it recorded or stops it from being made.
  ///
  /// - Throws: what `body` throws; `.operationFailed` when the process is ending on a signal.
  static func make<Made: Sendable>(_ path: String, _ body: () throws -> Made) throws -> Made {
    try registry.withLock { registry throws -> Made in
      guard !registry.closed else {
        throw OperationError(.operationFailed, "interrupted; `\(path)` was not made")
      }
      let made = try body()
      registry.paths.insert(path)
      return made
    }
  }

  /// Forgets `path`: it was moved into place or removed.
  static func forget(_ path: String) {
    _ = registry.withLock { $0.paths.remove(path) }
  }

  /// Removes every temporary this process is writing, and makes no new one from then on.
  ///
  /// For a handler of a signal that ends the process; it runs on an ordinary thread (a dispatch
  /// source's), not inside the signal handler, so it may lock and allocate.
  public static func removeAll() {
    registry.withLock { registry in
      registry.closed = true
      for path in registry.paths { remove(path) }
      registry.paths.removeAll()
    }
  }

  /// Removes the temporaries in `folder` (`.<name>.tmp-<pid>-<n>`, files or folders) whose process
  /// no longer runs; returns how many.
  ///
  /// A temporary of a running process, this one's included, is kept: it may still be written.
  @discardableResult
  public static func removeStale(in folder: String) -> Int {
    var removed = 0
    for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
      guard let pid = owner(ofTemporary: name), processIsGone(pid) else { continue }
      if remove(folder + "/" + name) { removed += 1 }
    }
    return removed
  }

  /// The process id in a temporary's name `.<name>.tmp-<pid>-<n>`, or nil for any other name.
  static func owner(ofTemporary name: String) -> pid_t? {
    guard name.hasPrefix("."), let marker = name.range(of: ".tmp-", options: .backwards),
      marker.lowerBound > name.index(after: name.startIndex)
    else { return nil }
    let parts = name[marker.upperBound...].split(separator: "-", omittingEmptySubsequences: false)
    guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }),
      let pid = pid_t(parts[0]), pid > 0
    else { return nil }
    return pid
  }

  /// Whether no process `pid` runs: `kill(pid, 0)` says ESRCH. A process of another user (EPERM)
  /// runs; so does this one.
  static func processIsGone(_ pid: pid_t) -> Bool {
    pid > 0 && pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH
  }

  /// Removes a file, or a folder with everything in it; returns whether something was removed.
  @discardableResult
  private static func remove(_ path: String) -> Bool {
    var info = stat()
    guard lstat(path, &info) == 0 else { return false }
    if info.st_mode & S_IFMT == S_IFDIR {
      return (try? FileManager.default.removeItem(atPath: path)) != nil
    }
    return unlink(path) == 0
  }
}

extension Character {
  fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
