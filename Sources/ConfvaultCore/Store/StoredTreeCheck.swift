import Crypto
import Dispatch
import Foundation
import Synchronization

/// The part of `check` every store shares: each stored folder record read once, its digest
/// recomputed and what it names found; each version's tree digest, file count and size recomputed
/// from its folders.
///
/// Not copyable: a copy would share the hasher, whose next tree resumes from the last tree either
/// copy gave it, but keep its own last tree's lines to compare with; each would then resume hashing
/// from the other's states, and report right digests as wrong.
public struct StoredTreeCheck: ~Copyable {
  private let reader: FolderReader
  private var lines: [LinesKey: (lines: TreeLines, keptIn: Int)] = [:]
  private var linesBytes = 0
  /// How many times the kept lines were let go, all at once, as the budget ran out.
  private var linesGeneration = 0
  /// Each checked tree's file count and size, by root folder (its digest is the hasher's), for
  /// versions that have a tree met before; at most `summariesKept`, then forgotten all at once, so a
  /// long history is not held.
  private var summaries: [Data: (files: Int, size: Int64)] = [:]
  private let summariesKept: Int
  /// Hashes each version's lines on threads of its own while the next version's are made.
  private let hasher: LinesHasher
  /// What the subtrees' lines kept between versions may hold: each subtree's own lines and list of
  /// parts (`TreeLines.ownMemory`; its folders' lines are those folders' own).
  private let linesBudget: Int
  /// How many subtrees' lines were made, not found kept.
  private(set) var subtreesMade = 0
  /// The lines of the tree summed up last.
  private var lastTree: TreeLines?

  public init(reader: FolderReader) { self.init(reader: reader, linesBudget: 16 << 20, summariesKept: 16_384) }

  init(
    reader: FolderReader, linesBudget: Int, summariesKept: Int = 16_384,
    hasher: LinesHasher = LinesHasher()
  ) {
    self.reader = reader
    self.linesBudget = linesBudget
    self.summariesKept = summariesKept
    self.hasher = hasher
  }

  /// The folders whose chain of deltas does not lead to a whole record: a base that is not stored,
  /// or a cycle of bases, or a chain that hangs from one.
  public static func brokenChains(_ index: [(digest: Data, base: Data?)]) -> [Data] {
    var deltas: [Data: [Data]] = [:]
    var wholes: [Data] = []
    let known = Set(index.map(\.digest))
    var broken: [Data] = []
    for (digest, base) in index {
      if let base {
        if known.contains(base) { deltas[base, default: []].append(digest) } else { broken.append(digest) }
      } else {
        wholes.append(digest)
      }
    }
    // Every chain that leads to a whole record is taken away from its whole record up.
    var stack = wholes
    while let digest = stack.popLast() { stack += deltas.removeValue(forKey: digest) ?? [] }
    // What is left is on a cycle of bases, or hangs from one.
    return broken + deltas.values.joined()
  }

  /// Checks every stored folder, as `next` reads their records, through this check's reader; folders
  /// whose chain is broken are named as such, not decoded.
  ///
  /// Records may come in any order; in the order they were stored, a delta's base was read a little
  /// before it and is still in the reader's cache.
  ///
  /// - Parameters:
  ///   - index: each stored folder's digest and base.
  ///   - blobs: the stored blobs; `used`, those noted as used by some folder (what `gc` spares).
  ///   - next: the next stored record, nil after the last.
  /// - Returns: the problems found (at most about a hundred).
  public func checkFolders(
    _ index: [(digest: Data, base: Data?)], blobs: Set<SHA256Hex>, used: Set<SHA256Hex>,
    records next: () throws -> StoredFolder?
  ) throws -> [String] {
    let broken = StoredTreeCheck.brokenChains(index)
    var found = broken.prefix(20).map {
      "folder \(hexString($0)): its chain of deltas does not lead to a whole record"
    }
    let passedOver = Set(broken)
    let folders = Set(index.map(\.digest))
    while found.count <= 100, let record = try next() {
      guard !passedOver.contains(record.digest) else { continue }
      try checkFolder(
        record,
        blobProblem: { blob in
          !blobs.contains(blob)
            ? "is missing" : !used.contains(blob) ? "is not noted as used (`gc` would remove it)" : nil
        },
        folderExists: { folders.contains($0) }, problems: &found)
    }
    return found
  }

  /// Checks the folder `record`: it decodes, its entries have its digest, and each blob and folder
  /// the record names itself exists (what its base names was checked with the base).
  ///
  /// - Parameters:
  ///   - blobProblem: what is wrong with a blob a file refers to ("is missing"), or nil.
  ///   - folderExists: whether a folder is stored.
  func checkFolder(
    _ record: StoredFolder, blobProblem: (SHA256Hex) throws -> String?, folderExists: (Data) throws -> Bool,
    problems: inout [String]
  ) throws {
    let digest = record.digest
    // Written out only for a problem: most folders have none.
    var name: String { hexString(digest) }
    let entries: [TreeNode.Entry]
    let named: [TreeNode.Entry]
    do {
      (entries, named) = try reader.decoded(record)
    } catch let error as OperationError {
      problems.append("folder \(name): \(error.message)")
      return
    }
    // A record decodes to entries in name byte order.
    if TreeNode.digest(ordered: entries) != digest {
      problems.append("folder \(name): its entries do not match its digest")
    }
    for entry in named {
      switch entry {
      case .file(let file, _, _, let blob):
        if let problem = try blobProblem(blob) {
          problems.append("file `\(file)` (folder \(name)) refers to the blob \(blob), which \(problem)")
        }
      case .folder(let folder, let node):
        if try !folderExists(node) {
          problems.append("folder `\(folder)` (in folder \(name)) refers to a missing folder \(hexString(node))")
        }
      }
    }
  }

  /// Checks one version of `app`, versions being given in number order: it decodes, its number
  /// follows `previous` and its parent is older, its tree is stored and gives its tree digest, file
  /// count and size. Trees shared by several versions are summed up once.
  ///
  /// Its tree digest is computed by the hasher's workers: whether it matches is among what
  /// `finishVersions()` returns.
  ///
  /// - Parameters:
  ///   - decode: the version as its row reads; a row that does not read is a problem.
  ///   - previous: the number of the app's version checked before; set to this one's.
  /// - Returns: the problems found so far, each naming the version.
  public mutating func checkVersion(
    app: String, number: Int, root: Data, previous: inout Int, decode: () throws -> Version
  ) throws -> [String] {
    let label = "app '\(app)' version \(number)"
    let version: Version
    do {
      version = try decode()
    } catch {
      return ["\(label): \(error)"]
    }
    var problems: [String] = []
    if version.number <= previous { problems.append("\(label): numbering is not increasing") }
    previous = version.number
    if let parent = version.parent, parent >= version.number {
      problems.append("\(label): parent \(parent) is not older")
    }
    if summaries[root] == nil {
      if summaries.count >= summariesKept {
        summaries.removeAll()
        hasher.forgetDigests()
      }
      do {
        summaries[root] = try hashLines(root: root)
      } catch let error as OperationError {
        // Whether the root itself is there is asked only of a tree that does not read.
        guard try reader.record(root) != nil else { return problems + ["\(label): its tree is missing"] }
        return problems + ["\(label): its tree cannot be read: \(error.message)"]
      }
    }
    hasher.expect(root: root, digest: version.treeDigest, label: label)
    let (files, size) = summaries[root]!
    if files != version.fileCount || size != version.totalSize {
      problems.append("\(label): file count or size does not match its files")
    }
    return problems
  }

  /// The problems of versions whose tree digest does not match their files, once every version's
  /// lines given to `checkVersion` are hashed; the check of versions is not complete without them.
  public consuming func finishVersions() -> [String] { hasher.finish() }

  /// The problem of an app whose next version number is taken already by its newest version, if any.
  public static func checkNextNumber(app: String, newest: Int, next: Int) -> String? {
    newest >= next ? "app '\(app)': the next version number \(next) is already used" : nil
  }

  /// The tree digest, file count and total size of the tree `root`, as its manifest would give them,
  /// waiting for its lines to be hashed.
  mutating func summary(root: Data) throws -> (digest: TreeDigest, files: Int, size: Int64) {
    let (files, size) = try hashLines(root: root)
    return (hasher.digest(root: root), files, size)
  }

  /// Makes the manifest lines of the tree `root` and has them hashed (the hasher keeps the digest
  /// by root); returns its file count and total size.
  ///
  /// The manifest lines of each subtree are kept (within a budget) and reused for the next version,
  /// so a history of one-file changes costs little more than hashing each version's lines; these
  /// are hashed from where they stop being those of the tree summed up before.
  private mutating func hashLines(root: Data) throws -> (files: Int, size: Int64) {
    let whole = try subtree(root, prefix: "", depth: 0).lines
    let sameBytes = lastTree.map { StoredTreeCheck.commonPrefix($0, whole).bytes } ?? 0
    lastTree = whole
    hasher.hash(root: root, lines: whole, sameBytes: sameBytes)
    return (whole.files, whole.size)
  }

  /// How many bytes the lines `a` and `b` begin with in common, as far as their parts tell at
  /// little cost, and whether that is all of both. A subtree kept and met again is the same object,
  /// passed over whole; parts that differ in kind stop the count where they start, which may be
  /// short of the bytes in common but never past them (the hasher then hashes a little more).
  static func commonPrefix(_ a: TreeLines, _ b: TreeLines) -> (bytes: Int, whole: Bool) {
    if a === b { return (a.byteCount, true) }
    var bytes = 0
    for (x, y) in zip(a.parts, b.parts) {
      switch (x, y) {
      case (.folder(let p), .folder(let q)):
        let (common, whole) = commonPrefix(p, q)
        bytes += common
        if !whole { return (bytes, false) }
      case (.bytes(let p), .bytes(let q)):
        let common = StoredTreeCheck.commonPrefix(.init(rebasing: a.own[p]), .init(rebasing: b.own[q]))
        guard common == p.count, common == q.count else { return (bytes + common, false) }
        bytes += common
      default:
        return (bytes, false)
      }
    }
    return (bytes, a.parts.count == b.parts.count)
  }

  /// The lines of `own` and `parts` as one piece, in the byte order of their paths (what follows
  /// a line's second space: a mode and a digest hold none, and a path no line break).
  private static func sortedByPath(own: [UInt8], parts: [TreeLines.Part]) -> [UInt8] {
    var bytes: [UInt8] = []
    TreeLines(own: own, parts: parts, files: 0, size: 0).append(to: &bytes)
    var lines: [Range<Int>] = []
    var start = 0
    for index in bytes.indices where bytes[index] == 0x0A {
      lines.append(start..<index + 1)
      start = index + 1
    }
    func path(_ line: Range<Int>) -> ArraySlice<UInt8> {
      var spaces = 0
      for index in line where bytes[index] == 0x20 {
        spaces += 1
        if spaces == 2 { return bytes[index + 1..<line.upperBound] }
      }
      return bytes[line]
    }
    lines.sort { path($0).lexicographicallyPrecedes(path($1)) }
    var sorted: [UInt8] = []
    sorted.reserveCapacity(bytes.count)
    for line in lines { sorted.append(contentsOf: bytes[line]) }
    return sorted
  }

  /// How many bytes `x` and `y` begin with in common.
  static func commonPrefix(_ x: UnsafeRawBufferPointer, _ y: UnsafeRawBufferPointer) -> Int {
    let count = min(x.count, y.count)
    var index = 0
    // Eight bytes at a time while they are equal, then byte by byte.
    while index + 8 <= count,
      x.loadUnaligned(fromByteOffset: index, as: UInt64.self) == y.loadUnaligned(fromByteOffset: index, as: UInt64.self)
    {
      index += 8
    }
    while index < count, x[index] == y[index] { index += 1 }
    return index
  }

  /// Whether `a` comes before `b` in path byte order, a folder's name followed by "/", with no
  /// string made for the comparison.
  static func pathOrder(_ a: TreeNode.Entry, _ b: TreeNode.Entry) -> Bool {
    func isFolder(_ entry: TreeNode.Entry) -> Bool {
      if case .folder = entry { return true }
      return false
    }
    /// The bytes of an entry's name, then "/" for a folder.
    struct Key: IteratorProtocol {
      var name: String.UTF8View.Iterator
      var slash: Bool
      mutating func next() -> UInt8? {
        if let byte = name.next() { return byte }
        defer { slash = false }
        return slash ? 0x2F : nil
      }
    }
    var (x, y) = (
      Key(name: a.name.utf8.makeIterator(), slash: isFolder(a)),
      Key(name: b.name.utf8.makeIterator(), slash: isFolder(b))
    )
    while true {
      switch (x.next(), y.next()) {
      case (let p?, let q?): if p != q { return p < q }
      case (nil, .some): return true
      case (_, nil): return false
      }
    }
  }

  /// What the kept lines hold, each subtree's own once: what `linesBudget` bounds.
  var keptBytes: Int {
    var seen = Set<ObjectIdentifier>()
    var total = 0
    func visit(_ node: TreeLines) {
      guard seen.insert(ObjectIdentifier(node)).inserted else { return }
      total += node.ownMemory
      for case .folder(let folder) in node.parts { visit(folder) }
    }
    for kept in lines.values { visit(kept.lines) }
    return total
  }

  /// `a + b`, or the error of a folder whose sizes add up past what a size can be.
  private func sum(_ a: Int64, _ b: Int64, _ digest: Data) throws -> Int64 {
    let (total, overflow) = a.addingReportingOverflow(b)
    guard !overflow else {
      throw OperationError(
        .internal, "folder \(hexString(digest)) is damaged in the store: its sizes add up past 2^63", hint: .runCheck)
    }
    return total
  }

  private struct LinesKey: Hashable {
    var digest: Data
    var prefix: String
  }

  /// The lines of the subtree `digest` whose paths start with `prefix`, and the generation of
  /// kept lines they are kept in, if kept (counted in the budget then).
  private mutating func subtree(_ digest: Data, prefix: String, depth: Int) throws -> (lines: TreeLines, keptIn: Int?) {
    guard depth <= TreeNode.deepestFolder else { throw TreeNode.tooDeep(digest) }
    let key = LinesKey(digest: digest, prefix: prefix)
    if let known = lines[key] { return (known.lines, known.keptIn) }
    subtreesMade += 1
    // Path byte order: a folder sorts as its name followed by "/". Records list their entries by
    // name, which is that order but where a folder's name is followed by a sibling's longer one.
    // Only a folder can be out of that order (a file before a sibling in name order is before it in
    // path order too), and then with the entry after it: an entry that sorts before "name/" begins
    // with the folder's name and a byte below "/", and so does every entry between the two.
    var entries = try reader.entries(digest)
    if entries.indices.dropLast().contains(where: { index in
      if case .folder = entries[index] { return StoredTreeCheck.pathOrder(entries[index + 1], entries[index]) }
      return false
    }) {
      entries.sort(by: StoredTreeCheck.pathOrder)
    }
    var parts: [TreeLines.Part] = []
    var (files, size) = (0, Int64(0))
    // The files' lines, all in one buffer.
    var own: [UInt8] = []
    var pieceStart = 0
    // The folders' lines, and the generation each is kept in.
    var folders: [(lines: TreeLines, keptIn: Int?)] = []
    // Whether a name holds a "/" byte, which a combining mark joins (see below).
    var joinedSlash = false
    func endPiece() {
      guard own.count > pieceStart else { return }
      parts.append(.bytes(pieceStart..<own.count))
      pieceStart = own.count
    }
    for entry in entries {
      switch entry {
      case .file(let name, let mode, let entrySize, let blob):
        own.append(contentsOf: mode.rawValue.utf8)
        own.append(0x20)
        blob.appendHex(to: &own)
        own.append(0x20)
        own.append(contentsOf: prefix.utf8)
        let nameStart = own.count
        own.append(contentsOf: name.utf8)
        joinedSlash = joinedSlash || own[nameStart...].contains(0x2F)
        own.append(0x0A)
        files += 1
        size = try sum(size, entrySize, digest)
      case .folder(let name, let node):
        joinedSlash = joinedSlash || name.utf8.contains(0x2F)
        let child = try subtree(node, prefix: prefix + name + "/", depth: depth + 1)
        endPiece()
        folders.append(child)
        parts.append(.folder(child.lines))
        files += child.lines.files
        size = try sum(size, child.lines.size, digest)
      }
    }
    endPiece()
    // A name may hold a "/" byte that a combining mark joins (see `EntryPath.folder(of:)`): then the
    // files below two entries can mix as paths sort, and this folder's lines are sorted as a whole.
    if joinedSlash {
      own = StoredTreeCheck.sortedByPath(own: own, parts: parts)
      parts = [.bytes(own.indices)]
      folders = []
    }
    // Kept, it holds no more than its bytes: `TreeLines` copies them into a buffer of their size.
    let result = TreeLines(own: own, parts: parts, files: files, size: size)
    // A subtree holds its own lines and shares its folders' kept now, which are counted there:
    // counting them again at every level above filled the budget with a few versions' roots.
    func cost() -> Int {
      folders.reduce(result.ownMemory) { $0 + ($1.keptIn == linesGeneration ? 0 : $1.lines.memory) }
    }
    if linesBytes + cost() > linesBudget {
      // Cleared, nothing would count its folders' lines: if it would not be kept even then, what
      // is kept stays.
      guard result.memory <= linesBudget / 4 else { return (result, nil) }
      lines.removeAll(keepingCapacity: true)
      linesBytes = 0
      linesGeneration += 1
    }
    let cost = cost()
    guard cost <= linesBudget / 4 else { return (result, nil) }
    lines[key] = (result, linesGeneration)
    linesBytes += cost
    return (result, linesGeneration)
  }
}

/// The manifest lines of a subtree, as `check` makes them: its own files' lines between its
/// folders' lines, which are those folders' own `TreeLines`, shared by every tree that holds them
/// unchanged. Hashed and compared part by part: no version's lines are copied into one buffer, and
/// a folder met again is passed over whole.
///
/// Unchecked: nothing in it changes after `init`, and `own` is its own to free.
final class TreeLines: @unchecked Sendable {
  enum Part: Sendable {
    /// Lines of the subtree's own files, in path order: these bytes of `own`.
    case bytes(Range<Int>)
    case folder(TreeLines)
  }

  /// The lines of the subtree's own files, the parts' one after another: held in one buffer of
  /// its own, so that the hasher can read a tree's parts while it holds the tree (`LinesReader`),
  /// taking no reference to each.
  let own: UnsafeRawBufferPointer
  let parts: [Part]
  /// The bytes of every line below.
  let byteCount: Int
  let files: Int
  let size: Int64
  /// What this subtree holds itself (its own lines and its list of parts), not its folders.
  let ownMemory: Int
  /// What this subtree holds with its folders, each counted wherever it is met: no less than what
  /// keeping it keeps.
  let memory: Int

  init(own: [UInt8], parts: [Part], files: Int, size: Int64) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: own.count, alignment: 1)
    own.withUnsafeBytes { buffer.copyMemory(from: $0) }
    self.own = UnsafeRawBufferPointer(buffer)
    self.parts = parts
    self.files = files
    self.size = size
    var (byteCount, folders) = (0, 0)
    for part in parts {
      switch part {
      case .bytes(let piece): byteCount += piece.count
      case .folder(let folder):
        byteCount += folder.byteCount
        folders += folder.memory
      }
    }
    self.byteCount = byteCount
    // The object and its array's header, about 32 bytes each, and what malloc adds to a buffer.
    ownMemory = own.count + parts.count * MemoryLayout<Part>.stride + 96
    memory = ownMemory + folders
  }

  /// Appends every line below to `bytes`.
  func append(to bytes: inout [UInt8]) {
    for part in parts {
      switch part {
      case .bytes(let piece): bytes += own[piece]
      case .folder(let folder): folder.append(to: &bytes)
      }
    }
  }

  deinit { own.deallocate() }
}

/// The part of `check` that proves stored content: each blob's chunks decoded and hashed, on every
/// core, a batch of at most `batchBytes` stored bytes at a time.
public final class StoredBlobCheck {
  /// A blob as stored: its row and its chunks in order.
  public struct Blob: Sendable {
    public var key: Data
    public var size: Int64
    public var chunkCount: Int
    public var chunks: [(seq: Int, compressed: Bool, data: Data)] = []
    /// For a delta, its base's one stored chunk, or the problem that makes it unusable.
    public var base: Result<BlobCodec.Chunk, DeltaBaseProblem>?

    public init(key: Data, size: Int64, chunkCount: Int, base: Result<BlobCodec.Chunk, DeltaBaseProblem>? = nil) {
      self.key = key
      self.size = size
      self.chunkCount = chunkCount
      self.base = base
    }
  }

  /// Why a delta's base cannot be read.
  public struct DeltaBaseProblem: Error, Sendable {
    public var description: String

    public init(_ description: String) { self.description = description }
  }

  static let batchBytes = 16 << 20
  public private(set) var problems: [String] = []
  public private(set) var count = 0
  private var batch: [Blob] = []
  private var batchBytes = 0

  public init() {}

  /// Adds a blob with all its chunks; a full batch is checked at once.
  public func add(_ blob: Blob) {
    count += 1
    ProgressMeter.current?.add(files: 1, bytes: blob.size)
    batchBytes += blob.chunks.reduce(0) { $0 + $1.data.count } + ((try? blob.base?.get())?.data.count ?? 0)
    batch.append(blob)
    if batchBytes >= StoredBlobCheck.batchBytes { flush() }
  }

  /// Checks what is left; `problems` is then complete.
  public func finish() { flush() }

  private func flush() {
    let blobs = batch
    batch = []
    batchBytes = 0
    guard !blobs.isEmpty else { return }
    let found = Mutex([[String]](repeating: [], count: blobs.count))
    let workers = min(max(ProcessInfo.processInfo.activeProcessorCount, 1), 4)
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      var buffer = Data()
      for index in stride(from: worker, to: blobs.count, by: workers) {
        let problems = StoredBlobCheck.check(blobs[index], buffer: &buffer)
        if !problems.isEmpty { found.withLock { $0[index] = problems } }
      }
    }
    problems += found.withLock { $0.joined() }
  }

  /// Checks a blob whose chunks `next` hands over one at a time (nil after the last), here and now:
  /// for a blob too large to hold whole in a batch.
  public func checkStreaming(_ blob: Blob, next: () throws -> (seq: Int, compressed: Bool, data: Data)?) throws {
    flush()
    count += 1
    ProgressMeter.current?.add(files: 1, bytes: blob.size)
    var buffer = Data()
    problems += try StoredBlobCheck.check(blob, buffer: &buffer, next: next)
  }

  private static func check(_ blob: Blob, buffer: inout Data) -> [String] {
    var chunks = blob.chunks.makeIterator()
    return (try? check(blob, buffer: &buffer) { chunks.next() }) ?? []
  }

  private static func check(
    _ blob: Blob, buffer: inout Data, next: () throws -> (seq: Int, compressed: Bool, data: Data)?
  ) throws -> [String] {
    // Written out only for a problem: most blobs have none.
    var name: String { hexString(blob.key) }
    var hasher = SHA256()
    var size: Int64 = 0
    var chunks = 0
    var base: Data?
    switch blob.base {
    case nil: break
    case .failure(let problem): return ["blob \(name): \(problem.description)"]
    case .success(let stored):
      guard blob.chunkCount == 1 else { return ["blob \(name): a delta of \(blob.chunkCount) chunks, not one"] }
      do {
        base = try stored.decoded()
      } catch {
        return ["blob \(name): its delta base: \(error)"]
      }
    }
    while let chunk = try next() {
      guard chunk.seq == chunks else { return ["blob \(name): chunk \(chunks) is missing"] }
      do {
        try BlobCodec.decode(chunk.data, compressed: chunk.compressed, base: base, into: &buffer)
      } catch {
        return ["blob \(name): \(error)"]
      }
      hasher.update(data: buffer)
      size += Int64(buffer.count)
      chunks += 1
    }
    var problems: [String] = []
    if chunks != blob.chunkCount { problems.append("blob \(name): \(chunks) chunks, expected \(blob.chunkCount)") }
    if size != blob.size { problems.append("blob \(name): \(size) bytes, expected \(blob.size)") }
    if Data(hasher.finalize()) != blob.key { problems.append("blob \(name): content does not match its SHA-256") }
    return problems
  }
}
