import ArgumentParser
import ConfvaultCore
import Foundation

@main
struct Confvault: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "confvault",
    abstract: "Keep every version of an app's configuration; move it in and out as verifiable archives.",
    version: ConfvaultInfo.version,
    subcommands: [
      Init.self, Env.self, Push.self, Export.self, Import.self, Versions.self, Show.self, Diff.self,
      Restore.self, Sync.self, Checkout.self, Backup.self, Check.self, GC.self, Audit.self,
      Pack.self, Unpack.self, Inspect.self, Verify.self,
    ]
  )

  /// Runs the command and turns every failure into its documented exit code (PRODUCT.md, sysexits).
  static func main() {
    do {
      var command = try parseAsRoot()
      try command.run()
    } catch let error as any ConfvaultError {
      Terminal.error("confvault: \(error)")
      Foundation.exit(ExitStatus.code(for: error.kind))
    } catch {
      exit(withError: error)
    }
  }
}

/// The one mapping from a failure's kind to the process's exit code.
enum ExitStatus {
  static func code(for kind: FailureKind) -> Int32 {
    switch kind {
    case .operationFailed: return 1
    case .usage: return 64
    case .badInput: return 65
    case .inputUnreadable: return 66
    case .cannotCreateOutput: return 73
    case .ioError: return 74
    case .temporaryFailure: return 75
    case .permissionDenied: return 77
    }
  }
}
