import Foundation

/// Finds a key that appears twice in one JSON object, which Foundation's decoders accept silently.
enum JSONDuplicateKeys {
  /// The first key that one object of `data` holds twice, or nil. `data` need not be valid JSON:
  /// this only looks at keys, and the decoder judges the rest.
  static func first(in data: Data) -> String? {
    data.withUnsafeBytes { bytes in
      // One entry per open object or array; an object's keys, and whether a key comes next.
      var objects: [(keys: Set<[UInt8]>, expectingKey: Bool)?] = []
      var index = 0
      while index < bytes.count {
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "{"):
          objects.append((keys: [], expectingKey: true))
        case UInt8(ascii: "["):
          objects.append(nil)
        case UInt8(ascii: "}"), UInt8(ascii: "]"):
          if !objects.isEmpty { objects.removeLast() }
        case UInt8(ascii: ","):
          if let last = objects.last, last != nil { objects[objects.count - 1]!.expectingKey = true }
        case UInt8(ascii: "\""):
          let start = index + 1
          var escaped = false
          index += 1
          while index < bytes.count && (escaped || bytes[index] != UInt8(ascii: "\"")) {
            escaped = !escaped && bytes[index] == UInt8(ascii: "\\")
            index += 1
          }
          if let last = objects.last, let object = last, object.expectingKey {
            let key = decodedKey(bytes[start..<min(index, bytes.count)])
            objects[objects.count - 1]!.expectingKey = false
            if !objects[objects.count - 1]!.keys.insert(key).inserted {
              return String(decoding: key, as: UTF8.self)
            }
          }
        default:
          break
        }
        index += 1
      }
      return nil
    }
  }

  /// A key as its characters, escapes resolved, so `"\u0061pp"` and `"app"` are one key.
  private static func decodedKey(_ raw: Slice<UnsafeRawBufferPointer>) -> [UInt8] {
    guard raw.contains(UInt8(ascii: "\\")) else { return Array(raw) }
    let quoted = Data([UInt8(ascii: "\"")] + raw + [UInt8(ascii: "\"")])
    guard let text = try? JSONDecoder().decode(String.self, from: quoted) else { return Array(raw) }
    return Array(text.utf8)
  }
}
