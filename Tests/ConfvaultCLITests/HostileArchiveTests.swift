import Foundation
import Testing

/// One crafted archive per refusal rule of PRODUCT.md, and decompression bombs.
@Suite struct HostileArchiveTests {
  /// A crafted archive (written by `archives.py hostile`), the entry the refusal must name, and its rule.
  struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var entry: String
    var rule: String
    var testDescription: String { name }
  }

  static let cases: [Case] = [
    Case(name: "absolute-path", entry: "/etc/cron.d/evil", rule: "absolute path"),
    Case(name: "parent-component", entry: "config/../../evil.sh", rule: "`..` component"),
    Case(name: "empty-component", entry: "config//evil.json", rule: "empty path component"),
    Case(name: "dot-component", entry: "config/entities/./x.json", rule: "`.` component"),
    Case(name: "control-character", entry: "config/bad\\x0aname.json", rule: "control character"),
    Case(name: "nul-in-manifest-path", entry: "config/a\\x00b", rule: "control character (or NUL)"),
    Case(name: "not-utf8", entry: "config/caf\\xe9.json", rule: "not valid UTF-8"),
    Case(name: "name-too-long", entry: "config/d/d/d/", rule: "name too long (4206 bytes, limit 1024)"),
    Case(name: "component-too-long", entry: "config/ccc", rule: "name too long (a component of 305 bytes"),
    Case(name: "duplicate-path", entry: "config/settings.yaml", rule: "same path twice"),
    Case(name: "duplicate-after-normalisation", entry: "config/café.json", rule: "same path twice"),
    Case(name: "manifest-path-not-nfc", entry: "config/caf", rule: "name is not in Unicode NFC form"),
    Case(name: "symlink", entry: "config/link.json", rule: "not a regular file (symbolic link"),
    Case(name: "hard-link", entry: "config/hard.json", rule: "not a regular file (hard link"),
    Case(name: "character-device", entry: "config/tty", rule: "not a regular file (character device"),
    Case(name: "block-device", entry: "config/disk", rule: "not a regular file (block device"),
    Case(name: "fifo", entry: "config/pipe", rule: "not a regular file (FIFO"),
    Case(name: "manifest-missing", entry: "config/settings.yaml", rule: "manifest `confvault.json` missing"),
    Case(name: "manifest-not-first", entry: "config/a.json", rule: "missing or not the first entry"),
    Case(name: "manifest-twice", entry: "confvault.json", rule: "appears twice"),
    Case(name: "manifest-not-json", entry: "confvault.json", rule: "manifest is not valid (not a JSON object"),
    Case(name: "manifest-other-format", entry: "confvault.json", rule: "manifest is of another format"),
    Case(name: "manifest-newer-version", entry: "confvault.json", rule: "upgrade confvault"),
    Case(name: "manifest-wrong-tree-digest", entry: "confvault.json", rule: "treeDigest is sha256:0000"),
    Case(name: "file-missing", entry: "config/views/list.json", rule: "listed in the manifest is missing"),
    Case(name: "extra-file", entry: "config/extra.json", rule: "not listed in the manifest"),
    Case(name: "size-differs", entry: "config/a.json", rule: "size differs from the manifest"),
    Case(name: "checksum-differs", entry: "config/a.json", rule: "SHA-256 differs from the manifest"),
    Case(name: "mode-differs", entry: "config/a.json", rule: "mode differs from the manifest"),
    Case(name: "outside-config", entry: "README.txt", rule: "outside `config/`"),
    Case(name: "folder-outside-config", entry: "zzz", rule: "outside `config/`"),
    Case(name: "file-and-folder", entry: "config/a", rule: "both a file and a folder"),
    Case(name: "truncated", entry: "config/big.txt", rule: "corrupt or truncated (truncated gzip input)"),
    Case(name: "corrupt", entry: "", rule: "corrupt or truncated"),
    Case(name: "not-an-archive", entry: "", rule: "not a tar archive"),
    Case(name: "end-marker-missing", entry: "", rule: "without the end-of-archive blocks: truncated"),
    Case(name: "nul-in-pax-path", entry: "config/a.json", rule: "control character (or NUL) in name"),
    Case(name: "nul-in-gnu-longname", entry: "config/aaaa", rule: "control character (or NUL) in name"),
    Case(name: "c1-control", entry: "config/a", rule: "control character (or NUL) in name"),
    Case(name: "bidi-override", entry: "config/evil", rule: "bidirectional control character in name"),
    Case(name: "backslash", entry: "config/a", rule: "backslash in name"),
    Case(name: "path-over-1024", entry: "config/abcdefghi/", rule: "name too long"),
    Case(name: "case-fold-duplicate", entry: "config/", rule: "same path twice after case folding"),
    Case(name: "manifest-utf16", entry: "confvault.json", rule: "manifest is not valid"),
    Case(name: "manifest-bom", entry: "confvault.json", rule: "manifest is not valid"),
    Case(name: "manifest-duplicate-keys", entry: "confvault.json", rule: "manifest is not valid"),
    Case(name: "manifest-bad-app-name", entry: "confvault.json", rule: "manifest is not valid"),
    Case(name: "manifest-bad-environment-name", entry: "confvault.json", rule: "manifest is not valid"),
    Case(name: "sparse-all-hole", entry: "config/a.json", rule: "sparse entry"),
    Case(name: "sparse-pax", entry: "config", rule: "sparse entry"),
    Case(name: "pax-global-header", entry: "././@PaxHeader", rule: "pax global header"),
    Case(name: "gnu-volume-header", entry: "Volume 1", rule: "GNU volume or multivolume header"),
    Case(name: "gnu-multivolume", entry: "config/a.json", rule: "GNU volume or multivolume header"),
    Case(name: "second-tar-after-end", entry: "", rule: "data after the end of the archive"),
    Case(name: "garbage-after-end", entry: "", rule: "data after the end of the archive"),
    Case(name: "double-gzip", entry: "", rule: "more than one compression layer"),
    Case(name: "gzip-in-xz", entry: "", rule: "more than one compression layer"),
    Case(name: "gzip-quine", entry: "", rule: "more than one compression layer"),
    Case(name: "gzip-bad-crc", entry: "", rule: "compression checksum does not match"),
    Case(name: "gzip-bad-length", entry: "", rule: "compression checksum does not match"),
    Case(name: "xz-bad-check", entry: "", rule: "compression checksum does not match"),
    Case(name: "zstd-bad-checksum", entry: "", rule: "compression checksum does not match"),
  ]

  /// The crafted archives, written once for all cases.
  static let folder: String = {
    let path = NSTemporaryDirectory() + "/confvault-hostile-\(getpid())"
    _ = try? Harness.archives(["hostile", path])
    return path
  }()

  @Test("verify refuses with exit 65, naming the entry and the rule", arguments: cases)
  func verifyRefuses(_ hostile: Case) throws {
    let outcome = try Harness.confvault(["verify", Self.folder + "/\(hostile.name).tar.gz"])
    #expect(outcome.status == 65, "\(outcome)")
    #expect(outcome.stdout.isEmpty)
    let expectedEntry = hostile.entry.isEmpty ? "archive: " : "entry `\(hostile.entry)"
    #expect(outcome.stderr.contains(expectedEntry), "\(outcome.stderr)")
    #expect(outcome.stderr.contains(hostile.rule), "\(outcome.stderr)")
    #expect(outcome.stderr.contains("archive refused"))
  }

  @Test("unpack of a refused archive leaves nothing behind", arguments: cases)
  func unpackLeavesNothing(_ hostile: Case) throws {
    let work = try TemporaryFolder()
    let outcome = try Harness.confvault([
      "unpack", Self.folder + "/\(hostile.name).tar.gz", "--to", work.file("out"),
    ])
    #expect(outcome.status == 65, "\(outcome)")
    #expect(try work.listing().isEmpty, "no target and no staging folder")
    #expect(!FileManager.default.fileExists(atPath: "/etc/cron.d/evil"))
  }

  /// Runs `confvault` under `maxrss.py`, which prints the child's peak RSS in KiB on its last line.
  func runMeasured(_ arguments: [String]) throws -> (Outcome, peakKiB: Int) {
    let outcome = try Harness.run(
      "/usr/bin/env", ["python3", Harness.fixtures + "/maxrss.py", Harness.binary] + arguments)
    let lines = outcome.stdout.split(separator: "\n")
    let peak = Int(lines.last ?? "") ?? Int.max
    var child = outcome
    child.stdout = lines.dropLast().joined(separator: "\n")
    return (child, peak)
  }

  // The bombs below are 8 GiB of zeros in about 8 MB, with no gzip trailer: a reader that did not stop
  // at the limit would decompress all 8 GiB and then fail with "truncated", not with the limit's rule.

  @Test("a decompression bomb in a plain tar stops at the per-file limit with flat memory")
  func plainBomb() throws {
    let work = try TemporaryFolder()
    try Harness.archives(["bomb", work.file("bomb.tgz"), String(8 << 30), "plain"])
    let size = try FileManager.default.attributesOfItem(atPath: work.file("bomb.tgz"))[.size] as? Int ?? 0
    #expect(size < 16 << 20, "a few MB compressed")
    let (outcome, peakKiB) = try runMeasured(["verify", "--plain", work.file("bomb.tgz")])
    #expect(outcome.status == 65, "\(outcome)")
    #expect(outcome.stderr.contains("entry `zeros.bin`: file larger than the limit"), "\(outcome)")
    #expect(peakKiB < 128 << 10, "peak RSS \(peakKiB) KiB")
  }

  @Test("a bomb behind a manifest stops once the entry exceeds the size the manifest declares")
  func manifestBomb() throws {
    let work = try TemporaryFolder()
    try Harness.archives(["bomb", work.file("bomb.tgz"), String(8 << 30), "manifest"])
    let (outcome, peakKiB) = try runMeasured(["verify", work.file("bomb.tgz")])
    #expect(outcome.status == 65, "\(outcome)")
    #expect(outcome.stderr.contains("entry `config/zeros.bin`: size differs from the manifest (more than the 1048576"))
    #expect(peakKiB < 128 << 10, "peak RSS \(peakKiB) KiB")
  }

  @Test("total size and file count are limited on what is read")
  func countedLimits() throws {
    let work = try TemporaryFolder()
    for index in 0..<5 { try work.write("src/file\(index).txt", String(repeating: "x", count: 1000)) }
    #expect(try Harness.shell("tar -czf '\(work.file("five.tgz"))' -C '\(work.file("src"))' .").status == 0)
    let total = try Harness.confvault(["verify", "--plain", "--max-total-size", "4500", work.file("five.tgz")])
    #expect(total.status == 65)
    #expect(total.stderr.contains("archive holds more bytes than the limit"), "\(total)")
    let count = try Harness.confvault(["verify", "--plain", "--max-files", "4", work.file("five.tgz")])
    #expect(count.status == 65)
    #expect(count.stderr.contains("archive holds more files than the limit"), "\(count)")
    let perFile = try Harness.confvault(["verify", "--plain", "--max-file-size", "999", work.file("five.tgz")])
    #expect(perFile.status == 65)
    #expect(perFile.stderr.contains("file larger than the limit"), "\(perFile)")
    let fine = try Harness.confvault([
      "verify", "--plain", "--max-files", "5", "--max-file-size", "1000", work.file("five.tgz"),
    ])
    #expect(fine.status == 0, "\(fine)")
  }
}
