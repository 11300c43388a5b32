import Foundation

/// One blob's content, as `VersionStore.forEachBlob` hands it over: already read, or read when asked.
public struct StoredBlob: Sendable {
  let store: any VersionStore
  let digest: SHA256Hex
  let whole: Data?

  /// Hands the content to `body` a piece at a time (at most a chunk in memory for a large blob).
  public func read(_ body: (UnsafeRawBufferPointer) throws -> Void) async throws {
    if let whole {
      try whole.withUnsafeBytes { try body($0) }
    } else {
      try await store.readBlob(digest, body)
    }
  }
}

extension VersionStore {
  /// Reads the blobs of `blobs` in their order for `body`: small ones a batch at a time in one read of
  /// the store, the next batch read (and decompressed) while `body` handles this one, so a checkout
  /// or export of many small files is not one store round trip each. A large blob is streamed.
  ///
  /// Memory stays at two batches: `bytesPerBatch` each by the sizes given, and never more than the
  /// store's `readBlobs` holds, whatever the sizes say.
  public func forEachBlob(
    _ blobs: [(sha256: SHA256Hex, size: Int64)], _ body: (Int, StoredBlob) async throws -> Void
  ) async throws {
    let batches = BlobBatches(sizes: blobs.map(\.size))
    try await withThrowingTaskGroup(of: [Data?].self) { group in
      func read(_ batch: Int) {
        let range = batches.ranges[batch]
        guard !batches.isStreamed(range) else { return group.addTask { [nil] } }
        let digests = range.map { blobs[$0].sha256 }
        group.addTask { try await self.readBlobs(digests) }
      }
      var batch = 0
      if !batches.ranges.isEmpty { read(0) }
      // One read in flight at a time: results come back in order.
      while let contents = try await group.next() {
        let range = batches.ranges[batch]
        guard contents.count == range.count else {
          throw OperationError(
            .internal, "the store gave \(contents.count) contents for \(range.count) blobs asked for", hint: .runCheck)
        }
        batch += 1
        if batch < batches.ranges.count { read(batch) }
        for (index, whole) in zip(range, contents) {
          try await body(index, StoredBlob(store: self, digest: blobs[index].sha256, whole: whole))
        }
      }
    }
  }
}

/// Consecutive runs of blobs read together: up to `bytesPerBatch` and `blobsPerBatch`, a blob larger
/// than `largestBatched` alone (and streamed).
struct BlobBatches {
  static let bytesPerBatch: Int64 = 4 << 20
  static let blobsPerBatch = 512
  static let largestBatched: Int64 = 1 << 20

  private(set) var ranges: [Range<Int>] = []
  private let sizes: [Int64]

  /// Whether `range` is one blob too large to read whole.
  func isStreamed(_ range: Range<Int>) -> Bool {
    range.count == 1 && sizes[range.lowerBound] > Self.largestBatched
  }

  init(sizes: [Int64]) {
    self.sizes = sizes
    var start = 0
    var bytes: Int64 = 0
    for (index, size) in sizes.enumerated() {
      let alone = size > Self.largestBatched
      let full = bytes + size > Self.bytesPerBatch || index - start >= Self.blobsPerBatch
      if index > start && (alone || full) {
        ranges.append(start..<index)
        (start, bytes) = (index, 0)
      }
      if alone {
        ranges.append(index..<index + 1)
        start = index + 1
      } else {
        bytes += size
      }
    }
    if start < sizes.count { ranges.append(start..<sizes.count) }
  }
}
