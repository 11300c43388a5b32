import Foundation
import Testing

@testable import ConfvaultCore

/// Temporary files: which names are confvault's, and which of them a dead process left.
@Suite struct TemporaryFilesTests {
  @Test(
    "a temporary's name gives its process id; other names give none",
    arguments: [
      (".x.tar.gz.tmp-4194305-1", 4_194_305), (".a.tmp-b.tmp-12-345", 12), (".inventory.tmp-7-0", 7),
      ("x.tar.gz.tmp-12-1", nil), (".tmp-12-1", nil), (".x.tmp-12", nil), (".x.tmp-12-", nil),
      (".x.tmp-12-1-2", nil), (".x.tmp-a-1", nil), (".x.tmp-0-1", nil), (".x.tmp-+1-1", nil), ("12-345", nil),
    ] as [(String, Int32?)])
  func owner(name: String, pid: Int32?) {
    #expect(TemporaryFiles.owner(ofTemporary: name) == pid)
  }

  @Test("removeStale removes a dead process's temporary files and folders, never a running one's")
  func removeStale() throws {
    var template = Array((NSTemporaryDirectory() + "/confvault-tmp-test-XXXXXX").utf8CString)
    let folder = String(cString: try #require(mkdtemp(&template)))
    defer { try? FileManager.default.removeItem(atPath: folder) }
    // 4194305 is above Linux's largest pid (2^22), so no process has it.
    let dead = [".x.tar.gz.tmp-4194305-1", ".folder.tmp-4194305-2"]
    let kept = [".x.tar.gz.tmp-\(getpid())-1", ".x.tar.gz.tmp-1-1", "x.tar.gz", ".x.tar.gz.tmp-4194305"]
    for name in [dead[0]] + kept {
      #expect(FileManager.default.createFile(atPath: folder + "/" + name, contents: Data("x".utf8)))
    }
    try FileManager.default.createDirectory(atPath: folder + "/" + dead[1] + "/sub", withIntermediateDirectories: true)
    #expect(TemporaryFiles.removeStale(in: folder) == 2)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).sorted() == kept.sorted())
  }

  @Test("an AtomicFile removes stale temporaries beside it, and its own once discarded")
  func atomicFile() throws {
    var template = Array((NSTemporaryDirectory() + "/confvault-tmp-test-XXXXXX").utf8CString)
    let folder = String(cString: try #require(mkdtemp(&template)))
    defer { try? FileManager.default.removeItem(atPath: folder) }
    #expect(FileManager.default.createFile(atPath: folder + "/.old.tmp-4194305-9", contents: nil))
    let file = try AtomicFile(path: folder + "/new", replaceExisting: false)
    let listing = try FileManager.default.contentsOfDirectory(atPath: folder)
    #expect(listing.count == 1 && listing[0].hasPrefix(".new.tmp-\(getpid())-"), "\(listing)")
    file.discard()
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
  }
}
