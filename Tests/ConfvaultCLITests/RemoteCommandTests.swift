import Foundation
import Testing

/// The CLI's store commands run twice: on a store, and through a server (`--server`) over an
/// identical store. Outputs, errors and exit codes must be the same, times aside.
@Suite struct RemoteCommandTests {
  /// A store prepared the same way twice, and where its commands run.
  final class Side {
    let store: StoreFixture
    let work: String
    var environment: [String: String]
    var server: ServerProcess?

    init(remote: Bool) throws {
      store = try StoreFixture()
      work = store.folder.file("work")
      try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
      try store.ok([
        "push", "--app", "inventory", "--env", "development", Harness.samples + "/development", "-m", "dev",
      ])
      try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging", "-m", "staging"])
      environment = store.environment
      if remote {
        // The token's name is the author of what it does: `ana`, as CONFVAULT_AUTHOR is locally.
        let token = try store.ok(["token", "create", "--name", "ana", "--role", "admin"])
          .trimmingCharacters(in: .whitespacesAndNewlines)
        let server = try ServerProcess(store: store)
        self.server = server
        environment["CONFVAULT_SERVER"] = server.baseURL
        environment["CONFVAULT_TOKEN"] = token
        environment["CONFVAULT_STORE"] = "/nonexistent"  // a remote command must not touch a store
      }
    }

    func run(_ arguments: [String]) throws -> Outcome {
      try Harness.confvault(arguments, in: work, environment: environment)
    }
  }

  /// Times differ between two runs, and so do archive digests (an archive's mtimes are its version's
  /// created-at); tree digests, and everything else, must not.
  static func normalised(_ text: String) -> String {
    text.replacingOccurrences(of: #"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"#, with: "<time>", options: .regularExpression)
      .replacingOccurrences(of: #"(?<!sha256:)\b[0-9a-f]{64}\b"#, with: "<archive digest>", options: .regularExpression)
      .replacingOccurrences(of: #"\d{8}T\d{6}Z"#, with: "<stamp>", options: .regularExpression)
      .replacingOccurrences(of: #"\d+\.\d\ds"#, with: "<seconds>", options: .regularExpression)
  }

  static let commands: [[String]] = [
    ["versions", "--app", "inventory"],
    ["versions", "--app", "inventory", "--json"],
    ["versions", "--app", "inventory", "--env", "staging", "--limit", "1"],
    ["show", "--app", "inventory", "2"],
    ["show", "--app", "inventory", "1", "--json"],
    ["env", "list", "--app", "inventory", "--json"],
    ["diff", "--app", "inventory", "2"],
    ["diff", "--app", "inventory", "1", "2", "--json"],
    ["diff", "--app", "inventory", "--env", "development", "--env", "staging", "--stat"],
    ["export", "--app", "inventory", "--env", "staging", "-o", "staging.tar.gz"],
    ["export", "--app", "inventory", "--version", "1", "--compression", "zstd"],
    ["import", "staging.tar.gz", "--app", "inventory", "--env", "production", "--dry-run"],
    ["import", "--yes", "staging.tar.gz", "--app", "inventory", "--env", "production", "-m", "staging to production"],
    ["import", "--yes", "staging.tar.gz", "--app", "inventory", "--env", "production"],
    ["restore", "--app", "inventory", "1", "--env", "staging", "-m", "back to dev's"],
    ["sync", "--yes", "--app", "inventory", "2"],
    ["sync", "--yes", "--app", "inventory", "4", "--to", "development"],
    ["versions", "--app", "inventory", "--json"],
    ["show", "--app", "inventory", "3", "--json"],
    // Failures: the same message and exit code through the server.
    ["versions", "--app", "nope"],
    ["show", "--app", "inventory", "99"],
    ["sync", "--yes", "--app", "inventory", "99"],
    ["restore", "--app", "inventory", "1", "--env", "nowhere"],
    ["import", "symlink.tar.gz", "--app", "inventory", "--env", "staging"],
    ["import", "other-app.tar.gz", "--app", "inventory", "--env", "staging"],
    ["export", "--app", "inventory", "--env", "production", "-o", "staging.tar.gz"],
  ]

  @Test("versions, show, diff, export, import, restore, sync: the same output, errors and exit codes through --server")
  func sameOutputs() throws {
    let local = try Side(remote: false)
    let remote = try Side(remote: true)
    _ = try Harness.archives(["hostile", local.store.folder.file("hostile")])
    for side in [local, remote] {
      try FileManager.default.copyItem(
        atPath: local.store.folder.file("hostile/symlink.tar.gz"), toPath: side.work + "/symlink.tar.gz")
      try Harness.confvault([
        "pack", Harness.samples + "/production", "-o", side.work + "/other-app.tar.gz", "--app", "billing",
      ])
    }
    for command in Self.commands {
      let here = try local.run(command)
      let there = try remote.run(command)
      #expect(here.status == there.status, "\(command): local \(here), remote \(there)")
      #expect(
        Self.normalised(here.stdout) == Self.normalised(there.stdout), "\(command): local \(here), remote \(there)")
      #expect(
        Self.normalised(here.stderr) == Self.normalised(there.stderr), "\(command): local \(here), remote \(there)")
    }
    let verified = try [local, remote].map { try Harness.confvault(["verify", $0.work + "/staging.tar.gz"]).stdout }
    #expect(verified[0].hasPrefix("OK sha256:") && verified[0] == verified[1], "the same configuration: \(verified)")
  }

  @Test("backup and audit run through the server; a store-only command is refused with 64")
  func backupAndAudit() throws {
    let remote = try Side(remote: true)
    let backup = try remote.run(["backup", "--to", "backups", "--keep-last", "2"])
    #expect(backup.status == 0 && backup.stdout.contains("inventory/staging  written  v2"), "\(backup)")
    let read = try Harness.confvault([
      "verify",
      remote.work + "/backups/inventory/staging/"
        + (try FileManager.default.contentsOfDirectory(atPath: remote.work + "/backups/inventory/staging").first {
          $0.hasSuffix(".tar.zst")
        } ?? ""),
    ])
    #expect(read.status == 0, "the backup made through the server reads back: \(read)")
    let again = try remote.run(["backup", "--to", "backups"])
    #expect(again.stdout.contains("unchanged"), "\(again)")
    let audit = try remote.run(["audit", "--app", "inventory", "--json"])
    let entries = try JSONSerialization.jsonObject(with: audit.stdoutData) as? [[String: Any]] ?? []
    #expect(
      entries.contains { $0["action"] as? String == "export" && $0["author"] as? String == "ana" },
      "downloads are audited")
    for command in [
      ["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"], ["check"], ["gc"],
    ] {
      let refused = try remote.run(command)
      #expect(refused.status == 64 && refused.stderr.contains("works on a store, not through a server"), "\(refused)")
    }
    remote.environment["CONFVAULT_TOKEN"] = "cvt_wrong"
    let denied = try remote.run(["versions", "--app", "inventory"])
    #expect(denied.status == 77 && denied.stderr.contains("unknown or revoked"), "\(denied)")
    remote.server?.stop()
    let unreachable = try remote.run(["versions", "--app", "inventory"])
    #expect(unreachable.status == 75 && unreachable.stderr.contains("cannot reach the server"), "\(unreachable)")
  }
}
