import Foundation

/// A JSON or YAML document as a tree of values, compared key by key; encoded as the JSON value it is.
public enum TreeValue: Sendable, Hashable, Codable {
  case null
  case bool(Bool)
  case integer(Int64)
  case number(Double)
  case string(String)
  case array([TreeValue])
  case object([String: TreeValue])

  public init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if container.decodeNil() {
      self = .null
    } else if let value = try? container.decode(Bool.self) {
      self = .bool(value)
    } else if let value = try? container.decode(Int64.self) {
      self = .integer(value)
    } else if let value = try? container.decode(Double.self) {
      self = .number(value)
    } else if let value = try? container.decode(String.self) {
      self = .string(value)
    } else if let value = try? container.decode([TreeValue].self) {
      self = .array(value)
    } else {
      self = .object(try container.decode([String: TreeValue].self))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .null: try container.encodeNil()
    case .bool(let value): try container.encode(value)
    case .integer(let value): try container.encode(value)
    case .number(let value): try container.encode(value)
    case .string(let value): try container.encode(value)
    case .array(let values): try container.encode(values)
    case .object(let values): try container.encode(values)
    }
  }

  /// Compact JSON with sorted keys and unescaped slashes, as values are shown in diffs.
  public var json: String {
    var text = ""
    write(to: &text)
    return text
  }

  /// Compact JSON cut after about `limit` characters, with a marker saying how much was left out.
  public func json(limit: Int) -> String {
    Self.shorten(json, limit: limit)
  }

  /// `text` cut after `limit` characters, marked `…(+N characters)` when cut.
  public static func shorten(_ text: String, limit: Int) -> String {
    guard text.utf8.count > limit else { return text }
    let count = text.count
    guard count > limit else { return text }
    return String(text.prefix(limit)) + "…(+\(count - limit) characters)"
  }

  private func write(to text: inout String) {
    switch self {
    case .null: text += "null"
    case .bool(let value): text += value ? "true" : "false"
    case .integer(let value): text += String(value)
    case .number(let value):
      text += value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) + ".0" : "\(value)"
    case .string(let value): Self.quote(value, into: &text)
    case .array(let values):
      text += "["
      for (index, value) in values.enumerated() {
        if index > 0 { text += "," }
        value.write(to: &text)
      }
      text += "]"
    case .object(let values):
      text += "{"
      for (index, key) in values.keys.sorted().enumerated() {
        if index > 0 { text += "," }
        Self.quote(key, into: &text)
        text += ":"
        values[key]!.write(to: &text)
      }
      text += "}"
    }
  }

  /// `value` as a JSON string literal, slashes left as they are.
  static func quote(_ value: String, into text: inout String) {
    text += "\""
    for scalar in value.unicodeScalars {
      switch scalar {
      case "\"": text += "\\\""
      case "\\": text += "\\\\"
      case "\n": text += "\\n"
      case "\r": text += "\\r"
      case "\t": text += "\\t"
      case let scalar where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default: text.unicodeScalars.append(scalar)
      }
    }
    text += "\""
  }

  static func quoted(_ value: String) -> String {
    var text = ""
    quote(value, into: &text)
    return text
  }

  /// Whether the value is a string of more than one line.
  var isMultilineString: Bool {
    if case .string(let value) = self { return value.contains("\n") }
    return false
  }
}
