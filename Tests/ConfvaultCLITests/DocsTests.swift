import Foundation
import Testing

/// The README and `docs/` stand alone for users: they name no file outside the repository, and they
/// document every exit code and every command the executable has.
@Suite struct DocsTests {
  static let root = Harness.packageRoot

  /// README.md and every Markdown file under docs/, as paths relative to the repository.
  static func documents() throws -> [String] {
    let docs = try FileManager.default.contentsOfDirectory(atPath: root + "/docs").filter { $0.hasSuffix(".md") }
    return ["README.md"] + docs.sorted().map { "docs/" + $0 }
  }

  static func read(_ path: String) throws -> String {
    try String(contentsOfFile: root + "/" + path, encoding: .utf8)
  }

  @Test("README and docs/ never reference a path outside the repository")
  func noPathOutside() throws {
    let documents = try Self.documents()
    #expect(documents.contains("docs/commands.md") && documents.contains("docs/exit-codes.md"))
    #expect(documents.contains("docs/archive-format.md"))
    for document in documents {
      for problem in Self.outsideReferences(in: try Self.read(document), of: document) {
        Issue.record("\(document): \(problem)")
      }
    }
  }

  @Test("the reference check catches a file outside the repository, however it is named")
  func referenceCheckCatches() {
    let text = """
      The contract is in [the product](../shared/PRODUCT.md), see PRODUCT.md and `../../etc/passwd`.
      The format: [format](docs/archive-format.md), [a missing page](docs/nothing.md), \(Self.root)/../x.
      A refusal names `config/../x`; a pattern:
      ```
      /notes.md
      ```
      """
    let problems = Self.outsideReferences(in: text, of: "README.md")
    #expect(problems.count == 5, "\(problems)")
  }

  @Test("every exit code the executable can return is in docs/exit-codes.md")
  func everyExitCode() throws {
    let codes = try Self.exitCodes()
    #expect(codes.isSuperset(of: [0, 1, 64, 65, 66, 73, 74, 75, 77]), "found \(codes.sorted())")
    let documented = try Self.read("docs/exit-codes.md")
    for code in codes.sorted() {
      #expect(documented.contains("\n| \(code) |"), "exit code \(code) has no row in docs/exit-codes.md")
    }
  }

  @Test("every command `confvault --help` lists is in docs/commands.md")
  func everyCommand() throws {
    let commands = try HelpText.commands()
    #expect(commands.contains(["push"]) && commands.contains(["env", "create"]), "\(commands)")
    let documented = try Self.read("docs/commands.md")
    for command in commands {
      let name = "confvault " + command.joined(separator: " ")
      #expect(documented.contains("`\(name)`") || documented.contains(name + " "), "\(name) is not in docs/commands.md")
    }
  }

  /// The exit codes the executable can return: those of the one mapping from failure kinds in
  /// Confvault.swift, every literal `ExitCode(N)` a command throws, 0, and 64 for what ArgumentParser
  /// refuses.
  static func exitCodes() throws -> Set<Int> {
    let folder = root + "/Sources/confvault"
    var codes: Set<Int> = [0, 64]
    let main = try String(contentsOfFile: folder + "/Confvault.swift", encoding: .utf8)
    let mapping = main.components(separatedBy: "enum ExitStatus")[1]
    codes.formUnion(numbers(after: "return ", in: mapping))
    for file in try FileManager.default.contentsOfDirectory(atPath: folder) where file.hasSuffix(".swift") {
      codes.formUnion(numbers(after: "ExitCode(", in: try String(contentsOfFile: folder + "/" + file, encoding: .utf8)))
    }
    return codes
  }

  /// The integers written right after `prefix` in `text`.
  static func numbers(after prefix: String, in text: String) -> [Int] {
    text.components(separatedBy: prefix).dropFirst().compactMap { Int(String($0.prefix { $0.isNumber })) }
  }

  /// What in a document points outside the repository: a relative link or a `../` path that leaves it
  /// or names nothing in it, a Markdown file that is not in it (PRODUCT.md), an absolute path into the
  /// folder that holds the repository.
  static func outsideReferences(in text: String, of document: String) -> [String] {
    let base = URL(fileURLWithPath: root + "/" + document).deletingLastPathComponent()
    var problems: [String] = []
    func inside(_ path: String) -> Bool {
      let resolved = URL(fileURLWithPath: path, relativeTo: base).standardizedFileURL.path
      return resolved.hasPrefix(root + "/") && FileManager.default.fileExists(atPath: resolved)
    }
    // Markdown links: [text](target); web links and anchors are not paths.
    for piece in text.components(separatedBy: "](").dropFirst() {
      let target = String(piece.prefix { $0 != ")" }).components(separatedBy: "#")[0]
      if target.isEmpty || target.contains("://") || target.hasPrefix("mailto:") { continue }
      if !inside(target) { problems.append("the link `\(target)` is not a file in the repository") }
    }
    // Words that are paths: one that climbs with `../`, one that climbs out of the repository's own
    // absolute path or names a file that exists beside it (the folder above may be /tmp, where the
    // README's examples write), and, outside code blocks (which hold commands and patterns), a
    // Markdown file.
    let separators = CharacterSet.whitespacesAndNewlines.union(CharacterSet(charactersIn: "`()[]<>\"',;"))
    let above = URL(fileURLWithPath: root).deletingLastPathComponent().path + "/"
    let prose = Set(withoutCodeBlocks(text).components(separatedBy: separators))
    for word in text.components(separatedBy: separators) where !word.isEmpty {
      let linked = text.contains("](\(word))")
      let standardized = URL(fileURLWithPath: word).standardizedFileURL.path
      if word.hasPrefix(above) && !standardized.hasPrefix(root + "/")
        && (word.hasPrefix(root + "/") || FileManager.default.fileExists(atPath: standardized))
      {
        problems.append("`\(word)` is outside the repository")
      } else if word.hasPrefix("../") && !linked && !inside(word) {
        problems.append("`\(word)` leaves the repository")
      } else if word.hasSuffix(".md") && prose.contains(word) && !word.contains("://") && !linked
        && !inside(word) && !FileManager.default.fileExists(atPath: root + "/" + word)
      {
        problems.append("`\(word)` is not a file in the repository")
      }
    }
    return problems
  }

  /// The text without its fenced code blocks.
  static func withoutCodeBlocks(_ text: String) -> String {
    text.components(separatedBy: "```").enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
      .joined(separator: "\n")
  }
}
