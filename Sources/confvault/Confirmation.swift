import ArgumentParser
import ConfvaultCore
import Foundation
import Logging

/// `--yes`, for the changes that ask before they are made.
struct ConfirmationOptions: ParsableArguments {
  @Flag(
    name: .shortAndLong,
    help:
      "Make a change to the production environment, or one that removes more than half of an environment's files, without asking (for scripts and cron)."
  )
  var yes = false
}

/// Asks before a change that is easy to regret: one to the production environment (from a terminal),
/// or one that removes more than half of an environment's files (anywhere).
///
/// On a terminal the change's preview is shown and the answer read from standard input; without a
/// terminal the change is refused (exit 64) unless `--yes` says it is meant.
struct ChangeGuard: Sendable {
  let service: any VaultService
  let yes: Bool
  let logger: Logger

  /// Why `preview` needs a confirmation, if it does: one line per reason.
  func reasons(_ preview: Vault.Preview) async throws -> [String] {
    guard !preview.changes.isEmpty else { return [] }
    var reasons: [String] = []
    let target = "\(preview.app)/\(preview.environment)"
    if try await service.app(preview.app, logger: logger).environment(preview.environment).isProduction {
      reasons.append("it changes \(target), the production environment")
    }
    let removed = preview.changes.filter { $0.kind == .removed }.count
    if let head = preview.head, removed > 0 {
      let held = try await service.show(app: preview.app, number: head, logger: logger).version.fileCount
      if removed * 2 > held {
        reasons.append("it removes \(removed) of the \(held) files of \(target)")
      }
    }
    return reasons
  }

  /// Returns when the change may be made, with whether someone confirmed this preview (then the change
  /// must be made against the head it showed); throws when it may not be made.
  ///
  /// - Parameter action: what the change is, for the messages (`pushing dev/`, `restoring v9`).
  @discardableResult
  func approve(_ preview: Vault.Preview, action: String) async throws -> Bool {
    guard !yes else { return false }
    let reasons = try await reasons(preview)
    guard !reasons.isEmpty else { return false }
    guard Terminal.isTerminal(STDIN_FILENO) else {
      let production = reasons.contains { $0.hasSuffix("the production environment") }
      throw OperationError(
        .usage,
        "not \(action): \(reasons.joined(separator: ", and ")), and there is no terminal to ask; nothing was changed. Add --yes to make this change from a script"
          + (production ? " (a cron job that changes production must say so with --yes)" : "")
      )
    }
    ProgressMeter.current?.isPaused = true
    defer { ProgressMeter.current?.isPaused = false }
    // Give a progress line a moment to be cleared before the preview.
    try? await Task.sleep(for: .milliseconds(300))
    for line in Report.previewLines(preview, action: action, all: false) { Terminal.error(line) }
    Terminal.error("This change needs a confirmation: \(reasons.joined(separator: ", and ")).")
    FileHandle.standardError.write(Data("Make this change? [y/N] ".utf8))
    let answer = readLine(strippingNewline: true)?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
    guard answer == "y" || answer == "yes" else {
      throw OperationError(.operationFailed, "not \(action): not confirmed; nothing was changed")
    }
    return true
  }
}
