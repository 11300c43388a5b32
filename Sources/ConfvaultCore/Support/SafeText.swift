/// The one way a string that came from an archive or a store (a name, an author, a comment, a file
/// path, a diff line) is shown on a terminal or a page: nothing in it can move a cursor, set a
/// window title, or make text read in another order.
///
/// Control characters (C0 but tab, DEL, C1) become `\xNN` (`\u{NN}` for C1), bidirectional controls
/// `\u{NNNN}`, and bytes that are not UTF-8 `\xNN`. Printable text, the usual case, is returned as it is.
public enum SafeText {
  public static func escaping(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: needsEscape) else { return text }
    var shown = ""
    for scalar in text.unicodeScalars { append(scalar, to: &shown) }
    return shown
  }

  /// Bytes that should be UTF-8 text, shown safely whatever they are.
  public static func escaping<Bytes: Collection<UInt8>>(bytes: Bytes) -> String {
    if let text = String(validating: bytes, as: UTF8.self) { return escaping(text) }
    var shown = ""
    var rest = bytes[...]
    while let lead = rest.first {
      let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 0
      if length > 0, rest.count >= length,
        let scalar = String(validating: rest.prefix(length), as: UTF8.self)?.unicodeScalars.first
      {
        append(scalar, to: &shown)
        rest = rest.dropFirst(length)
      } else {
        shown += "\\x" + hex(UInt32(lead), width: 2)
        rest = rest.dropFirst()
      }
    }
    return shown
  }

  private static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0..<0x09, 0x0A..<0x20, 0x7F...0x9F, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
    default: return false
    }
  }

  private static func append(_ scalar: Unicode.Scalar, to shown: inout String) {
    guard needsEscape(scalar) else {
      shown.unicodeScalars.append(scalar)
      return
    }
    shown += scalar.value < 0x80 ? "\\x" + hex(scalar.value, width: 2) : "\\u{" + hex(scalar.value, width: 4) + "}"
  }

  private static func hex(_ value: UInt32, width: Int) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: max(0, width - digits.count)) + digits
  }
}
