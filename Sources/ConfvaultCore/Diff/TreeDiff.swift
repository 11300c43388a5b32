/// The key-path changes between two documents.
///
/// Objects are compared key by key. Arrays are compared element by element: by identity when every
/// element on both sides is an object with a distinct `name`, `id` or `key` (as Kubernetes and most
/// app builders key their lists), otherwise along a longest common subsequence, so an inserted element
/// reads as one insertion; a run of removed elements facing a run of inserted ones is compared pair
/// by pair. Strings of several lines carry a text diff of their lines.
struct TreeDiff {
  /// The fields that name an array's elements, in order of preference.
  static let identityFields = ["name", "id", "key"]

  private var budget: Int
  private var changes: [KeyChange] = []

  /// The changes from `old` to `new`, in key order.
  static func changes(_ old: TreeValue, _ new: TreeValue, budget: Int = LineDiff.defaultBudget) -> [KeyChange] {
    var diff = TreeDiff(budget: budget)
    diff.compare(old, new, path: "")
    return diff.changes
  }

  private init(budget: Int) { self.budget = budget }

  private mutating func compare(_ old: TreeValue, _ new: TreeValue, path: String) {
    switch (old, new) {
    case (.object(let a), .object(let b)):
      for key in Set(a.keys).union(b.keys).sorted() {
        switch (a[key], b[key]) {
        // A value the same on both sides changes nothing: a scalar is compared here, with no path made.
        case (let x?, let y?) where x.isScalar && x == y: continue
        case (let x?, let y?): compare(x, y, path: KeyPath.appending(key: key, to: path))
        case (let x?, nil): changes.append(KeyChange(path: KeyPath.appending(key: key, to: path), old: x, new: nil))
        case (nil, let y?): changes.append(KeyChange(path: KeyPath.appending(key: key, to: path), old: nil, new: y))
        case (nil, nil): break
        }
      }
    case (.array(let a), .array(let b)) where a != b:
      if let field = Self.identity(a, b) {
        compareByIdentity(a, b, field: field, path: path)
      } else {
        compareInSequence(a, b, path: path)
      }
    default:
      if old != new { changes.append(KeyChange(path: path, old: old, new: new)) }
    }
  }

  /// The field every element of both arrays is an object with, holding a string or integer that no
  /// other element of its array holds.
  static func identity(_ a: [TreeValue], _ b: [TreeValue]) -> String? {
    fields: for field in identityFields {
      for side in [a, b] {
        var seen = Set<TreeValue>()
        for element in side {
          guard case .object(let object) = element, let value = object[field], value.isIdentity,
            seen.insert(value).inserted
          else { continue fields }
        }
      }
      return field
    }
    return nil
  }

  private mutating func compareByIdentity(_ a: [TreeValue], _ b: [TreeValue], field: String, path: String) {
    func id(_ element: TreeValue) -> TreeValue {
      if case .object(let object) = element { return object[field]! }
      return .null
    }
    let old = Dictionary(a.map { (id($0), $0) }, uniquingKeysWith: { first, _ in first })
    let kept = Set(b.map(id))
    for element in b {
      let before = old[id(element)]
      if before == element { continue }  // unchanged: no path made, nothing walked
      let child = KeyPath.appending(identity: field, value: id(element), to: path)
      if let before {
        compare(before, element, path: child)
      } else {
        changes.append(KeyChange(path: child, old: nil, new: element))
      }
    }
    for element in a where !kept.contains(id(element)) {
      changes.append(
        KeyChange(path: KeyPath.appending(identity: field, value: id(element), to: path), old: element, new: nil))
    }
  }

  /// Removed elements are named by their old index, the others by their new one.
  private mutating func compareInSequence(_ a: [TreeValue], _ b: [TreeValue], path: String) {
    var ids: [TreeValue: Int] = [:]
    func intern(_ value: TreeValue) -> Int {
      if let id = ids[value] { return id }
      ids[value] = ids.count
      return ids.count - 1
    }
    let oldIDs = a.map(intern)
    let newIDs = b.map(intern)
    guard let script = try? LineDiff.script(oldIDs, newIDs, budget: &budget) else {
      changes.append(KeyChange(path: path, old: .array(a), new: .array(b)))
      return
    }
    var removed: [Int] = []
    var inserted: [Int] = []
    func flush() {
      for (old, new) in zip(removed, inserted) {
        compare(a[old], b[new], path: KeyPath.appending(index: new, to: path))
      }
      for old in removed.dropFirst(inserted.count) {
        changes.append(KeyChange(path: KeyPath.appending(index: old, to: path), old: a[old], new: nil))
      }
      for new in inserted.dropFirst(removed.count) {
        changes.append(KeyChange(path: KeyPath.appending(index: new, to: path), old: nil, new: b[new]))
      }
      removed = []
      inserted = []
    }
    for step in script {
      switch step.mark {
      case .equal: flush()
      case .delete: removed.append(step.old)
      case .insert: inserted.append(step.new)
      }
    }
    flush()
  }
}

extension TreeValue {
  /// Whether the value can name an array element: a string or an integer.
  /// Neither an object nor an array.
  fileprivate var isScalar: Bool {
    switch self {
    case .object, .array: return false
    default: return true
    }
  }

  fileprivate var isIdentity: Bool {
    switch self {
    case .string, .integer: return true
    default: return false
    }
  }
}
