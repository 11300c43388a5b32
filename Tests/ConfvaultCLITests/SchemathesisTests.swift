import Foundation
import Testing

/// The HTTP API against its contract: schemathesis (Python's property-based API tester, which
/// `make setup` installs) reads the OpenAPI document the server serves at `/api/v1/openapi.yaml`,
/// generates requests for every operation (its examples, boundary values, random and invalid data,
/// and sequences that follow the document's links, such as an upload and its apply), and checks
/// that no answer is a server error and that every status, content type, header and body is the
/// one the document gives.
///
/// Destructive calls are part of the run: schemathesis may create apps and environments, delete
/// environments (`scratch` is made for the example of that operation to delete), sync and restore,
/// in any order. Each of those leaves the store in a state the document covers (a deleted
/// environment is a 404 later, an existing name a 409), so any order must pass.
@Suite struct SchemathesisTests {
  /// Test cases per operation and phase; with the time limit below, a run stays under two minutes.
  static let maxExamples = 40
  /// Seconds before schemathesis is stopped (`timeout` exits 124 then, and the test fails).
  static let timeLimit = 110
  /// No 5xx, and every status, content type, declared header and JSON body as the document says.
  static let checks = [
    "not_a_server_error", "status_code_conformance", "content_type_conformance", "response_headers_conformance",
    "response_schema_conformance",
  ]

  @Test(
    "schemathesis: every API answer matches openapi.yaml and none is a server error",
    .timeLimit(.minutes(3)))
  func conformance() throws {
    let installed = try Harness.run("/usr/bin/env", ["python3", "-c", "import schemathesis"])
    try #require(installed.status == 0, "Python's schemathesis is missing: run `make setup`. \(installed)")

    let store = try StoreFixture()
    try store.ok(["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"])
    try store.ok(["env", "create", "--app", "inventory", "scratch"])
    let created = try store.run(["token", "create", "--name", "schemathesis", "--role", "admin"])
    try #require(created.status == 0, "\(created)")
    let token = created.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    try #require(!token.isEmpty && !token.contains(" "), "token create prints the token alone: \(created)")

    let server = try ServerProcess(store: store)
    defer { server.stop() }
    try #require(!server.baseURL.isEmpty)

    // Run in the fixture's folder, so that nothing schemathesis writes lands in the package.
    let run = try Harness.run(
      "/usr/bin/env",
      [
        "timeout", "--kill-after=10", String(Self.timeLimit),
        "python3", "-m", "schemathesis.cli", "run", server.baseURL + "/api/v1/openapi.yaml",
        "--url", server.baseURL,
        "--header", "Authorization: Bearer \(token)",
        "--checks", Self.checks.joined(separator: ","),
        "--max-examples", String(Self.maxExamples),
        "--request-timeout", "30",
        "--generation-database", "none",
        "--no-color",
      ],
      in: store.folder.path)
    #expect(
      run.status == 0,
      """
      schemathesis found answers that break openapi.yaml (exit \(run.status); 124: stopped after \(Self.timeLimit) s):
      \(run.stdout)
      \(run.stderr)
      """)
    #expect(server.stop() == 0, "the server stops cleanly after the run")
  }
}
