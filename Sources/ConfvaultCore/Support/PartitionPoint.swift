extension RandomAccessCollection where Index == Int {
  /// The first index from `start` whose element is not `before` what is sought, found by halves:
  /// the elements for which `before` holds must all come first (as in a sorted collection). The end
  /// index when every element is before.
  @inlinable
  public func partitionPoint(from start: Int? = nil, where before: (Element) throws -> Bool) rethrows -> Int {
    var (low, high) = (start ?? startIndex, endIndex)
    while low < high {
      let middle = low + (high - low) / 2
      if try before(self[middle]) { low = middle + 1 } else { high = middle }
    }
    return low
  }
}
