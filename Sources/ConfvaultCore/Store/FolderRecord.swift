import CZstd
import Foundation
import Synchronization

/// A stored folder node as one compact record, the way every store keeps folders.
///
/// A record is either whole (every entry) or a delta against a base folder: the entries it removes
/// and the ones it adds or changes. A change to one file of a folder of 700 files then stores a
/// record of one entry, not 700. The base is the folder at the same path in the version the change
/// replaced, so a delta is small; chains are at most `maxDepth` deltas long, after which a whole
/// record is written again, so reading a folder never decodes more than `maxDepth` + 1 records.
///
/// Record format 1 (frozen: readers decode it forever), zstd-compressed when that saves space:
///
///     whole: 0x01, varint count, entries
///     delta: 0x01, varint removed count, removed names, varint count, entries
///     entry: kind (0 file, 1 executable file, 2 folder), varint name length, name,
///            varint size (files only), 32-byte target (the blob or the folder's digest)
///     name:  varint length, UTF-8 bytes
///
/// Whether a record is a delta is stored beside it, with its base's digest.
public struct StoredFolder: Sendable {
  /// The folder's digest (`TreeNode.digest`).
  public var digest: Data
  /// The folder this record is a delta against, or nil for a whole record.
  public var base: Data?
  /// How many deltas are read to reach a whole record: 0 for a whole one.
  public var depth: Int
  public var compressed: Bool
  public var data: Data

  public init(digest: Data, base: Data?, depth: Int, compressed: Bool, data: Data) {
    self.digest = digest
    self.base = base
    self.depth = depth
    self.compressed = compressed
    self.data = data
  }
}

public enum FolderRecord {
  /// The longest delta chain written (git's default depth): a read applies at most this many small
  /// deltas, each cached, and a folder changed once per version is written whole once in 51 versions.
  public static let maxDepth = 50
  static let format: UInt8 = 1
  /// A record larger than this once decompressed is damaged (a folder of a million entries is about 70 MB).
  static let maxDecodedSize: UInt64 = 256 << 20

  /// The record of `node`, as a delta against `base` when one is given, short enough and pays.
  ///
  /// - Parameter base: the folder at the same path in the version the change replaces, decoded.
  public static func encode(
    _ node: TreeNode, digest: Data, base: (digest: Data, depth: Int, entries: [TreeNode.Entry])?
  ) -> StoredFolder {
    let entries = sorted(node.entries)
    var whole = Data([format])
    whole.appendVarint(entries.count)
    for entry in entries { whole.append(entry) }
    var chosen = (base: Data?.none, depth: 0, bytes: whole)
    if let base, base.depth < maxDepth, base.digest != digest {
      let before = Dictionary(base.entries.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
      let names = Set(entries.map(\.name))
      let removed = base.entries.map(\.name).filter { !names.contains($0) }.sorted { EntryPath.byteOrder($0, $1) }
      let changed = entries.filter { before[$0.name] != $0 }
      var delta = Data([format])
      delta.appendVarint(removed.count)
      for name in removed { delta.appendName(name) }
      delta.appendVarint(changed.count)
      for entry in changed { delta.append(entry) }
      if delta.count < whole.count / 2 { chosen = (base.digest, base.depth + 1, delta) }
    }
    let (data, compressed) = compress(chosen.bytes)
    return StoredFolder(digest: digest, base: chosen.base, depth: chosen.depth, compressed: compressed, data: data)
  }

  /// The entries of `record`, in name byte order.
  ///
  /// - Parameter base: the entries of the record's base; required for a delta.
  /// - Throws: `.internal` when the record is damaged.
  public static func decode(_ record: StoredFolder, base: [TreeNode.Entry]?) throws -> [TreeNode.Entry] {
    try decodeWithNamed(record, base: base).entries
  }

  /// The entries of `record`, in name byte order, and those it names itself, as `namedEntries`
  /// gives them: the record read once for both.
  static func decodeWithNamed(
    _ record: StoredFolder, base: [TreeNode.Entry]?
  ) throws -> (entries: [TreeNode.Entry], named: [TreeNode.Entry]) {
    let (removed, named, inOrder) = try readOwn(record)
    guard let base = record.base.map({ _ in base }) ?? [] else {
      throw damaged(record.digest, "its base folder was not read")
    }
    var changed = named
    // Written in name order without repeats; otherwise (a record no confvault writes) the last of a
    // name counts, as it always has.
    if !inOrder {
      changed = sorted(Array(Dictionary(changed.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last }).values))
    }
    guard record.base != nil else { return (changed, named) }
    let entries = try merged(base, removing: removed, changed: changed) { name in
      damaged(record.digest, "it removes `\(name)`, not in its base")
    }
    return (entries, named)
  }

  /// `base` (in name byte order) without the names `removed`, with `changed` (in that order too)
  /// added or in place of the entries of their names: one pass, not a sort of the whole folder.
  private static func merged(
    _ base: [TreeNode.Entry], removing removed: Set<String>, changed: [TreeNode.Entry],
    notInBase: (String) -> OperationError
  ) throws -> [TreeNode.Entry] {
    var entries: [TreeNode.Entry] = []
    entries.reserveCapacity(base.count + changed.count)
    var removedFound = 0
    var next = 0
    for entry in base {
      let name = entry.name
      while next < changed.count && EntryPath.byteOrder(changed[next].name, name) {
        entries.append(changed[next])
        next += 1
      }
      if !removed.isEmpty && removed.contains(name) {
        removedFound += 1
      } else if next < changed.count && changed[next].name == name {
        // Replaced: the changed entry goes in its place.
        entries.append(changed[next])
        next += 1
      } else {
        entries.append(entry)
      }
    }
    entries += changed[next...]
    if removedFound != removed.count {
      let names = Set(base.map(\.name))
      throw notInBase(removed.first { !names.contains($0) } ?? "?")
    }
    return entries
  }

  /// The entries a record names itself (for a delta, the ones it adds or changes), without its
  /// base's: every blob and folder some folder refers to is named by the record that first refers to it.
  public static func namedEntries(_ record: StoredFolder) throws -> [TreeNode.Entry] { try readOwn(record).named }

  /// What a record holds itself: the names it removes from its base (for a delta), and the entries
  /// it names, as written, with whether those are in name byte order without repeats.
  private static func readOwn(_ record: StoredFolder) throws -> (
    removed: Set<String>, named: [TreeNode.Entry], inOrder: Bool
  ) {
    var reader = RecordReader(bytes: try decompressed(record), folder: record.digest)
    guard try reader.byte() == format else { throw reader.damaged("unknown record format") }
    var removed = Set<String>()
    if record.base != nil {
      for _ in 0..<(try reader.count()) {
        let name = try reader.name()
        guard removed.insert(name).inserted else { throw reader.damaged("it removes `\(name)` twice") }
      }
    }
    var named: [TreeNode.Entry] = []
    var inOrder = true
    for _ in 0..<(try reader.count()) {
      let entry = try reader.entry()
      if inOrder, let last = named.last, !EntryPath.byteOrder(last.name, entry.name) { inOrder = false }
      named.append(entry)
    }
    guard reader.atEnd else { throw reader.damaged("bytes after its last entry") }
    return (removed, named, inOrder)
  }

  fileprivate static func damaged(_ folder: Data, _ what: String) -> OperationError {
    OperationError(.internal, "folder \(hexString(folder)) is damaged in the store: \(what)", hint: .runCheck)
  }

  /// The blobs a record names itself.
  public static func namedBlobs(_ record: StoredFolder) throws -> [SHA256Hex] {
    try namedEntries(record).compactMap { entry in
      if case .file(_, _, _, let blob) = entry { return blob }
      return nil
    }
  }

  /// The error of a conversion that meets a damaged entry of the first layout: the store is left as
  /// it was (the conversion is one transaction).
  public static func unconvertible(_ folder: Data, entry: String) -> OperationError {
    OperationError(
      .internal,
      "the store cannot be converted to folder records: entry `\(entry)` of folder \(hexString(folder)) is damaged (its target is not a digest, or its size is negative); nothing was changed",
      hint: .runCheck)
  }

  static func sorted(_ entries: [TreeNode.Entry]) -> [TreeNode.Entry] {
    entries.sorted { EntryPath.byteOrder($0.name, $1.name) }
  }

  private static func compress(_ bytes: Data) -> (Data, Bool) {
    guard bytes.count > 64 else { return (bytes, false) }
    let bound = ZSTD_compressBound(bytes.count)
    var output = Data(count: bound)
    let written = output.withUnsafeMutableBytes { out in
      bytes.withUnsafeBytes { input in
        ZSTD_compress(out.baseAddress, bound, input.baseAddress, input.count, 3)
      }
    }
    guard ZSTD_isError(written) == 0, written < bytes.count - bytes.count / 16 else { return (bytes, false) }
    output.count = written
    return (output, true)
  }

  private static func decompressed(_ record: StoredFolder) throws -> Data {
    guard record.compressed else { return record.data }
    let notZstd = damaged(record.digest, "not a valid zstd frame")
    let size = record.data.withUnsafeBytes { ZSTD_getFrameContentSize($0.baseAddress, $0.count) }
    guard size != ZSTD_CONTENTSIZE_ERROR, size != ZSTD_CONTENTSIZE_UNKNOWN, size <= maxDecodedSize else {
      throw notZstd
    }
    var output = Data(count: Int(size))
    let result = try ZstdDecompression.withContext { context in
      output.withUnsafeMutableBytes { out in
        record.data.withUnsafeBytes { input in
          ZSTD_decompressDCtx(context, out.baseAddress, out.count, input.baseAddress, input.count)
        }
      }
    }
    guard ZSTD_isError(result) == 0, result == Int(size) else { throw notZstd }
    return output
  }
}

extension Data {
  fileprivate mutating func appendVarint(_ value: Int) {
    var value = UInt64(value)
    while value >= 0x80 {
      append(UInt8(value & 0x7F) | 0x80)
      value >>= 7
    }
    append(UInt8(value))
  }

  fileprivate mutating func appendName(_ name: String) {
    appendVarint(name.utf8.count)
    append(contentsOf: name.utf8)
  }

  fileprivate mutating func append(_ entry: TreeNode.Entry) {
    switch entry {
    case .file(let name, let mode, let size, let blob):
      append(mode == .executable ? 1 : 0)
      appendName(name)
      appendVarint(Int(size))
      append(blob.bytes)
    case .folder(let name, let node):
      append(2)
      appendName(name)
      append(node)
    }
  }
}

/// Reads a record's bytes; every read is bounds-checked, so a damaged record is an error, never a crash.
private struct RecordReader {
  let bytes: [UInt8]
  let folder: Data
  var at = 0

  init(bytes: Data, folder: Data) {
    self.bytes = [UInt8](bytes)
    self.folder = folder
  }

  var atEnd: Bool { at == bytes.count }

  func damaged(_ what: String) -> OperationError { FolderRecord.damaged(folder, what) }

  mutating func byte() throws -> UInt8 {
    guard at < bytes.count else { throw damaged("it ends too soon") }
    defer { at += 1 }
    return bytes[at]
  }

  mutating func varint() throws -> UInt64 {
    var value: UInt64 = 0
    for shift in stride(from: UInt64(0), to: 64, by: 7) {
      let byte = try byte()
      value |= UInt64(byte & 0x7F) << shift
      if byte < 0x80 { return value }
    }
    throw damaged("a number is too long")
  }

  /// A count of items that each take at least one byte, so a damaged count cannot make a huge loop.
  mutating func count() throws -> Int {
    let value = try varint()
    guard value <= UInt64(bytes.count - at) else { throw damaged("a count is larger than the record") }
    return Int(value)
  }

  mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
    guard count >= 0, count <= bytes.count - at else { throw damaged("it ends too soon") }
    defer { at += count }
    return bytes[at..<at + count]
  }

  mutating func name() throws -> String {
    let length = try count()
    // A name holds no `/` character; a `/` byte joined by a combining mark is one character with it
    // (see `EntryPath.folder(of:)`). Looked for among the bytes first: Foundation's `contains` on
    // strings goes through NSString.
    let bytes = try take(length)
    guard let name = String(validating: bytes, as: UTF8.self), !name.isEmpty,
      !bytes.contains(0x2F) || !name.contains("/")
    else {
      throw damaged("an entry name is not a valid name")
    }
    return name
  }

  mutating func entry() throws -> TreeNode.Entry {
    let kind = try byte()
    let name = try name()
    switch kind {
    case 0, 1:
      let size = try varint()
      guard size <= UInt64(Int64.max) else { throw damaged("the size of `\(name)` is out of range") }
      let blob = try take(32).withUnsafeBytes { SHA256Hex(bytes: $0)! }
      return .file(name: name, mode: kind == 1 ? .executable : .regular, size: Int64(size), blob: blob)
    case 2:
      return .folder(name: name, node: Data(try take(32)))
    default:
      throw damaged("entry `\(name)` has an unknown kind \(kind)")
    }
  }
}

/// Reads stored folders, resolving delta chains, with a cache of decoded folders shared by the
/// process: folders are content-addressed, so a digest always names the same entries.
public struct FolderReader {
  /// Fetches a stored record by digest, or nil when the store has none.
  public typealias Fetch = (Data) throws -> StoredFolder?

  let fetch: Fetch
  let cache: FolderCache

  /// - Parameter shared: whether decoded folders are shared with the rest of the process; `check`
  ///   reads every record itself instead.
  public init(shared: Bool = true, fetch: @escaping Fetch) {
    self.init(cache: shared ? .shared : FolderCache(), fetch: fetch)
  }

  /// A reader whose decoded folders are kept in `cache`, and shared with the other readers of it.
  public init(cache: FolderCache, fetch: @escaping Fetch) {
    self.fetch = fetch
    self.cache = cache
  }

  /// The entries of the folder `digest`, in name byte order.
  ///
  /// - Throws: `.internal` when the folder or a folder of its delta chain is missing or damaged.
  public func entries(_ digest: Data) throws -> [TreeNode.Entry] { try entries(digest, depth: nil) }

  private func entries(_ digest: Data, depth: Int?) throws -> [TreeNode.Entry] {
    if let cached = cache.entries(digest) { return cached }
    guard let record = try fetch(digest) else {
      throw OperationError(.internal, "folder \(hexString(digest)) is missing from the store", hint: .runCheck)
    }
    return try decoded(record, depth: depth).entries
  }

  /// The entries of `record`, fetched already, and those it names itself (`FolderRecord.namedEntries`);
  /// its base is read through this reader, and its entries kept as any read are.
  func decoded(_ record: StoredFolder) throws -> (entries: [TreeNode.Entry], named: [TreeNode.Entry]) {
    try decoded(record, depth: nil)
  }

  private func decoded(
    _ record: StoredFolder, depth: Int?
  ) throws -> (entries: [TreeNode.Entry], named: [TreeNode.Entry]) {
    // Depths fall by one along a chain, so a damaged chain cannot loop.
    guard depth == nil || record.depth == depth, (record.base == nil) == (record.depth == 0), record.depth >= 0 else {
      throw OperationError(
        .internal, "folder \(hexString(record.digest)) is damaged in the store: its delta chain is broken",
        hint: .runCheck)
    }
    let base = try record.base.map { try self.entries($0, depth: record.depth - 1) }
    let decoded = try FolderRecord.decodeWithNamed(record, base: base)
    cache.insert(record.digest, decoded.entries)
    return decoded
  }
}

/// Decoded folders, least recently used first out, bounded by their entries.
public final class FolderCache: Sendable {
  /// The process's cache: 25,000 entries, about 2.5 MB, and folders of up to as many entries.
  ///
  /// What it saves is a delta chain's base decoded again and, in a server, the folders of versions
  /// asked for again; a command reads most folders once. At 100,000 entries, a first push or import
  /// of 100,000 files kept every folder it listed its changes from (10 MB) until it ended.
  public static let shared = FolderCache(limit: 25_000, largestFolder: 25_000)

  private struct State {
    var folders: [Data: (entries: [TreeNode.Entry], used: UInt64)] = [:]
    var entryCount = 0
    var clock: UInt64 = 0
  }

  private let state = Mutex(State())
  private let limit: Int
  /// A folder of more entries is not kept.
  private let largestFolder: Int

  /// - Parameters:
  ///   - limit: the entries of every folder kept, past which the older half is dropped.
  ///   - largestFolder: the most entries of a folder kept; a larger one would drop the rest at once.
  init(limit: Int, largestFolder: Int) {
    self.limit = limit
    self.largestFolder = largestFolder
  }

  /// A cache of its own, for one `check`: 100,000 entries, about 10 MB, so that most deltas' bases
  /// are found decoded.
  public convenience init() { self.init(limit: 100_000, largestFolder: 25_000) }

  func entries(_ digest: Data) -> [TreeNode.Entry]? {
    state.withLock { state in
      guard let found = state.folders[digest] else { return nil }
      state.clock += 1
      state.folders[digest]?.used = state.clock
      return found.entries
    }
  }

  func insert(_ digest: Data, _ entries: [TreeNode.Entry]) {
    guard entries.count <= largestFolder else { return }
    state.withLock { state in
      state.clock += 1
      if state.folders.updateValue((entries, state.clock), forKey: digest) == nil {
        state.entryCount += entries.count
      }
      guard state.entryCount > limit else { return }
      // Drops the older half at once, so eviction costs little per insertion.
      let byAge = state.folders.sorted { $0.value.used < $1.value.used }
      for (key, value) in byAge.prefix(byAge.count / 2 + 1) {
        state.folders[key] = nil
        state.entryCount -= value.entries.count
      }
    }
  }
}

extension FolderReader {
  /// The stored record of `digest`, or nil.
  public func record(_ digest: Data) throws -> StoredFolder? { try fetch(digest) }

  /// The records to store for the new folders of a tree: one per folder of `folders` (as
  /// `TreeNode.build` lists them) that `isStored` says is new, each a delta against the folder at
  /// the same path in the tree `head` where that pays.
  ///
  /// - Returns: the new records, children before parents.
  public func records(
    for folders: [TreeFolder], head: Data?, isStored: (Data) throws -> Bool
  ) throws -> [StoredFolder] {
    var records: [StoredFolder] = []
    try forEachRecord(for: folders, head: head, isStored: isStored) { records.append($0) }
    return records
  }

  /// Each record `records(for:head:isStored:)` lists, handed to `body` as it is made, children
  /// before parents: none is held after `body` (the records of a first push of 100,000 files, held
  /// together, took 7 MB).
  public func forEachRecord(
    for folders: [TreeFolder], head: Data?, isStored: (Data) throws -> Bool,
    _ body: (StoredFolder) throws -> Void
  ) throws {
    let bases = BaseFinder(reader: self, head: head)
    var written = Set<Data>()
    for folder in folders where !written.contains(folder.digest) {
      guard try !isStored(folder.digest) else { continue }
      written.insert(folder.digest)
      try body(FolderRecord.encode(folder.node, digest: folder.digest, base: try bases.base(at: folder.path)))
    }
  }
}

/// Finds, for a folder of a new tree, the folder at the same path in the tree it replaces: the base
/// its record is a delta against. Each folder of the old tree is read once, only along the paths asked.
public final class BaseFinder {
  private let reader: FolderReader
  private let head: Data?
  private var found: [String: (digest: Data, entries: [TreeNode.Entry])?] = [:]

  public init(reader: FolderReader, head: Data?) {
    self.reader = reader
    self.head = head
  }

  /// The folder at `path` ("" for the root) in the old tree, with its record's depth, or nil.
  public func base(at path: String) throws -> (digest: Data, depth: Int, entries: [TreeNode.Entry])? {
    guard let folder = try folder(at: path), let record = try reader.record(folder.digest) else { return nil }
    return (folder.digest, record.depth, folder.entries)
  }

  private func folder(at path: String) throws -> (digest: Data, entries: [TreeNode.Entry])? {
    if let known = found[path] { return known }
    var digest: Data?
    if path.isEmpty {
      digest = head
    } else {
      let name = String(EntryPath.name(of: path))
      for case .folder(name, let node) in try folder(at: EntryPath.folder(of: path))?.entries ?? [] { digest = node }
    }
    let folder = try digest.map { ($0, try reader.entries($0)) }
    found[path] = folder
    return folder
  }
}
