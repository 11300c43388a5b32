import Foundation
import Testing

/// Progress on standard error for long work: redrawn on one line on a terminal, absent otherwise.
@Suite struct ProgressTests {
  @Test("a 50,000-file import shows progress on a terminal, and none when standard error is a file")
  func progressOnlyOnTerminal() throws {
    let store = try StoreFixture()
    let archive = store.folder.file("many.tar.gz")
    let made = try Harness.run(
      "/usr/bin/env",
      [
        "python3", "-c",
        """
        import io, sys, tarfile
        with tarfile.open(sys.argv[1], "w:gz", format=tarfile.PAX_FORMAT) as tar:
            for n in range(50000):
                data = b'{"n": %d}\\n' % n
                info = tarfile.TarInfo("config/%02d/%05d.json" % (n % 100, n))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        """,
        archive,
      ])
    #expect(made.status == 0, "\(made)")
    var environment = store.environment
    environment["CONFVAULT_BIN"] = Harness.binary
    let arguments = ["import", archive, "--plain", "--app", "inventory", "--env", "development"]
    let terminal = try Harness.run(
      "/usr/bin/env", ["python3", Harness.fixtures + "/pty_run.py", "--", Harness.binary] + arguments,
      environment: environment)
    #expect(terminal.status == 0, "\(terminal.stdout.suffix(500))")
    #expect(terminal.stdout.contains("imported as v1"))
    let redraws = terminal.stdout.components(separatedBy: "\r\u{1B}[Kimporting").count - 1
    #expect(redraws >= 1, "progress was drawn on the terminal: \(terminal.stdout.suffix(800))")
    #expect(terminal.stdout.contains(" files, ") && terminal.stdout.contains("/s"))
    #expect(!terminal.stdout.contains("49,839"), "no line per file")

    // The same import (a dry run: it reads the whole archive) with standard error going to a file:
    // no progress, no control characters.
    let piped = try store.run(["import", archive, "--plain", "--app", "inventory", "--env", "staging", "--dry-run"])
    #expect(piped.status == 0 && piped.stdout.contains("dry run"), "\(piped)")
    #expect(piped.stderr.isEmpty, "no progress into a file: \(piped)")
  }
}
