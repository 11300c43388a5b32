import Foundation
import Testing

@testable import ConfvaultCore

/// `pack` of an uncompressed archive file reads each file once, hashing it as it is written, and
/// fills in the manifest's digests at the end.
@Suite struct OnePassPackTests {
  /// A folder whose files fill the hashing slabs several times over: small files many to a slab, a
  /// file across several slabs, and an empty file.
  static func makeFolder() throws -> String {
    let root = NSTemporaryDirectory() + "confvault-one-pass-\(UUID().uuidString)"
    for index in 0..<300 {
      let folder = root + "/part-\(index % 7)"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try randomBytes(index * 97 % 40_000).write(to: URL(fileURLWithPath: folder + "/file-\(index).bin"))
    }
    try randomBytes((3 << 20) + 12_345).write(to: URL(fileURLWithPath: root + "/part-3/large.bin"))
    try Data().write(to: URL(fileURLWithPath: root + "/empty.txt"))
    return root
  }

  static func randomBytes(_ count: Int) -> Data {
    var generator = SystemRandomNumberGenerator()
    let words = (0..<(count + 7) / 8).map { _ in generator.next() as UInt64 }
    return words.withUnsafeBytes { Data($0.prefix(count)) }
  }

  @Test("byte for byte the archive that hashing every file first, then writing it, makes")
  func sameBytes() throws {
    let folder = try Self.makeFolder()
    defer { try? FileManager.default.removeItem(atPath: folder) }
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
      try ConfigurationFolder.stream(folder + "/" + file.path, buffer: buffer, write)
    }
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
        found, app: nil, environment: nil, modificationTime: 0, into: target,
        fileDescriptor: target.fileDescriptor!, destination: output)
    } throws: { error in
      (error as? OperationError)?.kind == .conflict && "\(error)".contains("part-3/file-10.bin")
    }
    #expect(!FileManager.default.fileExists(atPath: output), "no archive at the final name")
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
