import Foundation
import Testing

@testable import ConfvaultCore

/// The diff model behind `confvault diff`, the API and the page (docs/diff.md).
@Suite struct ContentDiffTests {
  static let file = ManifestFile(
    path: "f", size: 1, mode: .regular, sha256: SHA256Hex(String(repeating: "0", count: 64))!)

  /// The detail and notes of a change from `old` to `new` in a file named `path`.
  func diff(_ path: String, _ old: String, _ new: String, asText: Bool = false) -> FileDiff {
    let change = FileChange(path: path, kind: .modified, old: Self.file, new: Self.file)
    return ContentDiff.diff(change, Data(old.utf8), Data(new.utf8), asText: asText)
  }

  func keys(_ path: String, _ old: String, _ new: String) -> [KeyChange] {
    let result = diff(path, old, new)
    guard case .keys(let keys) = result.detail else {
      Issue.record("no key changes: \(result.detail) \(result.notes)")
      return []
    }
    return keys
  }

  func hunks(_ result: FileDiff) -> [String] {
    guard case .text(let lines) = result.detail else {
      Issue.record("no text hunks: \(result.detail)")
      return []
    }
    return lines
  }

  @Test("YAML is read with the 1.2 core schema: plain scalars with colons, dates and yes stay strings")
  func coreSchema() {
    let changes = keys(
      "d.yaml",
      "image: grafana/grafana:6.0.1\nwhen: 2024-01-01\nflag: yes\ntime: 1:20\nport: 8080\nratio: 0.5\nnone: ~\n",
      "image: grafana/grafana:6.2.2\nwhen: 2024-01-02\nflag: no\ntime: 1:30\nport: \"8080\"\nratio: 0.75\nnone: 0x1F\n")
    let byPath = Dictionary(uniqueKeysWithValues: changes.map { ($0.path, $0) })
    #expect(
      byPath["image"]?.old == .string("grafana/grafana:6.0.1")
        && byPath["image"]?.new == .string("grafana/grafana:6.2.2"))
    #expect(byPath["when"]?.new == .string("2024-01-02") && byPath["flag"]?.old == .string("yes"))
    #expect(byPath["time"]?.new == .string("1:30"))
    #expect(byPath["port"]?.old == .integer(8080) && byPath["port"]?.new == .string("8080"))
    #expect(
      byPath["ratio"]?.new == .number(0.75) && byPath["none"]?.old == .null && byPath["none"]?.new == .integer(31))
    #expect(byPath["image"]?.description == #"image: "grafana/grafana:6.0.1" -> "grafana/grafana:6.2.2""#)
  }

  @Test("several YAML documents are an array of documents; anchors and merge keys are resolved")
  func documentsAndMerges() {
    let multi = keys(
      "k.yaml", "kind: Service\n---\nkind: Deployment\nspec:\n  replicas: 1\n",
      "kind: Service\n---\nkind: Deployment\nspec:\n  replicas: 3\n")
    #expect(multi.map(\.path) == ["[1].spec.replicas"])
    let base = "base: &base\n  timeout: 5\n  retries: 2\nprod:\n  <<: *base\n  retries: 9\n"
    let merged = keys("m.yaml", base, base.replacingOccurrences(of: "timeout: 5", with: "timeout: 7"))
    #expect(merged.map(\.path) == ["base.timeout", "prod.timeout"], "the merged copy changes with its anchor")
    let override = keys("m.yaml", base, base.replacingOccurrences(of: "retries: 9", with: "retries: 10"))
    #expect(override.map(\.path) == ["prod.retries"] && override.first?.old == .integer(9))
  }

  @Test("an alias bomb is stopped early and the file is compared as text", .timeLimit(.minutes(1)))
  func aliasBomb() {
    var lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in 1...9 {
      lines.append(
        "a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 9).joined(separator: ", ") + "]")
    }
    let bomb = lines.joined(separator: "\n") + "\n"
    let result = diff("b.yaml", bomb, bomb + "end: true\n")
    #expect(hunks(result).contains("+end: true"))
    #expect(
      result.notes.last?.hasSuffix(
        "the new version nests too deep or expands too far (aliases) to read as YAML; compared as text") == true,
      "\(result.notes)")
    // A `*` in a comment or a value is no alias: the file is still compared by keys.
    #expect(
      keys("s.yaml", "# see *note\nglob: '*.yaml'\nn: 1\n", "# see *note\nglob: '*.yaml'\nn: 2\n").map(\.path) == ["n"])
  }

  @Test("duplicate JSON keys are reported; the last one counts, as in Python and JavaScript")
  func duplicateKeys() {
    let result = diff(
      "d.json", #"{"metadata": {"name": "a"}}"#, #"{"metadata": {"name": "b", "name": "a"}}"#)
    #expect(
      result.notes == [
        "new version: duplicate key metadata.name; the last one counts",
        "no value changed: only comments, formatting or order",
      ])
    guard case .text = result.detail else {
      Issue.record("the last value is the same: no key changed, so the text is shown: \(result.detail)")
      return
    }
    let changed = keys("d.json", #"{"a": 1, "a": 2}"#, #"{"a": 3}"#)
    #expect(changed.first?.old == .integer(2))
  }

  @Test("key paths quote keys with dots, slashes, spaces and leading digits")
  func keyPaths() {
    let changes = keys(
      "l.json",
      #"{"metadata": {"labels": {"app.kubernetes.io/version": "1", "a b": 1, "": 1, "0x": 1, "ok_key-2": 1}}}"#,
      #"{"metadata": {"labels": {"app.kubernetes.io/version": "2", "a b": 2, "": 2, "0x": 2, "ok_key-2": 2}}}"#)
    #expect(
      Set(changes.map(\.path)) == [
        #"metadata.labels["app.kubernetes.io/version"]"#, #"metadata.labels["a b"]"#, #"metadata.labels[""]"#,
        #"metadata.labels["0x"]"#, "metadata.labels.ok_key-2",
      ])
    #expect(
      keys("r.json", "1", "2").map(\.path) == [""]
        && keys("r.json", "1", "2").first?.description == "(document): 1 -> 2")
  }

  @Test("arrays are compared by element: by name where elements carry one, else along a common subsequence")
  func arrays() {
    let byName = keys(
      "p.yaml",
      "containers:\n- name: app\n  image: app:1\n- name: proxy\n  image: envoy:1\n",
      "containers:\n- name: proxy\n  image: envoy:2\n- name: app\n  image: app:1\n- name: log\n  image: fluent:1\n")
    #expect(byName.map(\.path) == [#"containers[name="proxy"].image"#, #"containers[name="log"]"#])
    #expect(byName.last?.kind == .added)
    let inserted = keys("a.json", #"{"args": ["a", "b", "c", "d"]}"#, #"{"args": ["a", "x", "b", "c", "d"]}"#)
    #expect(inserted.map(\.description) == [#"args[1]: added "x""#])
    let removed = keys("a.json", #"{"args": ["a", "b", "c"]}"#, #"{"args": ["a", "c"]}"#)
    #expect(removed.map(\.description) == [#"args[1]: removed "b""#])
    let edited = keys("a.json", #"[{"v": 1}, {"v": 2}, {"v": 3}]"#, #"[{"v": 1}, {"v": 20}, {"v": 3}]"#)
    #expect(edited.map(\.description) == ["[1].v: 2 -> 20"])
  }

  @Test("a string of several lines is diffed as text; long values are shortened in the line, whole in JSON")
  func multilineAndLongValues() throws {
    let dashboard = (1...40).map { "  \"panel\($0)\": \($0)," }.joined(separator: "\n")
    let changed = dashboard.replacingOccurrences(of: "\"panel20\": 20", with: "\"panel20\": 21")
    let old = try JSONEncoder().encode(["data": ["dashboard.json": dashboard]])
    let new = try JSONEncoder().encode(["data": ["dashboard.json": changed]])
    let change = FileChange(path: "c.json", kind: .modified, old: Self.file, new: Self.file)
    guard case .keys(let keys) = ContentDiff.diff(change, old, new).detail, let key = keys.first else {
      Issue.record("no key change")
      return
    }
    #expect(key.path == #"data["dashboard.json"]"# && !key.description.contains("\n"))
    #expect(key.text?.contains(#"-  "panel20": 20,"#) == true && key.text?.contains(#"+  "panel20": 21,"#) == true)
    #expect(key.text!.count < 12, "a few lines of context, not the whole text")
    let long = String(repeating: "x", count: 5_000)
    let cut = self.keys("l.yaml", "v: a\n", "v: \(long)\n").first!
    #expect(cut.description.count < 300 && cut.description.contains("…(+"))
    let json = String(decoding: try JSONCoding.encoder().encode(cut), as: UTF8.self)
    #expect(json.contains(long), "JSON carries the value whole")
  }

  @Test("key changes encode as plain objects with real JSON values, and decode back")
  func keyChangeJSON() throws {
    let changes = keys(
      "j.json", #"{"url": "https://a.example/x", "obj": {"n": 1}, "gone": null}"#,
      #"{"url": "https://b.example/x", "obj": {"n": [1, 2]}, "new": true}"#)
    let data = try JSONCoding.encoder().encode(changes)
    let text = String(decoding: data, as: UTF8.self)
    #expect(!text.contains("_0") && !text.contains(#"\/"#))
    let objects = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    let byPath = Dictionary(uniqueKeysWithValues: objects.map { ($0["path"] as! String, $0) })
    #expect(byPath["obj.n"]?["new"] as? [Int] == [1, 2] && byPath["obj.n"]?["old"] as? Int == 1)
    #expect(byPath["gone"]?["kind"] as? String == "removed" && byPath["gone"]?["old"] is NSNull)
    #expect(byPath["gone"]?.keys.contains("new") == false && byPath["new"]?["new"] as? Bool == true)
    #expect(try JSONCoding.decoder().decode([KeyChange].self, from: data) == changes)
  }

  @Test("comment-only and formatting-only changes are shown as text hunks under the file")
  func commentsAndFormatting() {
    let result = diff("c.yaml", "# replicas for eu\nreplicas: 3\n", "# replicas for eu and us\nreplicas: 3\n")
    #expect(hunks(result) == ["@@ -1,2 +1,2 @@", "-# replicas for eu", "+# replicas for eu and us", " replicas: 3"])
    #expect(result.notes == ["no value changed: only comments, formatting or order"])
    let forced = diff("c.json", "{\"a\": 1}\n", "{\"a\": 2}\n", asText: true)
    #expect(hunks(forced) == ["@@ -1,1 +1,1 @@", "-{\"a\": 1}", "+{\"a\": 2}"])
  }

  @Test("CRLF and Latin-1 files are text; line endings show only when they change")
  func endingsAndEncodings() {
    let crlf = diff("w.ini", "a=1\r\nb=2\r\nc=3\r\n", "a=1\r\nb=5\r\nc=3\r\n")
    #expect(hunks(crlf) == ["@@ -1,3 +1,3 @@", " a=1", "-b=2", "+b=5", " c=3"] && crlf.notes.isEmpty)
    let endings = diff("w.ini", "a=1\nb=2\n", "a=1\r\nb=2\r\n")
    #expect(hunks(endings).isEmpty && endings.notes == ["line endings: LF -> CRLF", "only line endings changed"])
    let change = FileChange(path: "l.txt", kind: .modified, old: Self.file, new: Self.file)
    let latin = ContentDiff.diff(
      change, Data([0x63, 0x61, 0x66, 0xE9, 0x3D, 0x31, 0x0A]), Data([0x63, 0x61, 0x66, 0xE9, 0x3D, 0x32, 0x0A]))
    #expect(hunks(latin) == ["@@ -1,1 +1,1 @@", "-caf\u{E9}=1", "+caf\u{E9}=2"])
    #expect(latin.notes == ["read as Latin-1 (not UTF-8)"])
    let binary = ContentDiff.diff(change, Data([0, 1]), Data([0, 2]))
    guard case .sizes = binary.detail else {
      Issue.record("a NUL byte makes a file binary")
      return
    }
  }

  @Test("text diffs stay fast: every line changed, every tenth line changed, and a cap beyond", .timeLimit(.minutes(1)))
  func boundedTextDiff() throws {
    let every = diff("t.txt", (0..<100_000).map { "a\($0)\n" }.joined(), (0..<100_000).map { "b\($0)\n" }.joined())
    #expect(hunks(every).count == 200_001)
    let old = (0..<100_000).map { "line \($0)\n" }
    var new = old
    for index in stride(from: 0, to: new.count, by: 10) { new[index] = "changed \(index)\n" }
    let tenth = hunks(diff("t.txt", old.joined(), new.joined()))
    #expect(tenth.count { $0.hasPrefix("-") } == 10_000 && tenth.count { $0.hasPrefix("+") } == 10_000)
    // Without unique lines to anchor on, Myers's algorithm is capped: past its budget, no hunks.
    let a = (0..<2_000).map { $0 % 2 }
    let b = (0..<2_000).map { ($0 / 3) % 2 }
    var budget = 1_000
    #expect(throws: LineDiff.TooLarge.self) { try LineDiff.script(a, b, budget: &budget) }
  }

  @Test("an edit script rebuilds the new side from the old one", arguments: 0..<40)
  func scriptRebuilds(seed: Int) throws {
    var generator = SeededGenerator(seed: UInt64(seed + 1))
    let a = (0..<Int.random(in: 0...60, using: &generator)).map { _ in Int.random(in: 0...5, using: &generator) }
    let b = (0..<Int.random(in: 0...60, using: &generator)).map { _ in Int.random(in: 0...5, using: &generator) }
    let script = try LineDiff.script(a, b)
    #expect(script.filter { $0.mark != .insert }.map { a[$0.old] } == a)
    #expect(script.filter { $0.mark != .delete }.map { b[$0.new] } == b)
    #expect(script.allSatisfy { $0.mark != .equal || a[$0.old] == b[$0.new] })
    // With no line that occurs once on each side, the alignment is Myers's alone, which is minimal.
    let doubled = try LineDiff.script(a + a, b + b)
    #expect(doubled.count { $0.mark == .equal } == Self.lcs(a + a, b + b))
  }

  static func lcs(_ a: [Int], _ b: [Int]) -> Int {
    var row = [Int](repeating: 0, count: b.count + 1)
    for x in a {
      var diagonal = 0
      for (j, y) in b.enumerated() {
        let above = row[j + 1]
        row[j + 1] = x == y ? diagonal + 1 : max(row[j + 1], row[j])
        diagonal = above
      }
    }
    return row[b.count]
  }
}

/// A small deterministic generator (SplitMix64), so a failing case can be run again.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
