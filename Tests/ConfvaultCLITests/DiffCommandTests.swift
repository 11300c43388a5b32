import Foundation
import Testing

/// `confvault diff` end to end: what a user reads, what a script parses, and a replayed history of
/// real-looking configuration checked against Python's json and PyYAML (docs/diff.md).
@Suite struct DiffCommandTests {
  /// Pushes each tree in turn to `development`: file name to content (a nil content removes the file);
  /// the files named in `executable` are made executable in the last version.
  @discardableResult
  static func pushHistory(_ store: StoreFixture, _ versions: [[String: Data?]], executable: Set<String> = []) throws
    -> String
  {
    let folder = store.folder.file("work")
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    for files in versions {
      for (name, content) in files {
        let path = folder + "/" + name
        if let content {
          try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
          try content.write(to: URL(fileURLWithPath: path))
          try FileManager.default.setAttributes(
            [.posixPermissions: executable.contains(name) && files == versions.last! ? 0o755 : 0o644],
            ofItemAtPath: path)
        } else {
          try FileManager.default.removeItem(atPath: path)
        }
      }
      try store.ok(["push", "--app", "inventory", "--env", "development", folder])
    }
    return folder
  }

  static func text(_ string: String) -> Data { Data(string.utf8) }

  @Test("a comment-only YAML change shows as text hunks; --text forces hunks for a key change")
  func commentsAndText() throws {
    let store = try StoreFixture()
    try Self.pushHistory(
      store,
      [
        ["values.yaml": Self.text("# two replicas in eu\nreplicas: 2\n"), "a.json": Self.text("{\"a\": 1}\n")],
        ["values.yaml": Self.text("# two replicas in eu and us\nreplicas: 2\n"), "a.json": Self.text("{\"a\": 2}\n")],
      ])
    let diff = try store.ok(["diff", "--app", "inventory", "2"])
    #expect(diff.contains("M values.yaml\n    note: no value changed: only comments, formatting or order\n"), "\(diff)")
    #expect(diff.contains("    -# two replicas in eu\n    +# two replicas in eu and us\n"), "\(diff)")
    #expect(diff.contains("a.json  a: 1 -> 2"))
    let text = try store.ok(["diff", "--app", "inventory", "2", "--text"])
    #expect(text.contains("    -{\"a\": 1}\n    +{\"a\": 2}\n") && !text.contains("a: 1 -> 2"), "\(text)")
  }

  @Test("--exit-code exits 1 when there are differences and 0 when there are none, as git does")
  func exitCode() throws {
    let store = try StoreFixture()
    try Self.pushHistory(store, [["a.json": Self.text("{\"a\": 1}\n")], ["a.json": Self.text("{\"a\": 2}\n")]])
    let changed = try store.run(["diff", "--app", "inventory", "2", "--exit-code"])
    #expect(changed.status == 1 && changed.stdout.contains("a: 1 -> 2") && changed.stderr.isEmpty, "\(changed)")
    let same = try store.run(["diff", "--app", "inventory", "2", "2", "--exit-code", "--stat"])
    #expect(same.status == 0 && same.stdout.contains("0 files changed"), "\(same)")
    #expect(try store.run(["diff", "--app", "inventory", "2", "--exit-code", "--json"]).status == 1)
    #expect(
      try store.run(["diff", "--app", "inventory", "2"]).status == 0, "without --exit-code, differences are success")
  }

  @Test("--json has plain objects with real JSON values; no output escapes slashes")
  func jsonValues() throws {
    let store = try StoreFixture()
    try Self.pushHistory(
      store,
      [
        ["s.json": Self.text(#"{"url": "https://a.example/v1", "limits": {"cpu": 1}, "tags": ["a"]}"#)],
        [
          "s.json": Self.text(
            #"{"url": "https://b.example/v2", "limits": {"cpu": 2, "memory": "1Gi"}, "tags": ["a", "b"]}"#)
        ],
      ])
    let run = try store.run(["diff", "--app", "inventory", "2", "--json"])
    #expect(!run.stdout.contains("_0") && !run.stdout.contains(#"\/"#), "\(run.stdout)")
    let json = try #require(try JSONSerialization.jsonObject(with: run.stdoutData) as? [String: Any])
    let file = try #require((json["files"] as? [[String: Any]])?.first)
    #expect(file["notes"] as? [String] == [])
    let keys = try #require(file["keys"] as? [[String: Any]])
    let byPath = Dictionary(uniqueKeysWithValues: keys.map { ($0["path"] as! String, $0) })
    #expect(
      byPath["url"]?["old"] as? String == "https://a.example/v1" && byPath["url"]?["kind"] as? String == "changed")
    #expect(byPath["limits.cpu"]?["new"] as? Int == 2)
    #expect(byPath["limits.memory"]?["new"] as? String == "1Gi" && byPath["limits.memory"]?["old"] == nil)
    #expect(byPath["tags[1]"]?["new"] as? String == "b" && byPath["tags[1]"]?["kind"] as? String == "added")
    let human = try store.ok(["diff", "--app", "inventory", "2"])
    #expect(human.contains(#"s.json  url: "https://a.example/v1" -> "https://b.example/v2""#), "\(human)")
  }

  @Test("a long change list is shortened to a summary; --all lists every file")
  func longLists() throws {
    let store = try StoreFixture()
    var first: [String: Data?] = [:]
    var second: [String: Data?] = [:]
    for index in 0..<60 {
      first[String(format: "f%02d.yaml", index)] = Self.text("n: \(index)\n")
      second[String(format: "f%02d.yaml", index)] = Self.text("n: \(index + 1)\n")
    }
    try Self.pushHistory(store, [first, second])
    let short = try store.ok(["diff", "--app", "inventory", "2"])
    #expect(short.contains("f49.yaml  n: 49 -> 50") && !short.contains("f50.yaml"), "\(short)")
    #expect(short.contains("… and 10 more files (--all lists every one)"))
    #expect(short.contains("60 files changed: 0 added, 0 removed, 60 modified"))
    let all = try store.ok(["diff", "--app", "inventory", "2", "--all"])
    #expect(all.contains("f59.yaml  n: 59 -> 60") && !all.contains("more files"))
    let stat = try store.ok(["diff", "--app", "inventory", "2", "--stat"])
    #expect(stat.contains("M f49.yaml") && !stat.contains("M f50.yaml") && stat.contains("10 more files"))
  }

  @Test("--env A --env B shows what a sync of B into A would change, as the README says")
  func environmentDirection() throws {
    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    let production = try store.copy("staging", to: "prod")
    try FileManager.default.removeItem(atPath: production + "/settings/app.yaml")
    try store.ok(["push", "--yes", "--app", "inventory", "--env", "production", production])
    let diff = try store.ok(["diff", "--app", "inventory", "--env", "production", "--env", "staging", "--stat"])
    #expect(diff.hasPrefix("diff inventory v2 -> v1 (production -> staging)"), "\(diff)")
    #expect(diff.contains("A settings/app.yaml"), "syncing staging into production adds the file: \(diff)")
    let preview = try store.ok(["sync", "--app", "inventory", "staging", "--dry-run"])
    #expect(preview.contains("settings/app.yaml"), "the sync preview agrees: \(preview)")
    let readme = try String(contentsOfFile: Harness.packageRoot + "/README.md", encoding: .utf8)
    #expect(
      readme.contains("diff --app inventory --env production --env staging   # what a sync of staging into production"))
  }

  @Test("a file whose content and executable bit both change is reported as a mode change too")
  func modeAndContent() throws {
    let store = try StoreFixture()
    try Self.pushHistory(
      store, [["hook.sh": Self.text("echo 1\n")], ["hook.sh": Self.text("echo 2\n")]], executable: ["hook.sh"])
    let diff = try store.ok(["diff", "--app", "inventory", "2"])
    #expect(diff.contains("M hook.sh  (mode 0644 -> 0755)\n    @@ -1,1 +1,1 @@\n    -echo 1\n    +echo 2\n"), "\(diff)")
    let stat = try store.ok(["diff", "--app", "inventory", "2", "--stat"])
    #expect(stat.contains("M hook.sh  (mode 0644 -> 0755)"), "\(stat)")
  }

  // MARK: A replayed history

  /// A history modelled on real repositories: Kubernetes manifests (several documents, dotted labels,
  /// named containers and env lists, a ConfigMap embedding a dashboard), Helm values with anchors, JSON
  /// settings with unnamed lists, comment edits, a CRLF file and a Latin-1 file.
  static func history() -> [[String: Data?]] {
    func deployment(image: String, version: String, args: [String], env: [(String, String)], replicas: Int) -> String {
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: grafana
        labels:
          app.kubernetes.io/name: grafana
      spec:
        ports:
        - name: http
          port: 3000
      ---
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: grafana
        labels:
          app.kubernetes.io/name: grafana
          app.kubernetes.io/version: "\(version)"
      spec:
        replicas: \(replicas)
        template:
          spec:
            containers:
            - name: grafana
              image: \(image)
              args:
      \(args.map { "        - \($0)" }.joined(separator: "\n"))
              env:
      \(env.map { "        - name: \($0.0)\n          value: \"\($0.1)\"" }.joined(separator: "\n"))
            - name: sidecar
              image: busybox:1.36
      """ + "\n"
    }
    func dashboard(_ panels: [String]) -> String {
      let body = panels.enumerated().map { "        {\"id\": \($0.offset), \"title\": \"\($0.element)\"}" }
      return """
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: dashboards
        data:
          overview.json: |
            {
              "panels": [
        \(body.joined(separator: ",\n"))
              ],
              "refresh": "30s"
            }
        """ + "\n"
    }
    func values(comment: String, tag: String, extra: Bool) -> String {
      """
      # \(comment)
      defaults: &defaults
        pullPolicy: IfNotPresent
        tag: "\(tag)"
      api:
        <<: *defaults
        port: 8080
      worker:
        <<: *defaults
      \(extra ? "  concurrency: 4\n" : "")
      """
    }
    func settings(hosts: [String], retries: Int?) -> String {
      let list = hosts.map { "{\"host\": \"\($0)\", \"weight\": 1}" }.joined(separator: ", ")
      return "{\n  \"upstreams\": [\(list)],\n" + (retries.map { "  \"retries\": \($0),\n" } ?? "")
        + "  \"endpoint\": \"https://api.example.com/v1\"\n}\n"
    }
    let args = ["--config=/etc/grafana/grafana.ini", "--homepath=/usr/share/grafana", "cfg:default.log.mode=console"]
    let env = [("GF_SECURITY_ADMIN_USER", "admin"), ("GF_AUTH_ANONYMOUS_ENABLED", "false")]
    let panels = (1...30).map { "Panel \($0)" }
    let ini = "[server]\r\nhost=db.internal\r\nport=5432\r\n[pool]\r\nsize=10\r\n"
    let latin1: [UInt8] = Array("# r".utf8) + [0xE9] + Array("glages\nville=Z".utf8) + [0xFC] + Array("rich\n".utf8)
    var versions: [[String: Data?]] = []
    versions.append([
      "deploy/grafana.yaml": text(
        deployment(image: "grafana/grafana:6.0.1", version: "6.0.1", args: args, env: env, replicas: 1)),
      "deploy/dashboards.yaml": text(dashboard(panels)),
      "charts/values.yaml": text(values(comment: "shared defaults", tag: "1.4.0", extra: false)),
      "settings/app.json": text(settings(hosts: ["a.internal", "b.internal"], retries: 3)),
      "legacy/db.ini": text(ini),
      "legacy/regional.properties": Data(latin1),
    ])
    // An image bump and its dotted version label.
    versions.append([
      "deploy/grafana.yaml": text(
        deployment(image: "grafana/grafana:6.2.2", version: "6.2.2", args: args, env: env, replicas: 1))
    ])
    // A list insertion in the middle, an env var added by name, replicas up.
    var moreArgs = args
    moreArgs.insert("--packaging=docker", at: 1)
    versions.append([
      "deploy/grafana.yaml": text(
        deployment(
          image: "grafana/grafana:6.2.2", version: "6.2.2", args: moreArgs,
          env: [
            ("GF_SECURITY_ADMIN_USER", "admin"), ("GF_SERVER_ROOT_URL", "https://grafana.example.com/"),
            ("GF_AUTH_ANONYMOUS_ENABLED", "true"),
          ], replicas: 2))
    ])
    // A comment edit only, and one line of a CRLF file.
    versions.append([
      "charts/values.yaml": text(values(comment: "shared defaults for api and worker", tag: "1.4.0", extra: false)),
      "legacy/db.ini": text(ini.replacingOccurrences(of: "size=10", with: "size=20")),
    ])
    // A few lines of an embedded dashboard; an upstream inserted into an unnamed list.
    var renamed = panels
    renamed[14] = "Latency p99"
    renamed.insert("Error budget", at: 20)
    versions.append([
      "deploy/dashboards.yaml": text(dashboard(renamed)),
      "settings/app.json": text(settings(hosts: ["a.internal", "c.internal", "b.internal"], retries: 3)),
    ])
    // Anchored defaults change under both users; a key removed; the Latin-1 file edited.
    versions.append([
      "charts/values.yaml": text(values(comment: "shared defaults for api and worker", tag: "1.5.0", extra: true)),
      "settings/app.json": text(settings(hosts: ["a.internal", "c.internal", "b.internal"], retries: nil)),
      "legacy/regional.properties": Data(latin1.map { $0 == 0xFC ? 0xF6 : $0 }),
    ])
    return versions
  }

  @Test(
    "a replayed history: every change shows, lines stay short, output stays near a unified diff's size, and key paths match Python's json and PyYAML"
  )
  func replayedHistory() throws {
    let store = try StoreFixture()
    let versions = Self.history()
    try Self.pushHistory(store, versions)
    // The trees as they stood after each version, to compare with Python and with diff -u.
    var trees: [[String: Data]] = []
    var tree: [String: Data] = [:]
    for files in versions {
      for (name, content) in files { tree[name] = content }
      trees.append(tree)
    }
    let scratch = store.folder.file("reference")
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    for number in 2...versions.count {
      let human = try store.ok(["diff", "--app", "inventory", "\(number)"])
      let lines = human.split(separator: "\n")
      #expect(lines.allSatisfy { $0.count <= 4_000 }, "v\(number): a line over 4,000 characters")
      let json = try #require(
        try JSONSerialization.jsonObject(
          with: try store.run(["diff", "--app", "inventory", "\(number)", "--json"]).stdoutData)
          as? [String: Any])
      let files = try #require(json["files"] as? [[String: Any]])
      #expect(Set(files.map { $0["path"] as! String }) == Set(versions[number - 1].keys), "v\(number)")
      var unified = 0
      for file in files {
        let path = file["path"] as! String
        let old = trees[number - 2][path]!
        let new = trees[number - 1][path]!
        try old.write(to: URL(fileURLWithPath: scratch + "/old"))
        try new.write(to: URL(fileURLWithPath: scratch + "/new"))
        unified += try Harness.shell("diff -u \(scratch)/old \(scratch)/new | tail -n +3").stdout.utf8.count
        guard path.hasSuffix(".json") || path.hasSuffix(".yaml") else {
          #expect(file["text"] != nil, "v\(number) \(path): a text file shows hunks")
          continue
        }
        let reference = try Harness.run(
          "/usr/bin/env", ["python3", Harness.fixtures + "/keypaths.py", scratch + "/old", scratch + "/new"])
        #expect(reference.status == 0, "\(reference)")
        let expected = try #require(try JSONSerialization.jsonObject(with: reference.stdoutData) as? [[String: Any]])
        let keys = file["keys"] as? [[String: Any]] ?? []
        #expect(
          Set(keys.map { $0["path"] as! String }) == Set(expected.map { $0["path"] as! String }),
          "v\(number) \(path): confvault \(keys.map { $0["path"]! }) vs Python \(expected.map { $0["path"]! })")
        for change in expected {
          let shownPath = change["path"] as! String
          #expect(
            human.contains("\(path)  \(shownPath.isEmpty ? "(document)" : shownPath): "),
            "v\(number): \(shownPath) missing")
          if let value = change["new"] as? String, !value.contains("\n") {
            #expect(human.contains("\"\(value)\""), "v\(number): new value \(value) missing")
          }
        }
        if expected.isEmpty {
          #expect(
            file["text"] != nil && (file["notes"] as? [String])?.isEmpty == false,
            "v\(number) \(path): comments show as text")
        }
      }
      #expect(
        human.utf8.count <= 3 * unified + 600,
        "v\(number): \(human.utf8.count) bytes against a unified diff's \(unified)")
    }
    // The particular changes a reader looks for.
    let bump = try store.ok(["diff", "--app", "inventory", "2"])
    #expect(
      bump.contains(
        #"[1].spec.template.spec.containers[name="grafana"].image: "grafana/grafana:6.0.1" -> "grafana/grafana:6.2.2""#),
      "\(bump)")
    #expect(bump.contains(#"[1].metadata.labels["app.kubernetes.io/version"]: "6.0.1" -> "6.2.2""#))
    let insertion = try store.ok(["diff", "--app", "inventory", "3"])
    #expect(insertion.contains(#"containers[name="grafana"].args[1]: added "--packaging=docker""#), "\(insertion)")
    #expect(
      insertion.contains(
        #"env[name="GF_SERVER_ROOT_URL"]: added {"name":"GF_SERVER_ROOT_URL","value":"https://grafana.example.com/"}"#))
    let comment = try store.ok(["diff", "--app", "inventory", "4"])
    #expect(comment.contains("    -# shared defaults\n    +# shared defaults for api and worker\n"), "\(comment)")
    #expect(
      comment.contains("    -size=10\n    +size=20\n") && !comment.contains(#"\x0d"#), "CRLF lines diff one by one")
    let dashboard = try store.ok(["diff", "--app", "inventory", "5"])
    #expect(
      dashboard.contains(#"    -    {"id": 14, "title": "Panel 15"},\#n    +    {"id": 14, "title": "Latency p99"},"#),
      "\(dashboard)")
    #expect(dashboard.contains(#"settings/app.json  upstreams[1]: added {"host":"c.internal","weight":1}"#))
    let latin = try store.ok(["diff", "--app", "inventory", "6"])
    #expect(
      latin.contains("    -ville=Z\u{FC}rich\n    +ville=Z\u{F6}rich\n") && latin.contains("read as Latin-1"),
      "\(latin)")
    #expect(
      latin.contains("charts/values.yaml  api.tag: \"1.4.0\" -> \"1.5.0\"")
        && latin.contains("worker.concurrency: added 4"))
  }
}
