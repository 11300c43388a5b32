/// A bounded diff of two sequences of lines (or of any elements reduced to numbers).
///
/// Common lines at both ends are set aside first, then lines that occur exactly once on each side
/// anchor the rest (patience diff), and Myers's linear-space algorithm aligns what lies between the
/// anchors. Regions with no line in common are a deletion and an insertion at once. Work is counted;
/// past `budget` steps the diff gives up rather than run for minutes on a pathological input.
struct LineDiff {
  enum Mark: Character {
    case equal = " "
    case delete = "-"
    case insert = "+"
  }

  /// One step of the edit script: a line kept, deleted from the old side or inserted from the new one.
  struct Step: Equatable {
    var mark: Mark
    /// The line's index on the old side (for an insertion: the old line it comes before).
    var old: Int
    /// The line's index on the new side (for a deletion: the new line it comes before).
    var new: Int
  }

  /// The diff took more steps than its budget allowed.
  struct TooLarge: Error {}

  /// The work allowed by default: a few times a large file's lines.
  static let defaultBudget = 40_000_000

  private let a: [Int]
  private let b: [Int]
  private var budget: Int
  private var steps: [Step] = []

  /// The edit script from `old` to `new`.
  ///
  /// - Throws: `TooLarge` when the alignment needs more than `budget` steps of work.
  static func script(_ old: [Int], _ new: [Int]) throws -> [Step] {
    var budget = defaultBudget
    return try script(old, new, budget: &budget)
  }

  /// The edit script from `old` to `new`, spending from `budget` (what is left stays in it).
  static func script(_ old: [Int], _ new: [Int], budget: inout Int) throws -> [Step] {
    var diff = LineDiff(a: old, b: new, budget: budget)
    diff.steps.reserveCapacity(max(old.count, new.count))
    defer { budget = diff.budget }
    try diff.align(0, old.count, 0, new.count, anchored: true)
    return diff.steps
  }

  private init(a: [Int], b: [Int], budget: Int) {
    self.a = a
    self.b = b
    self.budget = budget
  }

  private mutating func spend(_ work: Int) throws {
    budget -= work
    if budget < 0 { throw TooLarge() }
  }

  private mutating func emit(_ mark: Mark, _ old: Int, _ new: Int) {
    steps.append(Step(mark: mark, old: old, new: new))
  }

  /// Aligns `a[aLow..<aHigh]` with `b[bLow..<bHigh]`, appending the steps in order.
  ///
  /// - Parameter anchored: look for unique lines to anchor on first; the halves Myers's algorithm
  ///   splits a region into are aligned by it alone, which keeps its result minimal.
  private mutating func align(_ aLow: Int, _ aHigh: Int, _ bLow: Int, _ bHigh: Int, anchored: Bool) throws {
    var (aLow, bLow, aHigh, bHigh) = (aLow, bLow, aHigh, bHigh)
    while aLow < aHigh && bLow < bHigh && a[aLow] == b[bLow] {
      emit(.equal, aLow, bLow)
      aLow += 1
      bLow += 1
    }
    var suffix = 0
    while aLow < aHigh - suffix && bLow < bHigh - suffix && a[aHigh - suffix - 1] == b[bHigh - suffix - 1] {
      suffix += 1
    }
    aHigh -= suffix
    bHigh -= suffix
    try spend(aHigh - aLow + bHigh - bLow + 1)
    if aLow == aHigh || bLow == bHigh || !shareALine(aLow, aHigh, bLow, bHigh) {
      for index in aLow..<aHigh { emit(.delete, index, bLow) }
      for index in bLow..<bHigh { emit(.insert, aHigh, index) }
    } else {
      let anchors = anchored ? uniqueAnchors(aLow, aHigh, bLow, bHigh) : []
      if anchors.isEmpty {
        try bisect(aLow, aHigh, bLow, bHigh)
      } else {
        var (x, y) = (aLow, bLow)
        for (i, j) in anchors {
          try align(x, i, y, j, anchored: true)
          emit(.equal, i, j)
          (x, y) = (i + 1, j + 1)
        }
        try align(x, aHigh, y, bHigh, anchored: true)
      }
    }
    for offset in 0..<suffix { emit(.equal, aHigh + offset, bHigh + offset) }
  }

  private func shareALine(_ aLow: Int, _ aHigh: Int, _ bLow: Int, _ bHigh: Int) -> Bool {
    let old = Set(a[aLow..<aHigh])
    return b[bLow..<bHigh].contains(where: old.contains)
  }

  /// Lines that occur once in each range, paired, longest increasing run of them (by position in both).
  private func uniqueAnchors(_ aLow: Int, _ aHigh: Int, _ bLow: Int, _ bHigh: Int) -> [(Int, Int)] {
    var counts: [Int: (old: Int, new: Int, at: Int)] = [:]
    for index in aLow..<aHigh { counts[a[index], default: (0, 0, 0)].old += 1 }
    for index in bLow..<bHigh where counts[b[index]] != nil {
      counts[b[index]]!.new += 1
      counts[b[index]]!.at = index
    }
    var pairs: [(Int, Int)] = []
    for index in aLow..<aHigh {
      if let count = counts[a[index]], count.old == 1, count.new == 1 { pairs.append((index, count.at)) }
    }
    guard !pairs.isEmpty else { return [] }
    // Longest increasing subsequence of the new positions (patience sorting), O(n log n).
    var tails: [Int] = []
    var previous = [Int](repeating: -1, count: pairs.count)
    for (position, pair) in pairs.enumerated() {
      let low = tails.partitionPoint { pairs[$0].1 < pair.1 }
      if low > 0 { previous[position] = tails[low - 1] }
      if low == tails.count { tails.append(position) } else { tails[low] = position }
    }
    var chain: [(Int, Int)] = []
    var position = tails.last ?? -1
    while position >= 0 {
      chain.append(pairs[position])
      position = previous[position]
    }
    return chain.reversed()
  }

  /// Myers's middle snake (as in diff-match-patch's `bisect`): splits the problem where the forward and
  /// backward searches meet, in linear space.
  private mutating func bisect(_ aLow: Int, _ aHigh: Int, _ bLow: Int, _ bHigh: Int) throws {
    let n = aHigh - aLow
    let m = bHigh - bLow
    let maxD = (n + m + 1) / 2
    let offset = maxD
    let length = 2 * maxD + 2
    var forward = [Int](repeating: -1, count: length)
    var backward = [Int](repeating: -1, count: length)
    forward[offset + 1] = 0
    backward[offset + 1] = 0
    let delta = n - m
    let front = delta % 2 != 0
    var (k1start, k1end, k2start, k2end) = (0, 0, 0, 0)
    for d in 0..<maxD {
      try spend(2 * d + 2)
      var k1 = -d + k1start
      while k1 <= d - k1end {
        let k1Offset = offset + k1
        var x1 =
          k1 == -d || (k1 != d && forward[k1Offset - 1] < forward[k1Offset + 1])
          ? forward[k1Offset + 1] : forward[k1Offset - 1] + 1
        var y1 = x1 - k1
        while x1 < n && y1 < m && a[aLow + x1] == b[bLow + y1] {
          x1 += 1
          y1 += 1
        }
        forward[k1Offset] = x1
        if x1 > n {
          k1end += 2
        } else if y1 > m {
          k1start += 2
        } else if front {
          let k2Offset = offset + delta - k1
          if k2Offset >= 0 && k2Offset < length && backward[k2Offset] != -1 && x1 >= n - backward[k2Offset] {
            return try split(aLow, aHigh, bLow, bHigh, x1, y1)
          }
        }
        k1 += 2
      }
      var k2 = -d + k2start
      while k2 <= d - k2end {
        let k2Offset = offset + k2
        var x2 =
          k2 == -d || (k2 != d && backward[k2Offset - 1] < backward[k2Offset + 1])
          ? backward[k2Offset + 1] : backward[k2Offset - 1] + 1
        var y2 = x2 - k2
        while x2 < n && y2 < m && a[aHigh - x2 - 1] == b[bHigh - y2 - 1] {
          x2 += 1
          y2 += 1
        }
        backward[k2Offset] = x2
        if x2 > n {
          k2end += 2
        } else if y2 > m {
          k2start += 2
        } else if !front {
          let k1Offset = offset + delta - k2
          if k1Offset >= 0 && k1Offset < length && forward[k1Offset] != -1 {
            let x1 = forward[k1Offset]
            let y1 = offset + x1 - k1Offset
            if x1 >= n - x2 { return try split(aLow, aHigh, bLow, bHigh, x1, y1) }
          }
        }
        k2 += 2
      }
    }
    for index in aLow..<aHigh { emit(.delete, index, bLow) }
    for index in bLow..<bHigh { emit(.insert, aHigh, index) }
  }

  private mutating func split(_ aLow: Int, _ aHigh: Int, _ bLow: Int, _ bHigh: Int, _ x: Int, _ y: Int) throws {
    try align(aLow, aLow + x, bLow, bLow + y, anchored: false)
    try align(aLow + x, aHigh, bLow + y, bHigh, anchored: false)
  }
}

/// Unified-diff hunks over lines.
enum UnifiedHunks {
  /// The hunks of `script` over `old` and `new`, with `context` unchanged lines around each change.
  static func lines(_ script: [LineDiff.Step], old: [String], new: [String], context: Int = 3) -> [String] {
    var output: [String] = []
    var index = 0
    while index < script.count {
      guard script[index].mark != .equal else {
        index += 1
        continue
      }
      let start = max(0, index - context)
      var lastChange = index
      var end = index + 1
      while end < script.count && end - lastChange <= 2 * context {
        if script[end].mark != .equal { lastChange = end }
        end += 1
      }
      end = min(script.count, lastChange + context + 1)
      let hunk = script[start..<end]
      let oldCount = hunk.count { $0.mark != .insert }
      let newCount = hunk.count { $0.mark != .delete }
      let first = hunk.first!
      let oldStart = oldCount == 0 ? first.old : first.old + 1
      let newStart = newCount == 0 ? first.new : first.new + 1
      output.append("@@ -\(oldStart),\(oldCount) +\(newStart),\(newCount) @@")
      for step in hunk {
        output.append(String(step.mark.rawValue) + (step.mark == .insert ? new[step.new] : old[step.old]))
      }
      index = end
    }
    return output
  }
}
