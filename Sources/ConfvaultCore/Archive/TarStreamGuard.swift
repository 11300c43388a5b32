/// Reads every tar header byte for byte as the stream goes to libarchive, and refuses what tar
/// readers interpret differently, before libarchive interprets it its own way.
///
/// libarchive, GNU tar, bsdtar, Python and Go disagree on: a NUL inside a pax `path` or a GNU long
/// name (libarchive cuts the name there), sparse entries (holes filled or not), pax global headers
/// (GNU tar applies a global `path` to every entry, libarchive ignores it), GNU volume and
/// multivolume headers, a lone zero block, and whatever follows the two zero blocks that end an
/// archive. An archive that a reader could see differently is refused, so every reader sees the
/// configuration the manifest describes.
struct TarStreamGuard {
  /// The most zero bytes accepted after the end-of-archive blocks: the rest of one 10 KiB tar record.
  static let maxPadding = 10_240
  /// The largest pax extended header or GNU long name read.
  static let maxMetadata = 1 << 20

  private enum State {
    /// Collecting a 512-byte header.
    case header
    /// Skipping an entry's data (and its padding to 512).
    case data(remaining: Int64)
    /// Collecting a pax extended header or a GNU long name, then its padding.
    case metadata(kind: UInt8, size: Int, padding: Int)
    /// After the two zero blocks: only zeros may follow.
    case trailer
  }

  private var state = State.header
  private var block: [UInt8] = []
  private var metadata: [UInt8] = []
  private var zeroBlocks = 0
  private var trailing = 0
  /// The next entry's size and name from a pax header or GNU long name, which override its header.
  private var nextSize: Int64?
  private var nextName: [UInt8]?
  /// A pax sparse record seen for the next entry, refused at its header, where its name is known.
  private var nextSparse: String?
  private var isFirstBlock = true

  init() { block.reserveCapacity(512) }

  /// Whether the two zero blocks that end an archive were seen.
  var sawEnd: Bool {
    if case .trailer = state { return true }
    return false
  }

  mutating func consume(_ bytes: UnsafeRawBufferPointer) throws {
    var rest = bytes[...]
    while !rest.isEmpty {
      switch state {
      case .header:
        let take = min(512 - block.count, rest.count)
        block.append(contentsOf: rest.prefix(take))
        rest = rest.dropFirst(take)
        if isFirstBlock && block.count >= 6 { try refuseNestedCompression() }
        if block.count == 512 {
          try header(block)
          block.removeAll(keepingCapacity: true)
        }
      case .data(let remaining):
        let take = Int(min(remaining, Int64(rest.count)))
        rest = rest.dropFirst(take)
        state = remaining - Int64(take) == 0 ? .header : .data(remaining: remaining - Int64(take))
      case .metadata(let kind, let size, let padding):
        let take = min(size + padding - metadata.count, rest.count)
        metadata.append(contentsOf: rest.prefix(take))
        rest = rest.dropFirst(take)
        if metadata.count == size + padding {
          try finishMetadata(kind: kind, Array(metadata.prefix(size)))
          metadata.removeAll(keepingCapacity: true)
          state = .header
        }
      case .trailer:
        if let index = rest.firstIndex(where: { $0 != 0 }) {
          throw ArchiveRefusal(
            entry: nil, rule: .trailingData,
            detail: "a non-zero byte \(trailing + (index - rest.startIndex)) bytes after the end-of-archive blocks")
        }
        trailing += rest.count
        rest = rest.dropFirst(rest.count)
        if trailing > TarStreamGuard.maxPadding {
          throw ArchiveRefusal(
            entry: nil, rule: .trailingData,
            detail: "more than \(TarStreamGuard.maxPadding) bytes of padding after the end-of-archive blocks")
        }
      }
    }
  }

  /// Checks that the stream ended where a tar ends.
  func finish() throws {
    if isFirstBlock { try refuseNestedCompression() }
    guard sawEnd else {
      throw ArchiveRefusal(
        entry: nil, rule: .corrupt, detail: "it stops without the end-of-archive blocks: truncated")
    }
  }

  /// A compressed stream where the tar should start: a second layer (a gzip quine is one without end).
  private func refuseNestedCompression() throws {
    guard let inner = Compression.detect(block) else { return }
    throw ArchiveRefusal(
      entry: nil, rule: .nestedCompression,
      detail: "the data inside is \(inner.rawValue)-compressed again; an archive has one layer at most")
  }

  private mutating func header(_ header: [UInt8]) throws {
    defer { isFirstBlock = false }
    if header.allSatisfy({ $0 == 0 }) {
      zeroBlocks += 1
      if zeroBlocks == 2 { state = .trailer }
      return
    }
    guard Self.checksumMatches(header) else {
      if isFirstBlock {
        throw ArchiveRefusal(entry: nil, rule: .notAnArchive, detail: "its first 512 bytes are no tar header")
      }
      throw ArchiveRefusal(
        entry: nil, rule: .corrupt,
        detail: "a header's checksum does not match it, after \(displayName(Self.ustarName(header)))")
    }
    // The name as shown in a refusal, made only for one: most headers are read without one.
    let paxName = nextName
    func shown() -> String { displayName(paxName ?? Self.ustarName(header)) }
    if zeroBlocks == 1 {
      throw ArchiveRefusal(
        entry: shown(), rule: .suspiciousHeader,
        detail: "a lone zero block comes before it; readers disagree whether the archive ends there")
    }
    let typeflag = header[156]
    if let key = nextSparse, typeflag != UInt8(ascii: "x") {
      throw ArchiveRefusal(
        entry: shown(), rule: .sparse, detail: "pax record `\(key)`; readers fill its holes differently")
    }
    let size = try nextSize ?? Self.size(header, shown: shown)
    switch typeflag {
    case UInt8(ascii: "x"), UInt8(ascii: "X"), UInt8(ascii: "L"), UInt8(ascii: "K"):
      guard size <= TarStreamGuard.maxMetadata else {
        throw ArchiveRefusal(
          entry: shown(), rule: .suspiciousHeader, detail: "an extended header of \(size) bytes")
      }
      state = .metadata(kind: typeflag, size: Int(size), padding: Int((512 - size % 512) % 512))
      return  // it describes the next entry, whose header follows
    case UInt8(ascii: "g"):
      throw ArchiveRefusal(
        entry: shown(), rule: .globalHeader,
        detail: "GNU tar applies its values to every entry and libarchive ignores them")
    case UInt8(ascii: "V"), UInt8(ascii: "M"):
      throw ArchiveRefusal(
        entry: shown(), rule: .volumeHeader,
        detail: typeflag == UInt8(ascii: "V") ? "a volume label" : "the continuation of a file from another volume")
    case UInt8(ascii: "S"):
      throw ArchiveRefusal(
        entry: shown(), rule: .sparse, detail: "GNU sparse format; readers fill its holes differently")
    case UInt8(ascii: "N"):
      throw ArchiveRefusal(entry: shown(), rule: .suspiciousHeader, detail: "an old GNU long-name entry")
    default:
      break
    }
    nextSize = nil
    nextName = nil
    let padded = (size + 511) / 512 * 512
    state = padded == 0 ? .header : .data(remaining: padded)
  }

  private mutating func finishMetadata(kind: UInt8, _ data: [UInt8]) throws {
    if kind == UInt8(ascii: "L") || kind == UInt8(ascii: "K") {
      // A GNU long name: the name, then NULs. A NUL before its end hides the rest of the name from
      // readers that stop there.
      var name = data[...]
      while name.last == 0 { name = name.dropLast() }
      if name.contains(0) {
        throw ArchiveRefusal(
          entry: displayName(Array(name.prefix { $0 != 0 })), rule: .controlCharacter,
          detail: "a NUL inside a GNU long \(kind == UInt8(ascii: "L") ? "name" : "link name")")
      }
      if kind == UInt8(ascii: "L") { nextName = Array(name) }
      return
    }
    for (key, value) in try Self.paxRecords(data) {
      if key == "path" || key == "linkpath" {
        if value.contains(0) {
          throw ArchiveRefusal(
            entry: displayName(Array(value.prefix { $0 != 0 })), rule: .controlCharacter,
            detail: "a NUL inside a pax `\(key)`")
        }
        if key == "path" { nextName = value }
      } else if key == "size" {
        guard let text = String(validating: value, as: UTF8.self), let size = Int64(text), size >= 0 else {
          throw ArchiveRefusal(
            entry: nextName.map(displayName), rule: .suspiciousHeader, detail: "a pax size that is no number")
        }
        nextSize = size
      } else if key == "GNU.sparse.name" {
        nextName = value
        nextSparse = nextSparse ?? key
      } else if key.hasPrefix("GNU.sparse.") || key.hasPrefix("SCHILY.") && key.contains("sparse") {
        nextSparse = nextSparse ?? key
      }
    }
  }

  /// The records of a pax extended header: `<length> <key>=<value>\n`, each.
  private static func paxRecords(_ data: [UInt8]) throws -> [(String, [UInt8])] {
    var records: [(String, [UInt8])] = []
    var index = 0
    while index < data.count {
      guard let space = data[index...].firstIndex(of: UInt8(ascii: " ")),
        let length = Int(String(decoding: data[index..<space], as: UTF8.self)), length > 0,
        index + length <= data.count, data[index + length - 1] == UInt8(ascii: "\n"),
        let equals = data[(space + 1)..<(index + length)].firstIndex(of: UInt8(ascii: "="))
      else {
        throw ArchiveRefusal(entry: nil, rule: .suspiciousHeader, detail: "a malformed pax extended header")
      }
      records.append(
        (String(decoding: data[(space + 1)..<equals], as: UTF8.self), Array(data[(equals + 1)..<(index + length - 1)])))
      index += length
    }
    return records
  }

  /// Whether the header's checksum field holds the sum of its bytes (the field counted as spaces),
  /// unsigned or, as some old writers did, signed.
  private static func checksumMatches(_ header: [UInt8]) -> Bool {
    var stored = 0
    for byte in header[148..<156] where (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte) {
      stored = stored * 8 + Int(byte - UInt8(ascii: "0"))
    }
    // Summed over the whole block, then the checksum field's own bytes taken out for 8 spaces.
    var unsigned = 8 * Int(UInt8(ascii: " "))
    var signed = unsigned
    header.withUnsafeBufferPointer { bytes in
      for (index, byte) in bytes.enumerated() where index < 148 || index >= 156 {
        unsigned &+= Int(byte)
        signed &+= Int(Int8(bitPattern: byte))
      }
    }
    return stored == unsigned || stored == signed
  }

  /// The name in a ustar header: prefix `/` name, each up to its first NUL.
  private static func ustarName(_ header: [UInt8]) -> [UInt8] {
    let name = header[0..<100].prefix { $0 != 0 }
    // POSIX ustar ("ustar\0") has a name prefix; GNU's magic ("ustar  ") keeps times there instead.
    let isUstar = header[257..<263].elementsEqual([0x75, 0x73, 0x74, 0x61, 0x72, 0])  // "ustar\0"
    let prefix = isUstar ? header[345..<500].prefix { $0 != 0 } : []
    return prefix.isEmpty ? Array(name) : Array(prefix) + [UInt8(ascii: "/")] + Array(name)
  }

  /// The size field: octal digits, or base-256 (GNU) when its first byte has the high bit set.
  private static func size(_ header: [UInt8], shown: () -> String) throws -> Int64 {
    let field = header[124..<136]
    if field.first! & 0x80 != 0 {
      var value: Int64 = 0
      for byte in field.dropFirst() {
        guard value < Int64.max >> 8 else {
          throw ArchiveRefusal(entry: shown(), rule: .suspiciousHeader, detail: "an entry size too large to hold")
        }
        value = value << 8 | Int64(byte)
      }
      return value
    }
    var value: Int64 = 0
    for byte in field where byte != 0 && byte != UInt8(ascii: " ") {
      guard (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(byte) else {
        throw ArchiveRefusal(entry: shown(), rule: .suspiciousHeader, detail: "a size field that is not octal")
      }
      value = value * 8 + Int64(byte - UInt8(ascii: "0"))
    }
    return value
  }
}
