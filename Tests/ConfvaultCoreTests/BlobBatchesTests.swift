import Testing

@testable import ConfvaultCore

/// How `forEachBlob` groups blobs into reads of the store.
@Suite struct BlobBatchesTests {
  @Test("every blob is in exactly one batch, in order; a batch stays under its bytes and count")
  func covers() {
    var sizes: [Int64] = []
    for index in 0..<3_000 { sizes.append(Int64((index * 7_919) % 40_000)) }
    sizes += [BlobBatches.largestBatched + 1, 5, BlobBatches.largestBatched, BlobBatches.largestBatched, 0]
    let batches = BlobBatches(sizes: sizes)
    #expect(batches.ranges.flatMap { Array($0) } == Array(sizes.indices))
    for range in batches.ranges {
      #expect(!range.isEmpty)
      #expect(range.count <= BlobBatches.blobsPerBatch)
      if !batches.isStreamed(range) {
        #expect(range.count == 1 || range.map { sizes[$0] }.reduce(0, +) <= BlobBatches.bytesPerBatch)
      }
    }
    let large = sizes.count - 5
    #expect(batches.ranges.contains(large..<large + 1) && batches.isStreamed(large..<large + 1))
    #expect(batches.ranges.filter { batches.isStreamed($0) }.count == 1, "a blob of exactly the limit is batched")
    #expect(batches.ranges.count < 3_005 / 100, "small blobs are read together")
  }

  @Test("no blobs, no batches; one large blob, one streamed batch")
  func edges() {
    #expect(BlobBatches(sizes: []).ranges.isEmpty)
    let one = BlobBatches(sizes: [BlobBatches.largestBatched * 3])
    #expect(one.ranges == [0..<1] && one.isStreamed(0..<1))
  }
}
