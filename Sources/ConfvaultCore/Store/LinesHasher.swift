import Dispatch
import Foundation
import Synchronization

/// Hashes trees' manifest lines, one tree after another, on threads of its own (workers): the tree
/// digests of `check`, computed while the next trees' lines are made.
///
/// A tree's lines are hashed from where they stop being those of the tree given before, resuming
/// from the state that tree's hashing saved at the last checkpoint (one every 4 KiB of lines) at or
/// before the first byte that changed: a version that changes one file hashes, on average, half its
/// lines. So a tree can start once the tree before it has passed that checkpoint, and both go on at
/// once from there.
///
/// Each worker hashes up to two trees at once, a checkpoint of each at a time, with the processor's
/// SHA extensions working on both messages together (`SHA256Blocks`): each round waits for the one
/// before it, and the other message's rounds fill the wait. In a simulation over the replay
/// fixture's trees (their lengths and first changed bytes), two workers of two trees each hashed
/// them in 33 ms where two workers of one tree each took 52 (three of one tree each, 37).
final class LinesHasher: Sendable {
  /// How many bytes of lines are hashed between two saved states (32 bytes each); a multiple of the
  /// block size, so that a saved state holds no partial block.
  static let checkpointBytes = 4 << 10
  /// The trees given and not yet taken by a worker may hold this many bytes of lines (counted whole,
  /// shared with the kept lines or not, so that what waits stays bounded), or be this many; the
  /// thread that gives them waits beyond.
  static let waitingBytes = 8 << 20
  static let waitingTrees = 256
  /// A worker with nothing to do is woken once the trees waiting have this many bytes to hash: far
  /// more time to hash than a thread takes to wake (woken for each tree of a small history, the
  /// workers cost more than they hashed).
  static let wakeBytes = 256 << 10

  /// How it hashes: the tests run every way.
  struct Configuration: Sendable, CustomStringConvertible {
    var compression = SHA256Blocks.Compression.best
    var workers = 2
    /// How many trees a worker hashes at once: 1 or 2.
    var streams = 2

    var description: String { "\(compression), \(workers) workers of \(streams)" }
  }

  /// What the thread that gives work keeps.
  private struct Giving {
    /// The trees given since digests were last forgotten, by root.
    var trees: [Data: TreeHashing] = [:]
    /// The tree given last, which the next one resumes from.
    var last: TreeHashing?
    var expectations = 0
  }

  private let configuration: Configuration
  private let giving = Mutex(Giving())
  private let waiting = WaitingTrees()
  private let workersStarted = Atomic(false)
  private let workersDone = DispatchGroup()
  private let problems = ProblemList()

  init(_ configuration: Configuration = Configuration()) {
    precondition(configuration.workers >= 1 && (1...2).contains(configuration.streams))
    self.configuration = configuration
  }

  /// Started with the first tree: a check of folders alone gives none.
  private func startWorkers() {
    let configuration = configuration
    for index in 0..<configuration.workers {
      workersDone.enter()
      let thread = Thread { [waiting, workersDone] in
        Worker(waiting: waiting, compression: configuration.compression, streams: configuration.streams).run()
        workersDone.leave()
      }
      thread.name = "confvault.check.lines.\(index)"
      thread.start()
    }
  }

  /// Lets the workers go once they have hashed what they were given: a check that stopped early
  /// (a store it could not read) gives nothing more.
  deinit { waiting.close() }

  /// Hashes the lines of the tree `root`, whose first `sameBytes` bytes are those of the tree
  /// given before.
  func hash(root: Data, lines: TreeLines, sameBytes: Int) {
    if !workersStarted.exchange(true, ordering: .relaxed) { startWorkers() }
    let tree = giving.withLock { giving in
      let tree = TreeHashing(lines: lines, sameBytes: sameBytes, after: giving.last, problems: problems)
      giving.last = tree
      giving.trees[root] = tree
      return tree
    }
    waiting.add(tree)
  }

  /// Notes a problem of `label` if the tree `root`, hashed already or waiting, does not give `digest`.
  func expect(root: Data, digest: TreeDigest, label: String) {
    giving.withLock { giving in
      giving.expectations += 1
      // A tree is given before any version of it is compared, and forgotten only with its summary.
      guard let tree = giving.trees[root] else {
        problems.add(
          order: giving.expectations, "\(label): its tree digest was not computed (an error in check itself)")
        return
      }
      tree.expect(order: giving.expectations, digest: digest, label: label)
    }
  }

  /// Forgets the digests of the trees given so far (those waiting are still compared).
  func forgetDigests() { giving.withLock { $0.trees.removeAll() } }

  /// The digest of the tree `root`, once hashed.
  func digest(root: Data) -> TreeDigest {
    waiting.wakeWorkers()
    return giving.withLock { $0.trees[root]! }.waitForDigest()
  }

  /// The problems noted, in the order the versions were given, once everything given is hashed.
  func finish() -> [String] {
    waiting.close()
    workersDone.wait()
    return problems.inOrder
  }
}

/// The trees given and not yet taken by a worker, in the order given.
private final class WaitingTrees: @unchecked Sendable {
  // Unchecked: every property is touched under `condition` only.
  private let condition = NSCondition()
  private var trees: [TreeHashing?] = []
  private var first = 0
  private var bytes = 0
  /// The bytes to hash of the trees given since the workers were last woken.
  private var unwokenBytes = 0
  private var idleWorkers = 0
  private var giverWaits = false
  private var closed = false

  private var count: Int { trees.count - first }
  private var full: Bool { count >= LinesHasher.waitingTrees || bytes >= LinesHasher.waitingBytes }

  /// Adds `tree`, waking the idle workers once there is enough to hash; waits while too much waits.
  func add(_ tree: TreeHashing) {
    condition.lock()
    trees.append(tree)
    bytes += tree.memory
    unwokenBytes += tree.hashBytes
    let wake = idleWorkers > 0 && (unwokenBytes >= LinesHasher.wakeBytes || full)
    if wake { unwokenBytes = 0 }
    condition.unlock()
    if wake { condition.broadcast() }
    condition.lock()
    while full {
      giverWaits = true
      condition.wait()
    }
    condition.unlock()
  }

  /// Wakes the idle workers, whatever there is to hash (a digest is waited for).
  func wakeWorkers() {
    condition.lock()
    unwokenBytes = 0
    condition.unlock()
    condition.broadcast()
  }

  /// Nothing more will be added: the workers take what is left, then stop.
  func close() {
    condition.lock()
    closed = true
    condition.unlock()
    condition.broadcast()
  }

  /// The next tree; if none waits, nil, or, with `wait`, the next one added (nil once closed).
  func take(wait: Bool) -> TreeHashing? {
    condition.lock()
    while count == 0 {
      guard wait, !closed else {
        condition.unlock()
        return nil
      }
      idleWorkers += 1
      condition.wait()
      idleWorkers -= 1
    }
    let tree = trees[first]!
    trees[first] = nil
    first += 1
    if first >= 1024, first * 2 >= trees.count {
      trees.removeFirst(first)
      first = 0
    }
    bytes -= tree.memory
    if count == 0 { unwokenBytes = 0 }
    // Once half has gone: woken at each tree taken, the giver gave one and waited again.
    let wake = giverWaits && count <= LinesHasher.waitingTrees / 2 && bytes <= LinesHasher.waitingBytes / 2
    if wake { giverWaits = false }
    condition.unlock()
    if wake { condition.broadcast() }
    return tree
  }
}

/// A thread of `LinesHasher`: takes trees in the order given, and hashes up to `streams` of them
/// at once, a checkpoint of each at a time.
///
/// It waits only with no tree started: for one to take, or for the tree before its first tree to
/// save the state that one resumes from. The earliest tree not started, wherever it waits, resumes
/// from a tree that is hashing or hashed, so some worker always goes on.
private struct Worker {
  let waiting: WaitingTrees
  let compression: SHA256Blocks.Compression
  let streams: Int

  func run() {
    let staging = UnsafeMutableRawBufferPointer.allocate(
      byteCount: streams * LinesHasher.checkpointBytes, alignment: SHA256Blocks.blockBytes)
    defer { staging.deallocate() }
    var hashing: [Stream] = []
    var chunks: [(stream: Int, bytes: UnsafeRawBufferPointer)] = []
    hashing.reserveCapacity(streams)
    chunks.reserveCapacity(streams)
    while true {
      while hashing.count < streams, let tree = waiting.take(wait: hashing.isEmpty) {
        hashing.append(Stream(tree: tree, compression: compression))
      }
      guard !hashing.isEmpty else { return }
      for index in hashing.indices where !hashing[index].started { hashing[index].start(wait: false) }
      if let first = hashing.firstIndex(where: { !$0.started }), !hashing.contains(where: \.started) {
        hashing[first].start(wait: true)
      }
      // The next checkpoint's bytes of each started tree (fewer at its end); two whole ones are
      // hashed together.
      chunks.removeAll(keepingCapacity: true)
      for index in hashing.indices where hashing[index].started {
        let buffer = UnsafeMutableRawBufferPointer(
          rebasing: staging[
            chunks.count * LinesHasher.checkpointBytes..<(chunks.count + 1) * LinesHasher.checkpointBytes])
        chunks.append((index, hashing[index].reader.next(LinesHasher.checkpointBytes, else: buffer)))
      }
      // (swift-crypto's hashers are updated where they are: a copy would copy its object.)
      if compression == .hardware, chunks.count == 2, chunks[0].bytes.count == LinesHasher.checkpointBytes,
        chunks[1].bytes.count == LinesHasher.checkpointBytes
      {
        let (x, y) = (chunks[0], chunks[1])
        var (first, second) = (hashing[x.stream].state, hashing[y.stream].state)
        SHA256Blocks.add(x.bytes, to: &first, y.bytes, to: &second)
        (hashing[x.stream].state, hashing[y.stream].state) = (first, second)
      } else {
        for (stream, bytes) in chunks where bytes.count == LinesHasher.checkpointBytes {
          hashing[stream].state.add(bytes)
        }
      }
      for (stream, bytes) in chunks {
        if bytes.count == LinesHasher.checkpointBytes {
          hashing[stream].passCheckpoint()
        } else {
          hashing[stream].finish(tail: bytes)
        }
      }
      if chunks.contains(where: { $0.bytes.count < LinesHasher.checkpointBytes }) { hashing.removeAll { $0.finished } }
    }
  }

  /// One tree's lines being hashed by a worker.
  private struct Stream {
    let tree: TreeHashing
    var reader = LinesReader()
    var started = false
    var state: SHA256Blocks
    /// How many bytes of the lines `state` has hashed: a multiple of `checkpointBytes`.
    var position = 0
    var saving = true
    var finished = false

    init(tree: TreeHashing, compression: SHA256Blocks.Compression) {
      self.tree = tree
      state = SHA256Blocks(compression)
    }

    /// Starts from the state the tree before saved, if it has (or, with `wait`, once it has).
    mutating func start(wait: Bool) {
      guard let (lines, states) = tree.start(wait: wait, from: state) else { return }
      state = states.last!
      position = (states.count - 1) * LinesHasher.checkpointBytes
      reader = LinesReader(lines, from: position)
      started = true
    }

    mutating func passCheckpoint() {
      position += LinesHasher.checkpointBytes
      if saving { saving = tree.save(state) }
    }

    mutating func finish(tail: UnsafeRawBufferPointer) {
      let digest = state.digest(tail: tail, byteCount: position + tail.count)
      tree.finish(TreeDigest(sha256: digest.withUnsafeBytes { SHA256Hex(bytes: $0)! }))
      finished = true
      reader = LinesReader()
    }
  }
}

/// A tree's lines from a byte offset on, as the runs of bytes they are made of (the subtrees'
/// own buffers, a subtree wholly before the offset passed over), read where they lie or into a
/// buffer. It holds the tree, and so every buffer the runs are in.
private struct LinesReader {
  private var tree: TreeLines?
  private var runs: [UnsafeRawBufferPointer] = []
  /// The run being read, and how many of its bytes are read.
  private var run = 0
  private var used = 0

  /// Nothing to read.
  init() {}

  init(_ tree: TreeLines, from offset: Int) {
    self.tree = tree
    var skip = offset
    LinesReader.collect(tree, skipping: &skip, into: &runs)
  }

  private static func collect(_ lines: TreeLines, skipping skip: inout Int, into runs: inout [UnsafeRawBufferPointer]) {
    for part in lines.parts {
      switch part {
      case .bytes(let bytes):
        if skip >= bytes.count {
          skip -= bytes.count
        } else {
          runs.append(UnsafeRawBufferPointer(rebasing: lines.own[bytes.lowerBound + skip..<bytes.upperBound]))
          skip = 0
        }
      case .folder(let folder):
        if skip >= folder.byteCount {
          skip -= folder.byteCount
        } else {
          collect(folder, skipping: &skip, into: &runs)
        }
      }
    }
  }

  /// The next `count` bytes (fewer at the end): where they lie if one run holds them all, else
  /// copied into `buffer`, which holds `count`.
  mutating func next(_ count: Int, else buffer: UnsafeMutableRawBufferPointer) -> UnsafeRawBufferPointer {
    if run < runs.count, runs[run].count - used >= count {
      defer { advance(count) }
      return UnsafeRawBufferPointer(rebasing: runs[run][used..<used + count])
    }
    var filled = 0
    while filled < count, run < runs.count {
      let piece = min(count - filled, runs[run].count - used)
      (buffer.baseAddress! + filled).copyMemory(from: runs[run].baseAddress! + used, byteCount: piece)
      filled += piece
      advance(piece)
    }
    return UnsafeRawBufferPointer(rebasing: buffer[..<filled])
  }

  private mutating func advance(_ count: Int) {
    used += count
    if used == runs[run].count {
      run += 1
      used = 0
    }
  }
}

/// The problems of versions whose tree digest does not match, as the workers find them, put back
/// in the order the versions were given.
private final class ProblemList: Sendable {
  private let list = Mutex<[(order: Int, problem: String)]>([])

  func add(order: Int, _ problem: String) { list.withLock { $0.append((order, problem)) } }

  var inOrder: [String] { list.withLock { $0.sorted { $0.order < $1.order }.map(\.problem) } }
}

/// One tree given to `LinesHasher`: its lines until a worker starts on them, the states its hashing
/// saves for the tree after it, its digest once hashed, and the versions' digests to compare with it.
///
/// Unchecked: what `condition` guards is touched under it only; `lines` and `previous` only by the
/// worker that starts it, after the thread that made it handed it over.
private final class TreeHashing: @unchecked Sendable {
  private var lines: TreeLines?
  private let sameBytes: Int
  private var previous: TreeHashing?
  private let problems: ProblemList
  /// What its lines hold, counted whole, and how many bytes of them are to hash.
  let memory: Int
  let hashBytes: Int
  private let condition = NSCondition()
  /// The states after each multiple of `checkpointBytes` bytes of the lines, from the first (none
  /// hashed); dropped once the next tree has taken those it resumes from.
  private var states: [SHA256Blocks] = []
  private var statesTaken = false
  /// How many states the next tree waits for, if it waits.
  private var statesWanted: Int?
  private var digest: TreeDigest?
  /// The versions' digests to compare with this tree's once it is hashed.
  private var expectations: [(order: Int, digest: TreeDigest, label: String)] = []

  init(lines: TreeLines, sameBytes: Int, after previous: TreeHashing?, problems: ProblemList) {
    self.lines = lines
    self.sameBytes = sameBytes
    self.previous = previous
    self.problems = problems
    memory = lines.memory
    hashBytes = lines.byteCount - sameBytes
  }

  /// The lines and the states to resume from, once the tree before has saved them (`initial`, the
  /// state before any byte, for the first tree); nil if it has not yet and `wait` is false.
  func start(wait: Bool, from initial: SHA256Blocks) -> (TreeLines, [SHA256Blocks])? {
    var resumed = [initial]
    if let previous {
      guard let taken = previous.takeStates(through: sameBytes / LinesHasher.checkpointBytes, wait: wait) else {
        return nil
      }
      // Never empty (a tree's states begin with those it resumed from, and only the tree after it
      // takes them); if it were, hashing from the first byte still gives the digest.
      resumed = taken.isEmpty ? [initial] : taken
      self.previous = nil
    }
    condition.lock()
    states = resumed
    condition.unlock()
    condition.broadcast()
    defer { lines = nil }
    return (lines!, resumed)
  }

  /// The states after the first `index` + 1 multiples of `checkpointBytes` bytes, once saved (nil
  /// before that without `wait`); the states are not kept from then on.
  private func takeStates(through index: Int, wait: Bool) -> [SHA256Blocks]? {
    condition.lock()
    defer { condition.unlock() }
    while states.count <= index, digest == nil {
      guard wait else { return nil }
      statesWanted = index + 1
      condition.wait()
    }
    let taken = states.prefix(index + 1)
    states = []
    statesTaken = true
    return Array(taken)
  }

  /// Saves the state after the next checkpoint; false once the next tree has taken what it needs.
  func save(_ state: SHA256Blocks) -> Bool {
    condition.lock()
    guard !statesTaken else {
      condition.unlock()
      return false
    }
    states.append(state)
    let wake = statesWanted.map { states.count >= $0 } ?? false
    if wake { statesWanted = nil }
    condition.unlock()
    // Only once the state waited for is saved (woken at each, the next tree's worker slept and woke
    // again for every one), and the lock let go first, so that it wakes to a lock it can take.
    if wake { condition.broadcast() }
    return true
  }

  /// Keeps the digest, wakes whoever waits for it, and compares it with the versions'.
  func finish(_ computed: TreeDigest) {
    condition.lock()
    digest = computed
    let waiting = expectations
    expectations = []
    condition.unlock()
    condition.broadcast()
    for expectation in waiting { compare(expectation, computed) }
  }

  /// Notes a problem of `label` if this tree's digest, once hashed, is not `expected`.
  func expect(order: Int, digest expected: TreeDigest, label: String) {
    condition.lock()
    let computed = digest
    if computed == nil { expectations.append((order, expected, label)) }
    condition.unlock()
    if let computed { compare((order, expected, label), computed) }
  }

  func waitForDigest() -> TreeDigest {
    condition.lock()
    defer { condition.unlock() }
    while digest == nil { condition.wait() }
    return digest!
  }

  private func compare(_ expectation: (order: Int, digest: TreeDigest, label: String), _ computed: TreeDigest) {
    if computed != expectation.digest {
      problems.add(
        order: expectation.order,
        "\(expectation.label): tree digest \(expectation.digest) does not match its files (\(computed))")
    }
  }
}
