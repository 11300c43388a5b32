import Foundation
import Testing

@testable import ConfvaultCore

/// `pack` of an uncompressed archive file reads each file once, hashing it as it is written, and
/// fills in the manifest's digests at the end.
@Suite struct OnePassPackTests {
  /// A folder whose files fill the hashing slabs several times over: small files many to a slab, a
  /// file across several slabs, an empty file, and one whose name on disk is not in NFC form.
  static func makeFolder() throws -> String {
    let root = NSTemporaryDirectory() + "confvault-one-pass-\(UUID().uuidString)"
    for index in 0..<300 {
      let folder = root + "/part-\(index % 7)"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try randomBytes(index * 97 % 40_000).write(to: URL(fileURLWithPath: folder + "/file-\(index).bin"))
    }
    try randomBytes((3 << 20) + 12_345).write(to: URL(fileURLWithPath: root + "/part-3/large.bin"))
    try Data().write(to: URL(fileURLWithPath: root + "/empty.txt"))
    let decomposed = String(decoding: Array("part-2/cafe".utf8) + [0xCC, 0x81] + Array(".txt".utf8), as: UTF8.self)
    try Data("NFD on disk\n".utf8).write(to: URL(fileURLWithPath: root + "/" + decomposed))
    return root
  }

  static func randomBytes(_ count: Int) -> Data {
    var generator = SystemRandomNumberGenerator()
    let words = (0..<(count + 7) / 8).map { _ in generator.next() as UInt64 }
    return words.withUnsafeBytes { Data($0.prefix(count)) }
  }

  @Test(
    "byte for byte the archive that hashing every file first, then writing it, makes",
    arguments: [false, true])
  func sameBytes(futureTime: Bool) throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    if futureTime {
      // After 2242, past what a tar header's mtime holds: every entry, the manifest first, gets a pax header.
      var times = [timespec(tv_sec: 9_000_000_000, tv_nsec: 0), timespec(tv_sec: 9_000_000_000, tv_nsec: 0)]
      #expect(utimensat(AT_FDCWD, folder + "/empty.txt", &times, 0) == 0)
    }
    let (ours, reference) = (folder + ".tar", folder + ".reference.tar")
    defer { unlink(ours); unlink(reference) }
    let packed = try ConfigurationArchive.pack(
      folder: folder, app: "inventory", environment: "staging", compression: .none,
      to: .file(ours, replaceExisting: false))
    let found = try ConfigurationFolder.scan(folder)
    let manifest = Manifest(
      app: "inventory", environment: "staging", version: nil, files: try ConfigurationArchive.hash(found))
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    defer { buffer.deallocate() }
    let written = try ConfigurationArchive.write(
      manifest: manifest, modificationTime: found.map(\.modificationTime).max()!, compression: .none,
      to: .file(reference, replaceExisting: false)
    ) { file, write in
      let onDisk = try #require(found.first { $0.path == file.path }).absolutePath
      try ConfigurationFolder.stream(onDisk, buffer: buffer, write)
    }
    let decomposedOnDisk = Array("e".utf8) + [0xCC, 0x81] + Array(".txt".utf8)
    #expect(
      found.contains { $0.path == "part-2/café.txt" && Array($0.absolutePath.utf8.suffix(7)) == decomposedOnDisk })
    #expect(
      ConfigurationArchive.manifestOffset(Array(try Data(contentsOf: URL(fileURLWithPath: ours)).prefix(4096)))
        == (futureTime ? 1536 : 512))
    let sameManifest = packed.manifest == manifest  // not in #expect: it would print both, every file
    #expect(sameManifest, "the manifest returned holds the digests read")
    #expect(packed.bytes == written.bytes)
    let bytes = try Data(contentsOf: URL(fileURLWithPath: ours))
    #expect(bytes == (try Data(contentsOf: URL(fileURLWithPath: reference))), "the same archive")
    let contents = try ArchiveReader().read(from: .file(ours))
    let readBack = contents.manifest == manifest
    #expect(readBack && contents.compression == Compression.none)
  }

  @Test("a file whose size changed since the scan stops the pack, and nothing is written")
  func sizeChangedSinceScan() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let found = try ConfigurationFolder.scan(folder)
    let changed = try #require(found.first { $0.path == "part-3/file-10.bin" })
    try Data("longer than it was, or shorter".utf8).write(to: URL(fileURLWithPath: changed.absolutePath))
    let output = folder + ".tar"
    let target = try OpenedOutput(.file(output, replaceExisting: false))
    #expect {
      try ConfigurationArchive.packInOnePass(
        found, app: nil, environment: nil, modificationTime: 0, into: target, destination: output)
    } throws: { error in
      (error as? OperationError)?.kind == .conflict
        && "\(error)".contains("`part-3/file-10.bin` changed while it was being archived; nothing was written")
    }
    #expect(!FileManager.default.fileExists(atPath: output), "no archive at the final name")
  }

  @Test("a file changed while it is read is refused, even at the same size: its bytes would be half old, half new")
  func changedWhileRead() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let large = try #require(try ConfigurationFolder.scan(folder).first { $0.path == "part-3/large.bin" })
    // Past a clock tick, so that the change's ctime is not the file's.
    Thread.sleep(forTimeInterval: 0.05)
    let hasher = PackHasher(files: 1)
    var pieces = 0
    #expect {
      _ = try hasher.read(large, as: 0) { _ in
        pieces += 1
        guard pieces == 1 else { return }
        // The last bytes, not read yet (the file spans several slabs), changed in place.
        let fd = open(large.absolutePath, O_WRONLY)
        defer { close(fd) }
        #expect(pwrite(fd, "changed", 7, off_t(large.size - 7)) == 7)
      }
    } throws: { error in
      (error as? OperationError)?.kind == .conflict && "\(error)".contains("`part-3/large.bin` changed")
    }
    #expect(pieces > 1, "the change came in the middle of the read")
    _ = hasher.digests()
  }

  @Test("the manifest's bytes are found after its header, and after a pax header before it")
  func manifestOffset() {
    func header(_ name: String, type: Character, size: Int) -> [UInt8] {
      var block = [UInt8](repeating: 0, count: 512)
      block.replaceSubrange(0..<name.utf8.count, with: name.utf8)
      let octal = Array(String(format: "%011o", size).utf8)
      block.replaceSubrange(124..<135, with: octal)
      block[156] = UInt8(ascii: String(type).unicodeScalars.first!)
      return block
    }
    let manifest = header("confvault.json", type: "0", size: 2000)
    #expect(ConfigurationArchive.manifestOffset(manifest + [UInt8](repeating: 0, count: 512)) == 512)
    let pax = header("PaxHeader/confvault.json", type: "x", size: 600)
    #expect(ConfigurationArchive.manifestOffset(pax + [UInt8](repeating: 0, count: 1024) + manifest) == 2048)
    #expect(ConfigurationArchive.manifestOffset(header("config/a.yaml", type: "0", size: 1) + manifest) == nil)
    #expect(ConfigurationArchive.manifestOffset(header("confvault.json", type: "5", size: 0)) == nil)
    #expect(ConfigurationArchive.manifestOffset(Array(manifest.prefix(300))) == nil, "no whole header")
  }
}
