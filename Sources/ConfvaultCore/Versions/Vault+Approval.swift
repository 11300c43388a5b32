import Foundation
import Logging

/// Asked with a change's preview before the change is made; throwing refuses it, and nothing is
/// written. It returns whether someone saw the preview: then the change is made against the head the
/// preview showed, so a head that moved while they read it is a conflict, not a change they did not
/// see; otherwise a moved head makes the change be decided again, as without an approval.
public typealias Approval = @Sendable (Vault.Preview) async throws -> Bool

extension Vault {
  /// The preview of adding `files` as `environment`'s new head, for a push's or an import's question
  /// and for `folderStatus`; `content` says where each new file's bytes are (a staged blob, or the
  /// file in a pushed folder).
  func approvalPreview(
    app: String, environment: String, files: [ManifestFile], content: (ManifestFile) -> BlobFile, logger: Logger
  ) async throws -> Preview {
    let head = try await store.app(app).environment(environment).head
    var old: [ManifestFile] = []
    if let head { old = try await store.files(app: app, number: head) }
    let changes = FileChange.between(old: old, new: files)
    // Key paths for the modified files, bounded in all as an upload's preview is.
    var budget: Int64 = 32 << 20
    var details: [FileDiff] = []
    for change in changes {
      guard change.kind == .modified, let before = change.old, let after = change.new,
        before.size <= ContentDiff.largestCompared, after.size <= ContentDiff.largestCompared, after.size <= budget
      else {
        details.append(FileDiff(change: change, detail: .sizes(old: change.old?.size, new: change.new?.size)))
        continue
      }
      budget -= after.size
      var oldBytes = Data()
      try await store.readBlob(before.sha256) { oldBytes.append(contentsOf: $0) }
      let source = content(after)
      let newBytes = try await offload { try Self.read(source) }
      details.append(ContentDiff.diff(change, oldBytes, newBytes))
    }
    logger.debug("preview made for approval", metadata: ["changes": "\(changes.count)"])
    return Preview(app: app, environment: environment, head: head, changes: changes, files: details)
  }

  /// The bytes of a staged blob.
  private static func read(_ blob: BlobFile) throws -> Data {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: blob.path))
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(blob.offset))
    return try handle.read(upToCount: Int(blob.size)) ?? Data()
  }
}
