import Foundation

/// Writes a manifest's JSON a piece at a time: byte for byte what `JSONCoding.encoder()` makes of it
/// (sorted keys, pretty-printed, slashes as they are), without building a document of every file
/// first. For 100,000 files, Foundation's encoder held about 90 MiB; this holds one piece.
///
/// The tar header before the manifest needs its size, so an archive asks `byteCount` (one pass that
/// keeps nothing) and then `write`s it.
struct ManifestEncoder {
  static let pieceSize = 64 << 10

  let manifest: Manifest

  init(_ manifest: Manifest) { self.manifest = manifest }

  /// The manifest's size in bytes.
  func byteCount() -> Int {
    var count = 0
    write { count += $0.count }
    return count
  }

  /// The manifest's bytes, whole.
  func data() -> Data {
    var data = Data()
    write { data.append(contentsOf: $0) }
    return data
  }

  /// Hands the manifest's bytes to `body`, in order, at most about `pieceSize` at a time.
  func write(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
    var out = Output()
    out.raw("{\n  \"app\" : ")
    out.optional(manifest.app)
    out.raw(",\n  \"environment\" : ")
    out.optional(manifest.environment)
    out.raw(",\n  \"fileCount\" : \(manifest.fileCount),\n  \"files\" : [\n")
    for (index, file) in manifest.files.enumerated() {
      out.raw(index == 0 ? "    {\n      \"mode\" : \"" : ",\n    {\n      \"mode\" : \"")
      out.raw(file.mode.rawValue)
      out.raw("\",\n      \"path\" : ")
      out.string(file.path)
      out.raw(",\n      \"sha256\" : \"")
      out.raw(file.sha256.value)
      out.raw("\",\n      \"size\" : \(file.size)\n    }")
      if out.bytes.count >= Self.pieceSize { try out.flush(body) }
    }
    out.raw("\n  ],\n  \"format\" : ")
    out.string(manifest.format)
    out.raw(",\n  \"formatVersion\" : \(manifest.formatVersion),\n  \"generator\" : ")
    out.string(manifest.generator)
    out.raw(",\n  \"totalSize\" : \(manifest.totalSize),\n  \"treeDigest\" : ")
    out.string(manifest.treeDigest.value)
    out.raw(",\n  \"version\" : ")
    if let version = manifest.version {
      out.raw("{\n    \"author\" : ")
      out.string(version.author)
      out.raw(",\n    \"comment\" : ")
      out.string(version.comment)
      out.raw(",\n    \"createdAt\" : ")
      out.string(Timestamp.iso8601(version.createdAt))
      out.raw(",\n    \"number\" : \(version.number),\n    \"origin\" : ")
      out.string(version.origin)
      out.raw(",\n    \"syncedAt\" : ")
      out.optional(version.syncedAt.map(Timestamp.iso8601))
      out.raw("\n  }")
    } else {
      out.raw("null")
    }
    out.raw("\n}")
    try out.flush(body)
  }

  /// The piece being filled.
  private struct Output {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(ManifestEncoder.pieceSize + 4096) }

    mutating func raw(_ text: String) { bytes.append(contentsOf: text.utf8) }

    mutating func optional(_ text: String?) {
      if let text { string(text) } else { raw("null") }
    }

    /// `text` as a JSON string, escaped as Foundation's encoder escapes it.
    mutating func string(_ text: String) {
      bytes.append(UInt8(ascii: "\""))
      for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes += [UInt8(ascii: "\\"), byte]
        case 0x08: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "b")]
        case 0x09: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
        case 0x0A: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
        case 0x0C: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "f")]
        case 0x0D: bytes += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
        case 0..<0x20:
          let hex = Array("0123456789abcdef".utf8)
          bytes += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
        default: bytes.append(byte)
        }
      }
      bytes.append(UInt8(ascii: "\""))
    }

    /// Hands the piece to `body` and starts the next.
    mutating func flush(_ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
      guard !bytes.isEmpty else { return }
      try bytes.withUnsafeBytes { try body($0) }
      bytes.removeAll(keepingCapacity: true)
    }
  }
}
