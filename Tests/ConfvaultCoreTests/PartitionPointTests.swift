import Testing

@testable import ConfvaultCore

/// The search by halves that sorted lists of paths, sizes and chunk rows are searched with.
@Suite struct PartitionPointTests {
  @Test("the first index not before a value, from any start, is the one a scan finds; the end when there is none")
  func againstScan() {
    var random = SystemRandomNumberGenerator()
    for count in [0, 1, 2, 3, 7, 64, 257] {
      let sorted = (0..<count).map { _ in Int.random(in: 0..<40, using: &random) }.sorted()
      for start in Set([0, count / 2, count]) {
        for sought in -1...41 {
          let scanned = sorted[start...].firstIndex { $0 >= sought } ?? count
          #expect(sorted.partitionPoint(from: start) { $0 < sought } == scanned, "\(sorted) from \(start), \(sought)")
        }
      }
    }
    #expect([1, 2, 3].partitionPoint { _ in true } == 3)
    #expect([1, 2, 3].partitionPoint { _ in false } == 0)
  }
}
