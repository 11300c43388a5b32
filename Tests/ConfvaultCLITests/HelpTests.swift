import ConfvaultCore
import Foundation
import Testing

/// The help a person reads: wrapped by the terminal's width only, examples whole, each flag once.
@Suite struct HelpTests {
  @Test("every command's help lists each flag once, with no sentence broken by our own line breaks")
  func everyCommandsHelp() throws {
    let commands = try HelpText.commands()
    // The commands the contract names must be found, so that an empty list cannot pass.
    for expected in [["push"], ["export"], ["env", "list"], ["token", "create"]] {
      #expect(commands.contains(expected), "`confvault --help` lists \(commands)")
    }
    for command in [[]] + commands {
      let help = try HelpText.help(command)
      let duplicates = HelpText.flags(in: help).reduce(into: [String: Int]()) { $0[$1, default: 0] += 1 }
        .filter { $0.value > 1 }.keys.sorted()
      #expect(duplicates.isEmpty, "`confvault \(command.joined(separator: " ")) --help` lists \(duplicates) twice")
      for problem in HelpText.brokenLines(in: help) {
        Issue.record("`confvault \(command.joined(separator: " ")) --help`: \(problem)")
      }
    }
  }

  @Test("export's help shows its own --version N, and not the root's version flag")
  func exportVersionOption() throws {
    let help = try HelpText.help(["export"])
    let lines = help.split(separator: "\n").filter { $0.trimmingCharacters(in: .whitespaces).hasPrefix("--version") }
    #expect(lines.count == 1 && lines[0].contains("<version>"), "\(help)")
    let export = try Harness.confvault(["export", "--app", "a", "--version"])
    #expect(export.status == 64 && export.stderr.contains("--version"), "\(export)")
  }

  @Test("confvault --version prints the version and exits 0")
  func version() throws {
    let outcome = try Harness.confvault(["--version"])
    #expect(outcome.status == 0, "\(outcome)")
    #expect(outcome.stdout == ConfvaultInfo.version + "\n", "\(outcome)")
    let alone = try Harness.confvault([])
    #expect(alone.status == 0 && alone.stdout.contains("SUBCOMMANDS:"), "confvault alone prints the help: \(alone)")
  }

  @Test("the checks catch what they are for: a broken sentence, a broken example, a blank line, a flag twice")
  func checksCatchProblems() {
    let broken = """
      OVERVIEW: Pack a folder.

      The archive holds the manifest and each
      file under `config/`.

      Example:
        confvault pack dir -o x.tar.gz
        --app inventory

      USAGE: confvault pack <folder>

      OPTIONS:
        --version <version>     The version.
        --version               Show the version.
        -h, --help              Show help information.
      """
    #expect(HelpText.brokenLines(in: broken).count == 3, "\(HelpText.brokenLines(in: broken))")
    #expect(HelpText.flags(in: broken) == ["--version", "--version", "-h", "--help"])
    let whole = """
      OVERVIEW: Pack a folder.

      The archive holds the manifest and each file under `config/`. Packing twice gives the same bytes.
      Example (nightly): confvault pack dir -o x.tar.gz

      USAGE: confvault pack <folder>
      """
    #expect(HelpText.brokenLines(in: whole).isEmpty)
  }
}

/// Reading `confvault --help` the way a person does: its commands, its flags, its paragraphs.
enum HelpText {
  /// Every command and subcommand `confvault --help` lists, recursively (`["env", "list"]`).
  static func commands(under parent: [String] = []) throws -> [[String]] {
    var found: [[String]] = []
    for name in subcommands(in: try help(parent)) where name != "help" {
      let command = parent + [name]
      found.append(command)
      found += try commands(under: command)
    }
    return found
  }

  /// `confvault COMMAND --help` as a terminal 400 columns wide shows it, so that only our own line
  /// breaks remain.
  static func help(_ command: [String]) throws -> String {
    let outcome = try Harness.confvault(command + ["--help"], environment: ["COLUMNS": "400"])
    #expect(outcome.status == 0, "confvault \(command.joined(separator: " ")) --help: \(outcome)")
    return outcome.stdout
  }

  /// The names in a help's SUBCOMMANDS section.
  static func subcommands(in help: String) -> [String] {
    guard let start = help.range(of: "SUBCOMMANDS:\n") else { return [] }
    var names: [String] = []
    for line in help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false) {
      guard line.hasPrefix("  "), !line.hasPrefix("   ") else { break }
      guard let name = line.split(separator: " ").first, name.first?.isLowercase == true else { continue }
      names.append(String(name))
    }
    return names
  }

  /// Every flag name in the OPTIONS section, as often as it is listed.
  static func flags(in help: String) -> [String] {
    guard let start = help.range(of: "OPTIONS:\n") else { return [] }
    var flags: [String] = []
    for line in help[start.upperBound...].split(separator: "\n") {
      guard line.hasPrefix("  -") else { continue }
      // `-q, --quiet  Print only errors.`: the names come before the first double space.
      let names = line.dropFirst(2).components(separatedBy: "  ")[0]
      for name in names.split(separator: ",") {
        let word = name.trimmingCharacters(in: .whitespaces).split(separator: " ")[0]
        flags.append(String(word))
      }
    }
    return flags
  }

  /// Lines of the overview and discussion (everything before USAGE) that a sentence or an example
  /// runs on from: a paragraph is one line, and so is each example. A blank line inside a discussion
  /// counts too: the man page made from it warns about every one.
  ///
  /// Examples start at the first line beginning with `Example`; each line from there but an
  /// `Example:` heading must name `confvault`, so a command cut in two shows as a line without it.
  static func brokenLines(in help: String) -> [String] {
    let top = help.components(separatedBy: "\nUSAGE:")[0]
    let lines = top.split(separator: "\n", omittingEmptySubsequences: false).map {
      $0.trimmingCharacters(in: .whitespaces)
    }
    let examplesStart = lines.firstIndex { $0.hasPrefix("Example") } ?? lines.count
    var problems: [String] = []
    // The overview, a blank line, then the discussion, then the blank line before USAGE.
    let lastText = lines.lastIndex { !$0.isEmpty } ?? 0
    for index in lines.indices where index > 1 && index < lastText && lines[index].isEmpty {
      problems.append("a blank line inside the discussion, after `\(lines[index - 1])`")
    }
    for index in 0..<examplesStart where !lines[index].isEmpty {
      let next = index + 1 < examplesStart ? lines[index + 1] : ""
      if !next.isEmpty && !endsSentence(lines[index]) {
        problems.append("the line `\(lines[index])` runs on into `\(next)`")
      }
    }
    for line in lines[examplesStart...] where !line.isEmpty && !line.contains("confvault") {
      // `Example:` or `Examples:` alone introduces the commands on the lines below it.
      if line.hasPrefix("Example") && line.hasSuffix(":") { continue }
      problems.append("the example line `\(line)` is not a whole command")
    }
    return problems
  }

  /// Whether a line ends a sentence: `.`, `:`, `!` or `?`, perhaps inside a closing quote or bracket.
  private static func endsSentence(_ line: String) -> Bool {
    let text = line.trimmingCharacters(in: CharacterSet(charactersIn: ")]\"'`"))
    return [".", ":", "!", "?"].contains { text.hasSuffix($0) }
  }
}
