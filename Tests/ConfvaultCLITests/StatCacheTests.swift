import ConfvaultCore
import Foundation
import Testing

/// Push and status read only the files whose status changed since the folder was last read, and
/// never miss a change, even one made within the same second as the previous push.
@Suite struct StatCacheTests {
  private struct Setup {
    let folder: TemporaryFolder
    let environment: [String: String]

    init() throws {
      folder = try TemporaryFolder()
      environment = [
        "CONFVAULT_STORE": folder.file("store"), "CONFVAULT_APP": "shop", "XDG_CACHE_HOME": folder.file("cache"),
      ]
      let created = try Harness.confvault(
        ["init", "--app", "shop", "--env", "dev", "--no-production", "-q"], environment: environment)
      #expect(created.status == 0, "\(created)")
      for index in 0..<200 { try folder.write("tree/part-\(index % 4)/file-\(index).yaml", "value: \(index)\n") }
    }

    /// Pushes the tree with --verbose; returns how many files the push read, and its outcome.
    func push() throws -> (read: Int?, outcome: Outcome) {
      let outcome = try Harness.confvault(
        ["push", folder.file("tree"), "--env", "dev", "--verbose", "-q", "--json"], environment: environment)
      #expect(outcome.status == 0, "\(outcome)")
      let line = outcome.stderr.split(separator: "\n").first { $0.contains("folder read through the stat cache") }
      return (line?.firstMatch(of: /read=(\d+)\s/).flatMap { Int($0.1) }, outcome)
    }

    func content(_ path: String, version: String) throws -> String {
      let shown = try Harness.confvault(
        ["export", "--version", version, "-o", folder.file("v\(version).tar")], environment: environment)
      #expect(shown.status == 0, "\(shown)")
      return try Harness.shell("tar -xOf '\(folder.file("v\(version).tar"))' 'config/\(path)'").stdout
    }
  }

  @Test("a change within the same second as the previous push, size and mtime kept, is pushed")
  func sameSecond() throws {
    let setup = try Setup()
    #expect(try setup.push().read == 200)
    let file = setup.folder.file("tree/part-1/file-1.yaml")
    for round in 0..<3 {
      // Same size, and the modification time put back to the nanosecond: only the content and the
      // ctime differ, as a change within one timestamp granule of a coarse file system would.
      let changed = try Harness.shell(
        """
        python3 -c "import os,sys; p=sys.argv[1]; s=os.stat(p); open(p,'w').write('value: X\(round)\\n'); \
        os.utime(p, ns=(s.st_atime_ns, s.st_mtime_ns))" '\(file)'
        """)
      #expect(changed.status == 0, "\(changed)")
      let pushed = try setup.push()
      #expect(pushed.outcome.stdout.contains("\"version\""), "round \(round): a new version, \(pushed.outcome)")
      #expect(try setup.content("part-1/file-1.yaml", version: "\(round + 2)") == "value: X\(round)\n")
    }
  }

  @Test("files unchanged since the last push are not read again; a damaged cache is passed over, not trusted")
  func readsOnlyChanges() throws {
    let setup = try Setup()
    // Older than the racy window, so that the first push may keep every file in the cache.
    Thread.sleep(forTimeInterval: 4.2)
    #expect(try setup.push().read == 200)
    #expect(try setup.push().read == 0, "nothing changed: nothing read")
    try setup.folder.write("tree/part-2/file-2.yaml", "value: two\n")
    let pushed = try setup.push()
    #expect(pushed.read == 1 && pushed.outcome.stdout.contains("\"number\" : 2"), "\(pushed.outcome)")

    let caches = try FileManager.default.contentsOfDirectory(atPath: setup.folder.file("cache/confvault/stat"))
    #expect(caches.count == 1)
    try Data("confvault stat cache 1\n\u{7}garbage".utf8).write(
      to: URL(fileURLWithPath: setup.folder.file("cache/confvault/stat/" + caches[0])))
    try setup.folder.write("tree/part-3/file-3.yaml", "value: three\n")
    let afterDamage = try setup.push()
    #expect(afterDamage.read == 200 && afterDamage.outcome.stdout.contains("\"number\" : 3"), "\(afterDamage.outcome)")
    #expect(try setup.content("part-3/file-3.yaml", version: "3") == "value: three\n")

    // Status shares the cache: only the files changed just before the last pushes (racy, seconds
    // ago) are read again.
    let status = try Harness.confvault(
      ["status", "--env", "dev", setup.folder.file("tree"), "--verbose"], environment: setup.environment)
    let read = status.stderr.firstMatch(of: /read=(\d+)\s/).flatMap { Int($0.1) }
    #expect((1...2).contains(read ?? -1) && status.stdout.contains("would change nothing"), "\(status)")
  }

  @Test("the cache is used on a local file system, and not for a folder whose file system cannot be examined")
  func trustedFileSystems() throws {
    let folder = try TemporaryFolder()
    #expect(StatCache.canTrust(folder: folder.path))
    #expect(!StatCache.canTrust(folder: folder.file("missing")))
  }
}
