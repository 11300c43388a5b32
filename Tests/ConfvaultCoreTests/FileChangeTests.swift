import Foundation
import Testing

@testable import ConfvaultCore

/// A file change keeps its two sides without their paths; what it gives back and what it prints
/// as JSON are still two whole file records, or `null`.
@Suite struct FileChangeTests {
  static let before = ManifestFile(
    path: "conf/app.yaml", size: 12, mode: .regular, sha256: SHA256Hex(String(repeating: "a", count: 64))!)
  static let after = ManifestFile(
    path: "conf/app.yaml", size: 4_000_000_000, mode: .executable, sha256: SHA256Hex(String(repeating: "b", count: 64))!
  )

  @Test func sidesComeBackWhole() throws {
    let modified = try #require(FileChange(path: "conf/app.yaml", old: Self.before, new: Self.after))
    #expect(modified.kind == .modified && modified.old == Self.before && modified.new == Self.after)
    let added = try #require(FileChange(path: "conf/app.yaml", old: nil, new: Self.after))
    #expect(added.kind == .added && added.old == nil && added.new == Self.after)
    let removed = try #require(FileChange(path: "conf/app.yaml", old: Self.before, new: nil))
    #expect(removed.kind == .removed && removed.old == Self.before && removed.new == nil)
    var modeOnly = Self.before
    modeOnly.mode = .executable
    #expect(FileChange(path: "conf/app.yaml", old: Self.before, new: modeOnly)?.kind == .modeChanged)
    #expect(FileChange(path: "conf/app.yaml", old: Self.before, new: Self.before) == nil)

    // A side set to nil is gone, and one set again is the new one.
    var change = modified
    change.old = nil
    #expect(change.old == nil && change.new == Self.after && change != modified)
    change.old = Self.before
    #expect(change == modified)
  }

  @Test func json() throws {
    let added = try #require(FileChange(path: "conf/app.yaml", old: nil, new: Self.after))
    let object = try #require(
      try JSONSerialization.jsonObject(with: JSONEncoder().encode(added)) as? [String: Any])
    #expect(
      object["old"] is NSNull && object["kind"] as? String == "added" && object["path"] as? String == "conf/app.yaml")
    let new = try #require(object["new"] as? [String: Any])
    #expect(new["path"] as? String == "conf/app.yaml" && new["size"] as? Int == 4_000_000_000)
    #expect(new["mode"] as? String == "0755" && new["sha256"] as? String == String(repeating: "b", count: 64))

    let modified = try #require(FileChange(path: "conf/app.yaml", old: Self.before, new: Self.after))
    for change in [added, modified] {
      #expect(try JSONDecoder().decode(FileChange.self, from: JSONEncoder().encode(change)) == change)
    }
    // A missing side reads as none, as an explicit null does.
    let missing = Data(
      #"{"path":"x","kind":"removed","old":{"path":"x","size":1,"mode":"0644","sha256":"\#(String(repeating: "c", count: 64))"}}"#
        .utf8)
    let decoded = try JSONDecoder().decode(FileChange.self, from: missing)
    #expect(decoded.new == nil && decoded.old?.size == 1 && decoded.old?.path == "x")
  }

  /// What a list of 100,000 changes costs per change: less than the two whole file records it held.
  @Test func compact() {
    #expect(MemoryLayout<FileChange>.stride <= 104)
    #expect(MemoryLayout<FileChange>.stride < MemoryLayout<String>.stride + 2 * MemoryLayout<ManifestFile>.stride)
  }
}
