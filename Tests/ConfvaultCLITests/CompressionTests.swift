import Foundation
import Testing

/// The one compression layer an archive may have: every checksum verified, a second layer refused
/// at once, in bounded time and memory.
@Suite struct CompressionTests {
  /// Damaged compression (written by `archives.py damaged`): each file, whether it has a manifest.
  static let damaged: [(name: String, plain: Bool, detail: String)] = [
    ("gzip-bad-crc-plain", true, "gzip CRC-32 in the trailer does not match"),
    ("gzip-bad-length", false, "gzip length in the trailer does not match"),
    ("xz-bad-check", false, "xz: the data or its integrity check is damaged"),
    ("xz-bad-check-plain", true, "xz: the data or its integrity check is damaged"),
    ("zstd-bad-checksum", false, "zstd content checksum does not match"),
    ("zstd-bad-checksum-plain", true, "zstd content checksum does not match"),
  ]

  static let folder: String = {
    let path = NSTemporaryDirectory() + "/confvault-damaged-\(getpid())"
    _ = try? Harness.archives(["damaged", path])
    return path
  }()

  @Test(
    "a damaged gzip trailer, xz check or zstd checksum is refused, with a manifest and without",
    arguments: damaged.map(\.name))
  func damagedChecksums(name: String) throws {
    let (_, plain, detail) = Self.damaged.first { $0.name == name }!
    let archive = Self.folder + "/\(name).tar.gz"
    let verified = try Harness.confvault(["verify", archive] + (plain ? ["--plain"] : []))
    #expect(verified.status == 65, "\(verified)")
    #expect(verified.stderr.contains("compression checksum does not match (\(detail)"), "\(verified.stderr)")
    let store = try StoreFixture()
    let before = try store.snapshot()
    let imported = try store.run(
      ["import", archive, "--app", "inventory", "--env", "staging"] + (plain ? ["--plain"] : []))
    #expect(imported.status == 65 && imported.stderr.contains("compression checksum does not match"), "\(imported)")
    #expect(try store.snapshot() == before, "the store is as it was")
  }

  /// Runs `confvault verify` on `archive` under Python, which reports the exit status, the CPU
  /// seconds it took and the peak resident memory of the process (KiB).
  private func measuredVerify(_ archive: String) throws -> (status: Int, seconds: Double, peakKiB: Int) {
    let outcome = try Harness.run(
      "/usr/bin/env",
      [
        "python3", "-c",
        """
        import resource, subprocess, sys, time
        start = time.monotonic()
        done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        took = time.monotonic() - start
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time, not wall time: the work is what is bounded; other tests may hold the cores.
        print(done.returncode, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)
        """,
        Harness.binary, "verify", archive,
      ])
    let fields = outcome.stdout.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
    #expect(outcome.status == 0 && fields.count == 3, "\(outcome)")
    return (Int(fields[0]) ?? -1, Double(fields[1]) ?? .infinity, Int(fields[2]) ?? .max)
  }

  @Test("a gzip quine and a double gzip are refused in under a second with peak memory under 64 MiB")
  func nestedCompressionIsBounded() throws {
    for name in ["gzip-quine", "double-gzip", "gzip-in-xz"] {
      let archive = HostileArchiveTests.folder + "/\(name).tar.gz"
      let measured = try measuredVerify(archive)
      #expect(measured.status == 65, "\(name)")
      #expect(measured.seconds < 1, "\(name) took \(measured.seconds) s of CPU")
      #expect(measured.peakKiB < 64 << 10, "\(name) peaked at \(measured.peakKiB) KiB")
    }
    let quine = try Data(contentsOf: URL(fileURLWithPath: HostileArchiveTests.folder + "/gzip-quine.tar.gz"))
    let decompressed = try Harness.shell("gzip -dc < '\(HostileArchiveTests.folder)/gzip-quine.tar.gz'")
    #expect(decompressed.stdoutData == quine, "the fixture is a true quine: it decompresses to itself")
  }

  @Test("our zstd archives carry a content checksum, and every compression still reads back")
  func zstdChecksum() throws {
    let work = try TemporaryFolder()
    let archive = work.file("p.tar.zst")
    try Harness.confvault(["pack", Harness.samples + "/production", "-o", archive, "--compression", "zstd"])
    let listed = try Harness.shell("zstd -lv '\(archive)'")
    #expect(listed.stdout.contains("Check: XXH64"), "\(listed)")
    #expect(try Harness.confvault(["verify", archive]).status == 0)
    #expect(try Harness.shell("zstd -t '\(archive)'").status == 0)
  }

  /// Writes an archive whose manifest's author and comment hold terminal escape sequences, listing
  /// `name` (holding a C1 control character in the first archive); `withFile` adds its entry.
  private func archiveWithHostileText(_ path: String, name: String, withFile: Bool) throws {
    let written = try Harness.run(
      "/usr/bin/env",
      [
        "python3", "-c",
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        import archives
        version = {"number": 3, "author": "mallory\\u001b]0;pwned\\u0007", "createdAt": "2026-11-20T10:00:00Z",
                   "comment": "fine\\u001b[2J\\u001b[Hcleared", "origin": "push", "syncedAt": None}
        name = sys.argv[3]
        members = [archives.regular("confvault.json", archives.manifest_for([(name, b"x", "0644")], version=version))]
        if sys.argv[4] == "yes":
            members.append(archives.regular("config/" + name, b"x"))
        archives.write(sys.argv[2], members)
        """,
        Harness.fixtures, path, name, withFile ? "yes" : "no",
      ])
    #expect(written.status == 0, "\(written)")
  }

  @Test("inspect shows an archive's comment, author and names with control characters escaped")
  func inspectEscapes() throws {
    let work = try TemporaryFolder()
    let archive = work.file("hostile-text.tar.gz")
    try archiveWithHostileText(archive, name: "read\u{85}me.txt", withFile: false)
    let inspected = try Harness.confvault(["inspect", archive])
    // The manifest's name breaks the path rules, so it is refused; the refusal names it escaped.
    #expect(!inspected.stderr.contains("\u{85}") && inspected.stderr.contains("read\\u{0085}me.txt"), "\(inspected)")
    let manifestOnly = work.file("manifest-only.tar.gz")
    try archiveWithHostileText(manifestOnly, name: "a.txt", withFile: true)
    let shown = try Harness.confvault(["inspect", manifestOnly])
    #expect(shown.status == 0, "\(shown)")
    #expect(
      !shown.stdout.contains("\u{1B}") && !shown.stdout.contains("\u{07}"), "no escape sequence reaches the terminal")
    #expect(shown.stdout.contains("mallory\\x1b]0;pwned\\x07") && shown.stdout.contains("fine\\x1b[2J\\x1b[Hcleared"))
  }
}
