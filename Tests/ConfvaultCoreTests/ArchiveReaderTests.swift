import ConfvaultCore
import Foundation
import Testing

/// Collects what the reader streams, to check that the sink sees exactly the files' bytes.
final class CollectingSink: ArchiveFileSink {
  var files: [String: Data] = [:]
  var modes: [String: FileMode] = [:]
  private var current = ""

  func beginFile(path: String, mode: FileMode) throws {
    current = path
    files[path] = Data()
    modes[path] = mode
  }

  func write(_ bytes: UnsafeRawBufferPointer) throws { files[current]!.append(contentsOf: bytes) }

  func endFile(_ file: ManifestFile) throws {
    #expect(file.path == current)
    #expect(file.sha256 == SHA256Hex.of(files[current]!))
  }
}

@Suite struct ArchiveReaderTests {
  /// A temporary folder with a small configuration.
  static func makeFolder() throws -> String {
    let root = NSTemporaryDirectory() + "/confvault-core-\(UUID().uuidString)"
    let files: [String: String] = [
      "settings.yaml": "level: info\n",
      "entities/customer.json": "{\"fields\": {\"email\": {\"type\": \"text\"}}}\n",
      "i18n/español.json": "{\"hola\": \"mundo\"}\n",
      "big/data.bin": String(repeating: "0123456789abcdef", count: 40_000),
    ]
    for (path, text) in files {
      let url = URL(fileURLWithPath: root + "/" + path)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(text.utf8).write(to: url)
    }
    try Data("#!/bin/sh\n".utf8).write(to: URL(fileURLWithPath: root + "/run.sh"))
    chmod(root + "/run.sh", 0o755)
    return root
  }

  @Test("what is packed is streamed back to the sink byte for byte", arguments: Compression.allCases)
  func roundTrip(compression: Compression) throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let archive = folder + ".archive"
    defer { unlink(archive) }
    let written = try ConfigurationArchive.pack(
      folder: folder, app: "inventory", environment: "staging", compression: compression,
      to: .file(archive, replaceExisting: false))
    let sink = CollectingSink()
    let contents = try ArchiveReader().read(from: .file(archive), into: sink)
    #expect(contents.treeDigest == written.manifest.treeDigest)
    #expect(contents.manifest == written.manifest)
    #expect(contents.compression == compression)
    #expect(sink.files.count == 5)
    for (path, data) in sink.files {
      #expect(data == (try Data(contentsOf: URL(fileURLWithPath: folder + "/" + path))), "\(path)")
    }
    #expect(sink.modes["run.sh"] == .executable && sink.modes["settings.yaml"] == .regular)
    #expect(contents.archiveSHA256 == SHA256Hex.of(try Data(contentsOf: URL(fileURLWithPath: archive))))
  }

  /// Writes `count` random bytes (which no compression shrinks) to `path`, and gives them.
  @discardableResult
  static func writeNoise(_ count: Int, to path: String) throws -> Data {
    var generator = SystemRandomNumberGenerator()
    let noise = Data((0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) })
    try noise.write(to: URL(fileURLWithPath: path))
    return noise
  }

  /// The entries of an uncompressed tar: each header with its padded data, a pax header with the
  /// entry it describes.
  static func tarEntries(_ tar: Data) -> [Data] {
    var entries: [Data] = []
    var offset = 0
    var start = 0
    while offset + 512 <= tar.count, tar[offset] != 0 {
      let sizeField = String(decoding: tar[(offset + 124)..<(offset + 136)], as: UTF8.self)
      let size = Int(sizeField.trimmingCharacters(in: CharacterSet(charactersIn: "\0 ")), radix: 8)!
      let isPaxHeader = tar[offset + 156] == UInt8(ascii: "x")
      offset += 512 + (size + 511) / 512 * 512
      if !isPaxHeader {
        entries.append(tar.subdata(in: start..<offset))
        start = offset
      }
    }
    return entries
  }

  /// `entry` (a plain ustar header and its data) named `name` instead, its checksum made again.
  static func renamed(_ entry: Data, to name: String) -> Data {
    var entry = entry
    let bytes = Array(name.utf8)
    precondition(bytes.count <= 100)
    entry.replaceSubrange(0..<100, with: bytes + [UInt8](repeating: 0, count: 100 - bytes.count))
    entry.replaceSubrange(148..<156, with: [UInt8](repeating: 0x20, count: 8))
    let sum = entry.prefix(512).reduce(0) { $0 + Int($1) }
    entry.replaceSubrange(148..<156, with: Array(String(format: "%06o", sum).utf8) + [0, 0x20])
    return entry
  }

  /// An archive written to a temporary file and read; the refusal's rule, or nil when it was read.
  static func refusal(of archive: Data, limits: ArchiveLimits = .default) throws -> ArchiveRefusal.Rule? {
    let path = NSTemporaryDirectory() + "/confvault-core-\(UUID().uuidString).tar"
    defer { unlink(path) }
    try archive.write(to: URL(fileURLWithPath: path))
    do {
      _ = try ArchiveReader(limits: limits).read(from: .file(path))
      return nil
    } catch let refusal as ArchiveRefusal {
      return refusal.rule
    }
  }

  @Test("entries after the manifest are matched to it in any order; one twice or one unlisted is refused")
  func entriesInAnyOrder() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    for index in 0..<40 { try Data("\(index)\n".utf8).write(to: URL(fileURLWithPath: folder + "/n\(index).txt")) }
    let archive = folder + ".tar"
    defer { unlink(archive) }
    let written = try ConfigurationArchive.pack(
      folder: folder, app: nil, environment: nil, compression: .none, to: .file(archive, replaceExisting: false))
    let entries = Self.tarEntries(try Data(contentsOf: URL(fileURLWithPath: archive)))
    #expect(entries.count == 46, "the manifest and 45 files, no folder entries")
    func read(_ order: [Data]) throws -> ArchiveContents {
      let path = folder + ".reordered.tar"
      defer { unlink(path) }
      try (order.reduce(Data(), +) + Data(count: 1024)).write(to: URL(fileURLWithPath: path))
      return try ArchiveReader().read(from: .file(path))
    }
    var random = SystemRandomNumberGenerator()
    for _ in 0..<5 {
      let shuffled = [entries[0]] + entries.dropFirst().shuffled(using: &random)
      #expect(try read(shuffled).files == written.manifest.files)
    }
    #expect(try read([entries[0]] + entries.dropFirst().reversed()).files == written.manifest.files)
    #expect { try read(entries + [entries[7]]) } throws: { ($0 as? ArchiveRefusal)?.rule == .duplicatePath }
    #expect { try read(entries.dropLast() + [entries[3], entries.last!]) } throws: {
      ($0 as? ArchiveRefusal)?.rule == .duplicatePath
    }
    #expect { try read(Array(entries.dropLast())) } throws: { ($0 as? ArchiveRefusal)?.rule == .missingFile }
    // An entry in its place whose name is as long as the listed one's but not it.
    let position = try #require(entries.firstIndex { $0.starts(with: Data("config/n1.txt\0".utf8)) })
    for (name, rule) in [
      ("xonfig/n1.txt", ArchiveRefusal.Rule.outsideConfig), ("config/n1.txu", .notInManifest),
      ("config/m1.txt", .notInManifest),
    ] {
      var edited = entries
      edited[position] = Self.renamed(entries[position], to: name)
      #expect(try Self.refusal(of: edited.reduce(Data(), +) + Data(count: 1024)) == rule, "\(name)")
    }
  }

  @Test(
    "an archive larger than the reader's read-ahead is read whole, byte for byte", arguments: [Compression.none, .gzip])
  func largerThanReadAhead(compression: Compression) throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let noise = try Self.writeNoise(5 << 20, to: folder + "/noise.bin")
    let archive = folder + ".archive"
    defer { unlink(archive) }
    let written = try ConfigurationArchive.pack(
      folder: folder, app: nil, environment: nil, compression: compression, to: .file(archive, replaceExisting: false))
    let sink = CollectingSink()
    let contents = try ArchiveReader().read(from: .file(archive), into: sink)
    #expect(contents.manifest == written.manifest && sink.files["noise.bin"] == noise)
    #expect(contents.archiveSHA256 == SHA256Hex.of(try Data(contentsOf: URL(fileURLWithPath: archive))))
  }

  @Test("bytes after the end-of-archive blocks are refused, also when they come in a later read")
  func lateTrailingData() throws {
    let folder = NSTemporaryDirectory() + "/confvault-core-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    // A file sized so that the tar's entries end 1.5 KiB short of 1 MiB, the reader's first read.
    func entries(fileSize: Int) throws -> [Data] {
      try Data(count: fileSize).write(to: URL(fileURLWithPath: folder + "/zeros.bin"))
      let archive = folder + ".tar"
      defer { unlink(archive) }
      _ = try ConfigurationArchive.pack(
        folder: folder, app: nil, environment: nil, compression: .none, to: .file(archive, replaceExisting: false))
      return Self.tarEntries(try Data(contentsOf: URL(fileURLWithPath: archive)))
    }
    let target = (1 << 20) - 1536
    let first = try entries(fileSize: 1_000_000).reduce(0) { $0 + $1.count }
    let tar = try entries(fileSize: 1_000_000 + target - first).reduce(Data(), +)
    #expect(tar.count == target)
    let ended = tar + Data(count: (1 << 20) - tar.count)
    #expect(try Self.refusal(of: ended + Data(count: 512)) == nil)
    #expect(try Self.refusal(of: ended + Data("GARBAGE".utf8) + Data(count: 505)) == .trailingData)
  }

  @Test("a manifest over the manifest limit is refused as too large")
  func manifestLimit() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let archive = folder + ".tar"
    defer { unlink(archive) }
    let written = try ConfigurationArchive.pack(
      folder: folder, app: nil, environment: nil, compression: .none, to: .file(archive, replaceExisting: false))
    let size = written.manifest.encoded().count
    var limits = ArchiveLimits()
    limits.maxManifestBytes = size
    let data = try Data(contentsOf: URL(fileURLWithPath: archive))
    #expect(try Self.refusal(of: data, limits: limits) == nil)
    limits.maxManifestBytes = size - 1
    #expect(try Self.refusal(of: data, limits: limits) == .fileTooLarge)
  }

  @Test("a configuration path is held to the length limit without its `config/`, as pack holds it")
  func configurationPathLength() throws {
    let folder = NSTemporaryDirectory() + "/confvault-core-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try Data("a\n".utf8).write(to: URL(fileURLWithPath: folder + "/sixteen-bytes.md"))
    try Data("b\n".utf8).write(to: URL(fileURLWithPath: folder + "/a.md"))
    let archive = folder + ".tar"
    defer { unlink(archive) }
    _ = try ConfigurationArchive.pack(
      folder: folder, app: nil, environment: nil, compression: .none, to: .file(archive, replaceExisting: false))
    let entries = Self.tarEntries(try Data(contentsOf: URL(fileURLWithPath: archive)))
    // In order, and out of order (the name checked as any name).
    let reordered = [entries[0], entries[2], entries[1]].reduce(Data(), +) + Data(count: 1024)
    var limits = ArchiveLimits()
    limits.maxPathBytes = 16  // `sixteen-bytes.md`, 23 bytes with `config/`
    #expect(try ArchiveReader(limits: limits).read(from: .file(archive)).files.count == 2)
    #expect(try Self.refusal(of: reordered, limits: limits) == nil)
    limits.maxPathBytes = 15
    #expect(try Self.refusal(of: Data(contentsOf: URL(fileURLWithPath: archive)), limits: limits) == .nameTooLong)
    // The manifest lists what the tar holds, so the entry's own name is what is judged here.
    #expect(throws: ArchiveRefusal.self) {
      try EntryPath.normalized(entryName: Array("./config/sixteen-bytes.md".utf8), limits: limits, below: "config/")
    }
    #expect(
      try EntryPath.normalized(entryName: Array("./config/fifteen-bytes.m".utf8), limits: limits, below: "config/")
        == "config/fifteen-bytes.m")
  }

  @Test(
    "a reader that stops early lets go of its input: the thread stops and the archive is closed",
    .timeLimit(.minutes(1)))
  func refusedReadsLetGo() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    // Last in path order, and more than the thread runs ahead: it is still reading when the reader stops.
    try Self.writeNoise(3 << 20, to: folder + "/zz-noise.bin")
    let archive = folder + ".tar.gz"
    defer { unlink(archive) }
    _ = try ConfigurationArchive.pack(
      folder: folder, app: nil, environment: nil, compression: .gzip, to: .file(archive, replaceExisting: false))
    // This archive's open descriptors: the thread holds one until it stops (other tests' do not count).
    let resolved = try #require(realpath(archive, nil).map { String(cString: $0) })
    func openCopies() throws -> Int {
      try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) == resolved
      }
    }
    #expect(try openCopies() == 0)
    var limits = ArchiveLimits()
    limits.maxFiles = 1
    for _ in 0..<50 {
      #expect(throws: ArchiveRefusal.self) { try ArchiveReader(limits: limits).read(from: .file(archive)) }
    }
    // The threads stop on their own once let go; give them a moment.
    var open = try openCopies()
    for _ in 0..<250 where open > 0 {
      usleep(20_000)
      open = try openCopies()
    }
    #expect(open == 0, "\(open) of 50 refused reads still hold the archive open")
  }

  @Test("limits are counted on the bytes read")
  func limits() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let archive = folder + ".tar"
    defer { unlink(archive) }
    _ = try ConfigurationArchive.pack(
      folder: folder, app: nil, environment: nil, compression: .none, to: .file(archive, replaceExisting: false))
    var limits = ArchiveLimits()
    limits.maxFiles = 4
    #expect { try ArchiveReader(limits: limits).read(from: .file(archive)) } throws: {
      ($0 as? ArchiveRefusal)?.rule == .tooManyFiles
    }
    limits = ArchiveLimits()
    limits.maxFileBytes = 1000
    #expect { try ArchiveReader(limits: limits).read(from: .file(archive)) } throws: {
      ($0 as? ArchiveRefusal)?.rule == .fileTooLarge
    }
  }

  @Test("an archive written to a missing folder leaves nothing and says why")
  func atomicOutput() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    #expect {
      try ConfigurationArchive.pack(
        folder: folder, app: nil, environment: nil, compression: .gzip,
        to: .file(folder + "/missing/out.tar.gz", replaceExisting: false))
    } throws: { error in
      (error as? SystemError)?.kind == .cannotCreateOutput
    }
  }

  @Test("a file that changes between hashing and writing stops the pack", .timeLimit(.minutes(1)))
  func changedWhilePacking() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let found = try ConfigurationFolder.scan(folder)
    let manifestFiles = try ConfigurationArchive.hash(found)
    try Data("level: debug\n".utf8).write(to: URL(fileURLWithPath: folder + "/settings.yaml"))
    let output = folder + ".tar"
    let manifest = Manifest(app: nil, environment: nil, version: nil, files: manifestFiles)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 16)
    defer { buffer.deallocate() }
    #expect {
      _ = try ConfigurationArchive.write(
        manifest: manifest, modificationTime: 0, compression: .none, to: .file(output, replaceExisting: false)
      ) { file, write in
        try ConfigurationFolder.stream(folder + "/" + file.path, buffer: buffer, write)
      }
    } throws: { error in
      "\(error)".contains("settings.yaml")
    }
    #expect(!FileManager.default.fileExists(atPath: output), "no archive at the final name")
  }
}
