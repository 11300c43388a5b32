import ConfvaultCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Uploaded archives, checked and previewed, waiting for their apply.
///
/// Each is a file in the store's staging folder; it is removed when applied, cancelled or expired.
/// An apply's `Idempotency-Key` is remembered with its response, so a retried apply answers the same.
actor UploadRegistry {
  struct Upload: Sendable {
    var id: String
    var app: String
    var environment: String
    var path: String
    /// What the upload is called in the version's comment and the audit log.
    var name: String
    /// Read as an ordinary tar of a folder, without a manifest.
    var plain: Bool
    var preview: Vault.Preview
    var author: String
    var expiresAt: Date
  }

  private var uploads: [String: Upload] = [:]
  /// Uploads being applied now: one apply per upload at a time.
  private var applying: Set<String> = []
  private var replies: [String: (status: Int, body: Data, etag: String?, expiresAt: Date)] = [:]
  let folder: String

  init(folder: String) { self.folder = folder }

  func add(_ upload: Upload) {
    uploads[upload.id] = upload
  }

  func upload(_ id: String, now: Date) -> Upload? {
    expire(now: now)
    return uploads[id]
  }

  /// Marks `id` as being applied; false when another apply of it runs.
  func claim(_ id: String) -> Bool {
    applying.insert(id).inserted
  }

  func release(_ id: String) {
    applying.remove(id)
  }

  func remove(_ id: String) {
    if let upload = uploads.removeValue(forKey: id) { unlink(upload.path) }
  }

  func reply(for key: String, now: Date) -> (status: Int, body: Data, etag: String?)? {
    expire(now: now)
    return replies[key].map { ($0.status, $0.body, $0.etag) }
  }

  /// Remembers an apply's reply for a day, for a client that retries with the same key.
  func remember(_ reply: (status: Int, body: Data, etag: String?), for key: String, now: Date) {
    replies[key] = (reply.status, reply.body, reply.etag, now.addingTimeInterval(86_400))
  }

  private func expire(now: Date) {
    for (id, upload) in uploads where upload.expiresAt < now { remove(id) }
    for (key, reply) in replies where reply.expiresAt < now { replies[key] = nil }
  }
}

/// Streams a request body to a spool file, counting as it comes, so memory stays at one buffer:
/// refused past `limit` (413) and cut off when slower than `minimumRate` after `grace` (408).
enum UploadSpool {
  static func write(
    _ body: RequestBody, to path: String, limit: Int64, minimumRate: Int, grace: TimeInterval
  ) async throws -> Int64 {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else { throw SystemError(.create, path) }
    defer { close(fd) }
    let sink = FileDescriptorSink(fd: fd, name: path)
    let started = Date()
    var received: Int64 = 0
    for try await buffer in body {
      received += Int64(buffer.readableBytes)
      guard received <= limit else {
        throw Problem(
          .contentTooLarge, type: "too-large", detail: "the upload is over the limit of \(limit) bytes")
      }
      try buffer.withUnsafeReadableBytes { try sink.write($0) }
      let elapsed = Date().timeIntervalSince(started)
      if elapsed > grace && Double(received) / elapsed < Double(minimumRate) {
        throw Problem(
          .requestTimeout, type: "too-slow",
          detail: "the upload arrives slower than \(minimumRate) bytes a second; it was cut off")
      }
    }
    return received
  }
}
