import Foundation
import Testing

@testable import ConfvaultCore

/// The guard's own reading of headers, on hand-made blocks.
@Suite struct TarStreamGuardTests {
  /// A ustar header of an empty regular file named `name`, its checksum `adjust`ed from the sum made
  /// as `signed` or unsigned bytes.
  static func header(named name: [UInt8], signed: Bool, adjust: Int = 0) -> [UInt8] {
    var block = [UInt8](repeating: 0, count: 512)
    block.replaceSubrange(0..<name.count, with: name)
    block.replaceSubrange(100..<108, with: Array("0000644\0".utf8))
    block.replaceSubrange(124..<136, with: Array("00000000000\0".utf8))
    block[156] = UInt8(ascii: "0")
    block.replaceSubrange(257..<265, with: Array("ustar\000".utf8))
    block.replaceSubrange(148..<156, with: [UInt8](repeating: 0x20, count: 8))
    let sum = block.reduce(0) { $0 + (signed ? Int(Int8(bitPattern: $1)) : Int($1)) } + adjust
    block.replaceSubrange(148..<156, with: Array(String(format: "%06o", sum).utf8) + [0, 0x20])
    return block
  }

  static func accepts(_ header: [UInt8]) -> Bool {
    var tarGuard = TarStreamGuard()
    let stream = header + [UInt8](repeating: 0, count: 1024)
    do {
      try stream.withUnsafeBytes { try tarGuard.consume($0) }
      try tarGuard.finish()
      return true
    } catch {
      return false
    }
  }

  @Test("a header's checksum is taken as the unsigned or, as old writers made it, the signed sum of its bytes")
  func checksums() {
    // Bytes over 0x7F make the two sums differ.
    let name = Array("config/café-日本.yaml".utf8)
    #expect(Self.header(named: name, signed: true) != Self.header(named: name, signed: false))
    #expect(Self.accepts(Self.header(named: name, signed: false)))
    #expect(Self.accepts(Self.header(named: name, signed: true)))
    for adjust in [-1, 1] {
      #expect(!Self.accepts(Self.header(named: name, signed: false, adjust: adjust)))
      #expect(!Self.accepts(Self.header(named: name, signed: true, adjust: adjust)))
    }
  }
}
