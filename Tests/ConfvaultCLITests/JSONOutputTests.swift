import Foundation
import Testing

/// `--json` on every command that prints data: each output parses, and its top-level fields are the
/// ones README's "JSON output" table names for it, no more and no fewer.
@Suite struct JSONOutputTests {
  /// README's table: command cell → field names.
  static func documentedFields() throws -> [String: Set<String>] {
    let readme = try String(contentsOfFile: Harness.packageRoot + "/README.md", encoding: .utf8)
    let section = try #require(readme.components(separatedBy: "### JSON output").dropFirst().first)
      .components(separatedBy: "\n#").first!
    var table: [String: Set<String>] = [:]
    for line in section.split(separator: "\n") where line.hasPrefix("| `") {
      let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
      let names = { (cell: String) in
        Set(
          cell.split(separator: "`", omittingEmptySubsequences: false).enumerated().filter { $0.offset % 2 == 1 }.map {
            String($0.element)
          })
      }
      for command in names(cells[0]) { table[command] = names(cells[1]) }
    }
    return table
  }

  static func fields(_ data: Data, _ arguments: [String]) throws -> Set<String> {
    let value = try JSONSerialization.jsonObject(with: data)
    let object = (value as? [Any])?.first ?? value
    let dictionary = try #require(object as? [String: Any], "\(arguments): \(String(decoding: data, as: UTF8.self))")
    return Set(dictionary.keys)
  }

  @Test("every command's --json parses and has exactly the fields README documents")
  func fieldsMatchREADME() throws {
    let documented = try Self.documentedFields()
    let store = try StoreFixture()
    let samples = Harness.samples
    let archive = store.folder.file("dev.tar.gz")
    let backups = store.folder.file("backups")
    // Each documented command, run the way a user would, in an order that gives it something to print.
    let runs: [(String, [String])] = [
      ("push", ["push", "--app", "inventory", "--env", "development", samples + "/development"]),
      ("push --dry-run", ["push", "--app", "inventory", "--env", "staging", samples + "/staging", "--dry-run"]),
      ("restore --dry-run", ["restore", "--app", "inventory", "1", "--env", "staging", "--dry-run"]),
      ("restore", ["restore", "--app", "inventory", "1", "--env", "staging"]),
      ("sync --dry-run", ["sync", "--app", "inventory", "1", "--dry-run"]),
      ("sync", ["sync", "--app", "inventory", "1", "--yes"]),
      ("export", ["export", "--app", "inventory", "--env", "development", "-o", archive]),
      ("verify", ["verify", archive]),
      ("inspect", ["inspect", archive]),
      ("import", ["import", archive, "--app", "inventory", "--env", "development", "--dry-run"]),
      ("versions", ["versions", "--app", "inventory"]),
      ("show", ["show", "--app", "inventory", "1"]),
      ("diff", ["diff", "--app", "inventory", "1", "2"]),
      ("status", ["status", "--app", "inventory", "--env", "development", samples + "/staging"]),
      ("env list", ["env", "list", "--app", "inventory"]),
      ("audit", ["audit", "--app", "inventory"]),
      ("check", ["check"]),
      (
        "store copy",
        ["store", "copy", "--from", store.environment["CONFVAULT_STORE"]!, "--to", store.folder.file("copy")]
      ),
      ("backup", ["backup", "--to", backups]),
      ("backup list", ["backup", "list", "--to", backups]),
      ("user list", ["user", "list"]),
      ("token list", ["token", "list"]),
    ]
    #expect(Set(runs.map(\.0)) == Set(documented.keys), "README's table and this test name the same commands")
    #expect(try store.run(["user", "add", "ana", "--role", "admin"], input: "a-long-password-1\n").status == 0)
    #expect(try store.run(["token", "create", "--name", "ci", "--role", "viewer"]).status == 0)
    for (command, arguments) in runs {
      let outcome = try store.run(arguments + ["--json"])
      #expect(outcome.status == 0, "\(arguments): \(outcome)")
      guard outcome.status == 0 else { continue }
      let fields = try Self.fields(outcome.stdoutData, arguments)
      #expect(fields == documented[command], "`\(command) --json` fields differ from README's")
    }
  }
}
