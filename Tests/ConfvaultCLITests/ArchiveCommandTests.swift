import Foundation
import Testing

/// `pack`, `unpack`, `inspect` and `verify` through the built binary, on the samples and on archives
/// written by other tools.
@Suite struct ArchiveCommandTests {
  static let production = Harness.samples + "/production"

  /// The tree digest `confvault pack` prints on its last line.
  func packedDigest(_ outcome: Outcome) -> String {
    outcome.stdout.split(separator: "\n").last.map { String($0.dropFirst("tree ".count)) } ?? ""
  }

  @Test("pack, verify and unpack round-trip", arguments: ["gzip", "zstd", "xz", "none"])
  func roundTrip(compression: String) throws {
    let work = try TemporaryFolder()
    let archive = work.file("production.archive")
    let packed = try Harness.confvault([
      "pack", Self.production, "-o", archive, "--compression", compression, "--app", "inventory",
    ])
    #expect(packed.status == 0, "\(packed)")
    let digest = packedDigest(packed)
    #expect(digest.hasPrefix("sha256:") && digest.count == 71)

    let verified = try Harness.confvault(["verify", archive])
    #expect(verified.status == 0, "\(verified)")
    let sampleFiles = try folderFingerprint(Self.production)
    #expect(verified.stdout.hasPrefix("OK \(digest) \(sampleFiles.count) files "))

    let unpacked = try Harness.confvault(["unpack", archive, "--to", work.file("out")])
    #expect(unpacked.status == 0, "\(unpacked)")
    #expect(try folderFingerprint(work.file("out")) == sampleFiles)
    #expect(try work.listing() == ["out", "production.archive"], "no staging folder is left behind")
  }

  @Test("an unpack killed part way leaves no folder at the target; the next unpack there completes")
  func killedUnpack() throws {
    let work = try TemporaryFolder()
    let made = try Harness.shell(
      "mkdir -p '\(work.file("big"))'/a && for i in $(seq 1 400); do head -c 3000 /dev/urandom > '\(work.file("big"))'/a/f$i.bin; done"
    )
    #expect(made.status == 0, "\(made)")
    try Harness.confvault(["pack", work.file("big"), "-o", work.file("big.tar"), "--compression", "none"])
    let archive = try work.bytes("big.tar")

    let process = Process()
    let input = Pipe()
    process.executableURL = URL(fileURLWithPath: Harness.binary)
    process.arguments = ["unpack", "-", "--to", work.file("out")]
    process.standardInput = input
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Half the archive: the unpack writes what it read into its hidden folder, waiting for the rest.
    input.fileHandleForWriting.write(archive.prefix(archive.count / 2))
    var staged: [String] = []
    for _ in 0..<400 where staged.count < 50 {
      Thread.sleep(forTimeInterval: 0.025)
      let hidden = try work.listing().first { $0.hasPrefix(".out.tmp-") }
      staged = hidden.flatMap { try? FileManager.default.contentsOfDirectory(atPath: work.file($0) + "/a") } ?? []
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
    #expect(process.terminationReason == .uncaughtSignal)
    #expect(staged.count >= 50, "the unpack was killed while it wrote files")
    #expect(!work.exists("out"), "nothing at the target: absent, not partial")

    let unpacked = try Harness.confvault(["unpack", work.file("big.tar"), "--to", work.file("out")])
    #expect(unpacked.status == 0, "\(unpacked)")
    #expect(try folderFingerprint(work.file("out")) == folderFingerprint(work.file("big")))
    #expect(try work.listing() == ["big", "big.tar", "out"], "the killed unpack's hidden folder was removed")
  }

  @Test("packing twice gives identical bytes", arguments: ["gzip", "zstd", "xz", "none"])
  func deterministic(compression: String) throws {
    let work = try TemporaryFolder()
    for name in ["one", "two"] {
      let outcome = try Harness.confvault([
        "pack", Self.production, "-o", work.file(name), "--compression", compression,
      ])
      #expect(outcome.status == 0, "\(outcome)")
    }
    #expect(try work.bytes("one") == work.bytes("two"))
  }

  @Test("one configuration has one tree digest under every compression")
  func treeDigestIgnoresCompression() throws {
    let work = try TemporaryFolder()
    var digests: Set<String> = []
    var archives: Set<Data> = []
    for compression in ["gzip", "zstd", "xz", "none"] {
      let outcome = try Harness.confvault([
        "pack", Self.production, "-o", work.file(compression), "--compression", compression,
      ])
      digests.insert(packedDigest(outcome))
      archives.insert(try work.bytes(compression))
    }
    #expect(digests.count == 1)
    #expect(archives.count == 4, "the compressions really differ")
  }

  @Test("compression is detected from the content, not the file name")
  func compressionFromContent() throws {
    let work = try TemporaryFolder()
    try Harness.confvault(["pack", Self.production, "-o", work.file("looks.tar.gz"), "--compression", "zstd"])
    let inspected = try Harness.confvault(["inspect", work.file("looks.tar.gz"), "--json"])
    #expect(inspected.status == 0, "\(inspected)")
    let report = try JSONSerialization.jsonObject(with: inspected.stdoutData) as? [String: Any]
    #expect(report?["compression"] as? String == "zstd")
  }

  @Test("standard input is read with -")
  func standardInput() throws {
    let work = try TemporaryFolder()
    try Harness.confvault(["pack", Self.production, "-o", work.file("a.tar.gz")])
    let verified = try Harness.confvault(["verify", "-"], input: "@" + work.file("a.tar.gz"))
    #expect(verified.status == 0, "\(verified)")
    #expect(verified.stdout.hasPrefix("OK sha256:"))
  }

  @Test("inspect shows the manifest and every file")
  func inspect() throws {
    let work = try TemporaryFolder()
    try Harness.confvault([
      "pack", Self.production, "-o", work.file("a.tar.gz"), "--app", "inventory", "--env", "production",
    ])
    let text = try Harness.confvault(["inspect", work.file("a.tar.gz")])
    #expect(text.status == 0)
    #expect(text.stdout.contains("app          inventory"))
    #expect(text.stdout.contains("environment  production"))
    #expect(text.stdout.contains("0755") && text.stdout.contains("scripts/migrate.sh"))
    #expect(text.stdout.contains("i18n/español.json"))

    let json = try Harness.confvault(["inspect", work.file("a.tar.gz"), "--json"])
    let report = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any])
    let manifest = try #require(report["manifest"] as? [String: Any])
    #expect(manifest["format"] as? String == "confvault-archive")
    #expect(manifest["version"] is NSNull, "an archive packed from a folder has version null")
    let files = try #require(manifest["files"] as? [[String: Any]])
    let paths = files.compactMap { $0["path"] as? String }
    #expect(paths == paths.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
    #expect(files.count == (try folderFingerprint(Self.production)).count)
  }

  // MARK: Other readers open our archives

  @Test(
    "GNU tar, bsdtar and Python's tarfile extract our archives to the manifest's digests",
    arguments: ["gzip", "zstd", "xz", "none"])
  func otherReaders(compression: String) throws {
    let work = try TemporaryFolder()
    let archive = work.file("a.archive")
    try Harness.confvault(["pack", Self.production, "-o", archive, "--compression", compression])
    let json = try Harness.confvault(["inspect", archive, "--json"])
    let report = try #require(try JSONSerialization.jsonObject(with: json.stdoutData) as? [String: Any])
    let files = try #require((report["manifest"] as? [String: Any])?["files"] as? [[String: Any]])
    var expected: [String: String] = [:]
    for file in files {
      expected["config/" + (file["path"] as! String)] = file["sha256"] as? String
    }

    // Python 3.11's tarfile has no zstd: it reads what the zstd tool decompresses, as a user would do.
    let plainTar = work.file("plain.tar")
    let decompress =
      compression == "zstd" ? "zstd -q -d -c '\(archive)' > '\(plainTar)'" : "cp '\(archive)' '\(plainTar)'"
    #expect(try Harness.shell(decompress).status == 0)
    for (reader, command) in [
      ("gnu", "mkdir gnu && tar -xf '\(archive)' -C gnu"),
      ("bsd", "mkdir bsd && bsdtar -xf '\(archive)' -C bsd"),
      ("python", "python3 '\(Harness.fixtures)/archives.py' extract '\(plainTar)' python"),
    ] {
      let outcome = try Harness.shell(command, in: work.path)
      #expect(outcome.status == 0, "\(reader): \(outcome)")
      let sums = try Harness.shell(
        "cd '\(work.file(reader))' && find config -type f -print0 | sort -z | xargs -0 sha256sum")
      var found: [String: String] = [:]
      for line in sums.stdout.split(separator: "\n") {
        found[String(line.dropFirst(66))] = String(line.prefix(64))
      }
      #expect(found == expected, "\(reader) extracted other bytes")
      let mode = try Harness.shell("stat -c %a '\(work.file(reader))/config/scripts/migrate.sh'")
      #expect(mode.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "755", "\(reader)")
    }
  }

  // MARK: Our reader accepts other writers' archives

  /// A folder with our manifest and `config/`, for other tools to archive.
  func stagedForOtherWriters(_ work: TemporaryFolder) throws -> String {
    let stage = work.file("stage")
    #expect(try Harness.shell("mkdir -p '\(stage)' && cp -r '\(Self.production)' '\(stage)/config'").status == 0)
    try Harness.archives(["manifest", stage + "/config", stage + "/confvault.json"])
    return stage
  }

  @Test(
    "archives with our manifest written by GNU tar, bsdtar and Python's tarfile are accepted",
    arguments: [
      "tar --format=ustar -cf OUT -C STAGE confvault.json config",
      "tar --format=pax -czf OUT -C STAGE confvault.json config",
      "tar --format=gnu -cJf OUT -C STAGE confvault.json config",
      "bsdtar --format ustar -cf OUT -C STAGE confvault.json config",
      "bsdtar --format pax --zstd -cf OUT -C STAGE confvault.json config",
      "bsdtar --format gnutar -cjf OUT -C STAGE confvault.json config",
      "python3 FIXTURES/archives.py tarfile STAGE/config OUT ustar",
      "python3 FIXTURES/archives.py tarfile STAGE/config OUT pax",
      "python3 FIXTURES/archives.py tarfile STAGE/config OUT gnu",
    ])
  func otherWriters(command: String) throws {
    let work = try TemporaryFolder()
    let stage = try stagedForOtherWriters(work)
    let ours = try Harness.confvault(["pack", Self.production, "-o", work.file("ours.tar")])
    let line = command.replacingOccurrences(of: "OUT", with: work.file("theirs"))
      .replacingOccurrences(of: "STAGE", with: stage)
      .replacingOccurrences(of: "FIXTURES", with: Harness.fixtures)
    let written = try Harness.shell(line)
    #expect(written.status == 0, "\(written)")
    let verified = try Harness.confvault(["verify", work.file("theirs")])
    #expect(verified.status == 0, "\(verified)")
    #expect(verified.stdout.hasPrefix("OK \(packedDigest(ours)) "), "the same configuration, the same digest")
    let unpacked = try Harness.confvault(["unpack", work.file("theirs"), "--to", work.file("out")])
    #expect(unpacked.status == 0, "\(unpacked)")
    #expect(try folderFingerprint(work.file("out")) == folderFingerprint(Self.production))
  }

  @Test("an ordinary tar of a folder is accepted with --plain, its top folder stripped")
  func plainTar() throws {
    let work = try TemporaryFolder()
    #expect(try Harness.shell("tar -czf '\(work.file("old.tgz"))' -C '\(Harness.samples)' production").status == 0)
    let ours = try Harness.confvault(["pack", Self.production, "-o", work.file("ours.tar")])
    let refused = try Harness.confvault(["verify", work.file("old.tgz")])
    #expect(refused.status == 65)
    #expect(refused.stderr.contains("use --plain"))
    let verified = try Harness.confvault(["verify", "--plain", work.file("old.tgz")])
    #expect(verified.stdout.hasPrefix("OK \(packedDigest(ours)) "), "\(verified)")
    let unpacked = try Harness.confvault(["unpack", "--plain", work.file("old.tgz"), "--to", work.file("out")])
    #expect(unpacked.status == 0, "\(unpacked)")
    #expect(try folderFingerprint(work.file("out")) == folderFingerprint(Self.production))
  }

  @Test("non-ASCII and 200-character paths round-trip through us and GNU tar")
  func unusualPaths() throws {
    let work = try TemporaryFolder()
    let long =
      (0..<4).map { String(repeating: Character(UnicodeScalar(UInt8(0x61 + $0))), count: 48) }
      .joined(separator: "/") + "/setting.json"
    #expect(long.utf8.count > 200)
    let names = [long, "i18n/日本語.json", "i18n/emoji-🚀.yaml", "ñandú/café/Ünïcödé.toml", "plain.txt"]
    for name in names { try work.write("src/" + name, "content of \(name)\n") }
    let packed = try Harness.confvault(["pack", work.file("src"), "-o", work.file("a.tar.gz")])
    #expect(packed.status == 0, "\(packed)")
    let unpacked = try Harness.confvault(["unpack", work.file("a.tar.gz"), "--to", work.file("out")])
    #expect(unpacked.status == 0, "\(unpacked)")
    #expect(try folderFingerprint(work.file("out")) == folderFingerprint(work.file("src")))
    let listed = try Harness.shell("tar -tzf '\(work.file("a.tar.gz"))'")
    for name in names { #expect(listed.stdout.contains("config/" + name), "GNU tar lists \(name)") }
  }

  @Test("a folder with decomposed (NFD) names packs to NFC paths whose digest verify agrees with")
  func decomposedNames() throws {
    let work = try TemporaryFolder()
    try work.write("src/caf\u{65}\u{301}/r\u{e9}sum\u{65}\u{301}.json", "{}\n")
    let packed = try Harness.confvault(["pack", work.file("src"), "-o", work.file("a.tar.gz")])
    #expect(packed.status == 0, "\(packed)")
    let verified = try Harness.confvault(["verify", work.file("a.tar.gz")])
    #expect(verified.stdout.hasPrefix("OK \(packedDigest(packed)) 1 files"), "\(verified)")
    let listed = try Harness.confvault(["inspect", work.file("a.tar.gz"), "--json"])
    let path = String(decoding: listed.stdoutData, as: UTF8.self)
    #expect(path.utf8.count > 0 && Array(path.utf8).contains(0xC3), "the manifest holds the composed é (C3 A9)")

    try work.write("both/caf\u{e9}.json", "1")
    try work.write("both/caf\u{65}\u{301}.json", "2")
    let both = try Harness.confvault(["pack", work.file("both"), "-o", work.file("b.tar.gz")])
    #expect(both.status == 65, "\(both)")
    #expect(both.stderr.contains("two names that are the same after Unicode normalisation"))
  }

  @Test("unpack --plain: a top folder holding its own name, a file that is also a folder, a ./ tar")
  func plainEdgeCases() throws {
    let work = try TemporaryFolder()
    try work.write("same/x/x/a", "a")
    try work.write("same/x/b", "b")
    #expect(try Harness.shell("tar -czf '\(work.file("same.tgz"))' -C '\(work.file("same"))' x").status == 0)
    let unpacked = try Harness.confvault(["unpack", "--plain", work.file("same.tgz"), "--to", work.file("out")])
    #expect(unpacked.status == 0, "\(unpacked)")
    #expect(try folderFingerprint(work.file("out")).keys.sorted() == ["b", "x/a"])

    let conflict = work.file("conflict.tar")
    #expect(
      try Harness.run(
        "/usr/bin/env",
        [
          "python3", "-c",
          "import tarfile,io,sys; t=tarfile.open(sys.argv[1],'w')\nfor n in ('a','a/b'):\n i=tarfile.TarInfo(n); i.size=1; t.addfile(i, io.BytesIO(b'x'))\nt.close()",
          conflict,
        ]
      ).status == 0)
    let refused = try Harness.confvault(["unpack", "--plain", conflict, "--to", work.file("out2")])
    #expect(refused.status == 65, "\(refused)")
    #expect(refused.stderr.contains("path is both a file and a folder"))
    #expect(!work.exists("out2"))

    try work.write("contents/entities/customer.json", "{}\n")
    #expect(try Harness.shell("tar -czf '\(work.file("dot.tgz"))' -C '\(work.file("contents"))' .").status == 0)
    let inspected = try Harness.confvault(["inspect", "--plain", work.file("dot.tgz")])
    #expect(inspected.stdout.contains("entities/customer.json"), "a tar of a folder's contents keeps its folders")
    #expect(!inspected.stdout.contains("stripped"))

    // Cut right after an entry, as an interrupted copy would: no end-of-archive blocks.
    #expect(try Harness.shell("tar -cf '\(work.file("whole.tar"))' -C '\(work.file("same"))' x").status == 0)
    let cut = try Harness.shell(
      "python3 -c \"import sys; d=open(sys.argv[1],'rb').read(); n=len(d.rstrip(bytes(1))); sys.stdout.buffer.write(d[:n + (-n % 512)])\" '\(work.file("whole.tar"))' > '\(work.file("cut.tar"))'"
    )
    #expect(cut.status == 0, "\(cut)")
    let truncated = try Harness.confvault(["verify", "--plain", work.file("cut.tar")])
    #expect(truncated.status == 65, "\(truncated)")
    #expect(truncated.stderr.contains("truncated"))
  }

  // MARK: Refusals and exit codes

  @Test("pack refuses symlinks and special files, naming each, and writes nothing")
  func packRefusesSpecialFiles() throws {
    let work = try TemporaryFolder()
    try work.write("src/settings.yaml", "a: 1\n")
    #expect(try Harness.shell("cd '\(work.path)/src' && ln -s /etc/passwd link.yaml && mkfifo pipe").status == 0)
    let outcome = try Harness.confvault(["pack", work.file("src"), "-o", work.file("a.tar.gz")])
    #expect(outcome.status == 65)
    #expect(outcome.stderr.contains("`link.yaml`: symbolic link"))
    #expect(outcome.stderr.contains("`pipe`: FIFO"))
    #expect(!work.exists("a.tar.gz"))
    #expect(try work.listing() == ["src"], "no temporary file is left")
  }

  @Test("an existing output is kept unless --force")
  func existingOutput() throws {
    let work = try TemporaryFolder()
    try work.write("a.tar.gz", "precious")
    let refused = try Harness.confvault(["pack", Self.production, "-o", work.file("a.tar.gz")])
    #expect(refused.status == 73)
    #expect(refused.stderr.contains("--force"))
    #expect(try work.bytes("a.tar.gz") == Data("precious".utf8))
    let forced = try Harness.confvault(["pack", Self.production, "-o", work.file("a.tar.gz"), "--force"])
    #expect(forced.status == 0)
    #expect(try Harness.confvault(["verify", work.file("a.tar.gz")]).status == 0)
  }

  @Test("exit codes follow PRODUCT.md")
  func exitCodes() throws {
    let work = try TemporaryFolder()
    try Harness.confvault(["pack", Self.production, "-o", work.file("a.tar.gz")])
    try work.write("full/x", "x")
    let cases: [([String], Int32, String)] = [
      (["verify", work.file("missing.tar.gz")], 66, "No such file"),
      (["verify", work.path], 66, "directory"),
      (["pack", work.file("missing-folder"), "-o", work.file("b.tar")], 66, "missing-folder"),
      (["pack", Self.production, "-o", work.file("no/such/folder/b.tar")], 73, "cannot create"),
      (["unpack", work.file("a.tar.gz"), "--to", work.file("full")], 73, "not empty"),
      (["pack", Self.production, "-o", work.file("c.tar"), "--compression", "rar"], 64, "rar"),
      (["pack", Self.production, "-o", work.file("c.tar"), "--app", "Bad App"], 64, "Bad App"),
      (["verify"], 64, "Missing expected argument"),
    ]
    for (arguments, status, message) in cases {
      let outcome = try Harness.confvault(arguments)
      #expect(outcome.status == status, "\(arguments): \(outcome)")
      #expect(outcome.stderr.contains(message), "\(arguments): \(outcome)")
    }
  }
}
