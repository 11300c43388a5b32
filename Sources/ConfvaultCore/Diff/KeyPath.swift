/// Key paths that cannot be misread (docs/diff.md): `spec.replicas`, `metadata.labels["app.kubernetes.io/version"]`,
/// `args[2]`, `containers[name="grafana"].image`.
///
/// A key made only of ASCII letters, digits, `_` and `-`, not starting with a digit or `-`, follows a
/// dot; any other key (dots, slashes, spaces, an empty key, …) is a JSON string in brackets. An
/// array element is `[index]`, or `[field=value]` when the array's elements carry an identity.
enum KeyPath {
  /// The path of the whole document.
  static let root = "(document)"

  static func appending(key: String, to path: String) -> String {
    if isPlain(key) { return path.isEmpty ? key : path + "." + key }
    return path + "[" + TreeValue.quoted(key) + "]"
  }

  static func appending(index: Int, to path: String) -> String {
    path + "[\(index)]"
  }

  /// An element named by the value of its identity field: `[name="grafana"]`, `[id=7]`.
  static func appending(identity field: String, value: TreeValue, to path: String) -> String {
    path + "[" + field + "=" + value.json + "]"
  }

  static func shown(_ path: String) -> String { path.isEmpty ? root : path }

  private static func isPlain(_ key: String) -> Bool {
    guard let first = key.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first),
      first != UInt8(ascii: "-")
    else { return false }
    return key.utf8.allSatisfy { byte in
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
        return true
      default: return false
      }
    }
  }
}
