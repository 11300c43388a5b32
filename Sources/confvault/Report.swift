import ArgumentParser
import ConfvaultCore

/// `--all`, for the commands that list the files a change touches.
struct ChangeListOptions: ParsableArguments {
  @Flag(help: "List every changed file; by default a long list is shortened to its first files and a summary.")
  var all = false
}

/// Prints the outcome of a command that adds a version, or would.
enum Report {
  /// How many changed files are listed before a list is shortened (`--all` lists them all).
  static let listed = 50

  /// A preview: the target, then each changed file with its key paths, then the counts.
  static func previewLines(_ preview: Vault.Preview, action: String, all: Bool) -> [String] {
    let head = preview.head.map { "v\($0)" } ?? "no version yet"
    let target = "\(preview.app)/\(preview.environment)"
    guard !preview.changes.isEmpty else { return ["\(action) would change nothing in \(target) (head \(head))"] }
    var lines = ["\(action) into \(target) (head \(head)) would change these files:"]
    let shown = all ? preview.files : Array(preview.files.prefix(listed))
    for file in shown { lines.append(String(Diff.render(file).dropLast())) }
    if shown.count < preview.files.count {
      lines.append("… and \(preview.files.count - shown.count) more files (--all lists every one)")
    }
    lines.append(ChangePrinter.summary(preview.changes, listing: 0).last!.trimmingCharacters(in: .whitespaces))
    return lines
  }

  /// A dry run: what the change would do; nothing was written.
  static func preview(_ preview: Vault.Preview, action: String, output: OutputOptions, all: Bool) {
    // The heading and the counts say "dry run"; the files between them read as a diff does.
    let lines = previewLines(preview, action: action, all: all)
    for (index, line) in lines.enumerated() {
      output.say(index == 0 || index == lines.count - 1 ? "dry run: " + line : line)
    }
    output.say("dry run: nothing was written")
  }

  static func change(_ change: Vault.Change, verb: String, output: OutputOptions, all: Bool) {
    switch change {
    case .unchanged(let head):
      output.say("unchanged, head is v\(head.number)")
    case .created(let version, let changes):
      output.say(
        "\(verb) v\(version.number) to \(version.app)/\(version.environment) (\(version.fileCount) files, \(ByteCount.format(version.totalSize)))"
          + (version.parent.map { "; changes against v\($0):" } ?? "; first version of the environment"))
      if version.parent != nil {
        for line in ChangePrinter.summary(changes, listing: all ? nil : listed) { output.say(line) }
      }
    }
  }

  /// A change as `--json` prints it: the shape the server's API answers with.
  struct ChangeJSON: Codable, Equatable {
    /// The new version, or the head when nothing changed.
    var version: Version
    var changes: [FileChange]
    var unchanged: Bool

    init(_ change: Vault.Change) {
      switch change {
      case .created(let version, let changes): (self.version, self.changes, unchanged) = (version, changes, false)
      case .unchanged(let head): (version, changes, unchanged) = (head, [], true)
      }
    }
  }

  /// A dry run as `--json` prints it: the preview, as the API's upload preview.
  struct PreviewJSON: Encodable {
    var dryRun = true
    var preview: Vault.Preview
  }
}
