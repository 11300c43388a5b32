import Foundation
import Testing

/// The web page in a real browser: Debian's headless Chromium driven through WebDriver (Debian's
/// chromium-driver, Python's selenium) by `Fixtures/browser.py`, over `confvault serve`.
///
/// Needs `chromium`, `chromium-driver` and `pip install selenium`, which `make setup` installs. The
/// screenshots of each step are kept in `.build/screenshots/browser/` (git-ignored) for a person to
/// look at.
@Suite struct BrowserTests {
  static let screenshots = Harness.packageRoot + "/.build/screenshots/browser"

  @Test(
    "the page in headless Chromium: sign in, colours, upload, preview, Confirm, refusal, download, restore, viewer",
    .timeLimit(.minutes(5)))
  func page() throws {
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
      try #require(FileManager.default.isExecutableFile(atPath: tool), "\(tool) is missing: run `make setup`")
    }
    let selenium = try Harness.run("/usr/bin/env", ["python3", "-c", "import selenium"])
    try #require(selenium.status == 0, "Python's selenium is missing: run `make setup`. \(selenium)")

    // All three colours: v1 (development) synced once, v2 (staging) the current production, v3 never.
    let store = try StoreFixture()
    try store.ok([
      "push", "--app", "inventory", "--env", "development", Harness.samples + "/development", "-m", "dev one",
    ])
    try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging", "-m", "staging one"])
    try store.ok(["sync", "--yes", "--app", "inventory", "1"])
    let second = try store.copy("development", to: "dev2")
    try store.folder.write("dev2/flags.yaml", "beta: true\n")
    try store.ok(["push", "--app", "inventory", "--env", "development", second, "-m", "dev two"])
    try store.ok(["sync", "--yes", "--app", "inventory", "2"])
    let statuses = Dictionary(
      uniqueKeysWithValues: try store.versions().map { ($0["number"] as! Int, $0["status"] as! String) })
    try #require(statuses == [1: "synced", 2: "current-production", 3: "not-synced"], "\(statuses)")

    let passwords = ["ana": "ana-page-password", "vic": "vic-page-password"]
    for (name, role) in [("ana", "releaser"), ("vic", "viewer")] {
      let added = try store.run(["user", "add", name, "--role", role], input: passwords[name]! + "\n")
      try #require(added.status == 0, "\(added)")
    }

    // The backup to upload: development's head with one JSON value changed, so that the preview
    // shows its key path. The hostile one: an archive with a symbolic link inside.
    let upload = try store.copy("development", to: "upload")
    try store.folder.write("upload/flags.yaml", "beta: true\n")
    let warehouse = upload + "/settings/warehouse.json"
    let original = try String(contentsOfFile: warehouse, encoding: .utf8)
    let changed = original.replacingOccurrences(of: "\"timeoutSeconds\": 30", with: "\"timeoutSeconds\": 45")
    try #require(changed != original, "the sample's warehouse.json has `\"timeoutSeconds\": 30`")
    try Data(changed.utf8).write(to: URL(fileURLWithPath: warehouse))
    let archive = store.folder.file("upload.tar.gz")
    let packed = try store.ok(["pack", upload, "-o", archive, "--app", "inventory"])
    let packedTree = packed.split(separator: "\n").first { $0.hasPrefix("tree ") }.map { String($0.dropFirst(5)) }
    let hostileFolder = store.folder.file("hostile")
    try Harness.archives(["hostile", hostileFolder])
    let hostile = hostileFolder + "/symlink.tar.gz"
    try #require(FileManager.default.fileExists(atPath: hostile))

    let downloads = store.folder.file("downloads")
    try? FileManager.default.removeItem(atPath: Self.screenshots)
    try FileManager.default.createDirectory(atPath: Self.screenshots, withIntermediateDirectories: true)
    print("BrowserTests: screenshots in \(Self.screenshots)")

    let server = try ServerProcess(store: store)
    defer { server.stop() }
    try #require(!server.baseURL.isEmpty)
    let browser = try Harness.run(
      "/usr/bin/env",
      [
        "python3", Harness.fixtures + "/browser.py", "--base", server.baseURL,
        "--user", "ana", "--password", passwords["ana"]!, "--viewer", "vic", "--viewer-password", passwords["vic"]!,
        "--upload", archive, "--hostile", hostile, "--screenshots", Self.screenshots, "--downloads", downloads,
        "--environment", "development", "--restore-into", "staging",
        "--expect-key", "warehouse.timeoutSeconds: 30 -> 45",
        "--expect-refusal", "config/link.json", "--expect-refusal", "not a regular file",
        "--timeout", "120",
      ])
    try #require(
      browser.status == 0,
      "browser.py failed (screenshots, failure.png and failure.html in \(Self.screenshots)):\n\(browser)")

    var results: [String: String] = [:]
    for line in browser.stdout.split(separator: "\n") where line.hasPrefix("RESULT ") {
      let pair = line.dropFirst(7).split(separator: "=", maxSplits: 1)
      if pair.count == 2 { results[String(pair[0])] = String(pair[1]) }
    }
    let uploaded = try #require(results["upload-version"].flatMap { Int($0) }, "\(browser.stdout)")
    let restored = try #require(results["restore-version"].flatMap { Int($0) }, "\(browser.stdout)")
    let downloaded = try #require(results["download"], "\(browser.stdout)")
    #expect(uploaded == 4 && restored == 5, "one version from the upload, one from the restore: \(results)")

    // What the clicks did, as the CLI sees the store: the upload's version with the packed tree, the
    // restore of it into staging, production untouched (the sync was only previewed), and no version
    // from the refused upload.
    let versions = try store.versions()
    #expect(versions.map { $0["number"] as? Int } == [5, 4, 3, 2, 1], "\(versions)")
    let four = try #require(versions.first { $0["number"] as? Int == uploaded })
    #expect(four["environment"] as? String == "development" && four["author"] as? String == "ana")
    #expect(four["origin"] as? String == "import" && four["parent"] as? Int == 3)
    #expect(four["status"] as? String == "not-synced")
    #expect(packedTree != nil && four["treeDigest"] as? String == packedTree, "\(four) vs \(packed)")
    let five = try #require(versions.first { $0["number"] as? Int == restored })
    #expect(five["environment"] as? String == "staging" && five["restoredFrom"] as? Int == uploaded)
    #expect(try store.heads() == ["development": uploaded, "staging": restored, "production": 2])
    let audit = try store.json(["audit", "--app", "inventory"]) as? [[String: Any]] ?? []
    #expect(audit.contains { $0["action"] as? String == "import" && $0["version"] as? Int == uploaded })
    #expect(audit.contains { $0["action"] as? String == "export" && $0["version"] as? Int == uploaded })

    // The file the browser downloaded is a whole, verifiable archive of the upload's version.
    #expect(downloaded.hasSuffix("/inventory-development-v\(uploaded).tar.gz"), "\(downloaded)")
    let verified = try Harness.confvault(["verify", downloaded])
    #expect(verified.status == 0, "\(verified)")
    #expect(packedTree != nil && verified.stdout.contains(packedTree ?? "-"), "\(verified)")

    let shots = try FileManager.default.contentsOfDirectory(atPath: Self.screenshots).filter { $0.hasSuffix(".png") }
    #expect(shots.count >= 15, "a screenshot per step: \(shots.sorted())")
    for shot in shots {
      let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.screenshots + "/" + shot)).prefix(8)
      #expect(bytes == Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]), "\(shot) is a PNG")
    }
  }
}
