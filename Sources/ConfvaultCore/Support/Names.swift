/// The naming rule of apps and environments: `[a-z0-9][a-z0-9._-]{0,63}`.
public enum Name {
  /// Checks `name` against the rule.
  ///
  /// - Parameter what: "app" or "environment", for the message.
  /// - Throws: `OperationError` of kind `.usage` that states the rule.
  public static func validate(_ name: String, as what: String) throws {
    let bytes = Array(name.utf8)
    func allowedFirst(_ byte: UInt8) -> Bool {
      (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
    }
    func allowed(_ byte: UInt8) -> Bool {
      allowedFirst(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
        || byte == UInt8(ascii: "-")
    }
    guard let first = bytes.first, allowedFirst(first), bytes.count <= 64,
      bytes.dropFirst().allSatisfy(allowed)
    else {
      throw OperationError(
        .usage,
        "\(what) name `\(name)` is not allowed: use 1 to 64 of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit"
      )
    }
  }
}
