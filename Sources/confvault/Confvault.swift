import ArgumentParser
import CMalloc
import ConfvaultCore
import Foundation
import Logging

@main
struct Confvault: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "confvault",
    abstract: "Keep every version of an app's configuration; move it in and out as verifiable archives.",
    subcommands: [
      Init.self, Env.self, Status.self, Push.self, Export.self, Import.self, Versions.self, Show.self, Diff.self,
      Restore.self, Sync.self, Checkout.self, Backup.self, Check.self, GC.self, Audit.self,
      Pack.self, Unpack.self, Inspect.self, Verify.self, Serve.self, User.self, Token.self, StoreCommand.self,
    ]
  )

  // `confvault --version` is answered in `main` before parsing. Neither `CommandConfiguration(version:)`
  // nor a flag of the root: ArgumentParser would show the one in every subcommand's help and let the
  // other take `export --version N` away from export.

  /// `confvault` alone prints the help.
  func run() async throws {
    throw CleanExit.helpRequest(self)
  }

  /// Runs the command and turns every failure into its documented exit code (docs/exit-codes.md, sysexits).
  static func main() async {
    // glibc keeps what was freed for reuse, in an arena per thread that allocates, and raises the
    // size it maps separately (and unmaps when freed) as large blocks come and go, so a 100,000-file
    // push's lists of 15 MiB were freed into the heap and never given back. Two arenas, and blocks of
    // 4 MiB or more always mapped on their own, took that push's peak from 224 MiB to 151 MiB.
    //
    // A command has one arena: with two, what its threads freed into the second was not there for the
    // first to reuse, and a 100,000-file push peaked 2 to 5 MiB higher, by the threads' timing. Its
    // threads take small blocks from their own caches, unlocked, and took no longer. The server keeps
    // two: its threads take and free larger blocks at once, and with one they waited on its lock
    // (wrk's requests a second were 5 to 10% fewer). `check` keeps four, one for each of its busy
    // threads (the line maker, the content half, two hashing workers): with two, the maker and the
    // content half waited on an arena's lock hundreds of times in a check of the replay fixture
    // (`perf sched`), which took 158.2 ms (median of 20, in turns) against 148.4 with four.
    let command = CommandLine.arguments.dropFirst().first
    mallopt(M_ARENA_MAX, command == "check" ? 4 : command == "serve" ? 2 : 1)
    mallopt(M_MMAP_THRESHOLD, 4 << 20)
    if Array(CommandLine.arguments.dropFirst()) == ["--version"] {
      print(ConfvaultInfo.version)
      return
    }
    refuseUnknownCommand(Array(CommandLine.arguments.dropFirst()))
    let start = ContinuousClock.now
    defer {
      if CommandLine.arguments.contains("--verbose") {
        var logger = Logger(label: "confvault")
        logger.logLevel = .debug
        logger.debug("command finished", metadata: ["took": "\(ContinuousClock.now - start)"])
      }
    }
    do {
      var command = try parseAsRoot()
      if var appCommand = command as? any AppCommand {
        try await appCommand.resolveApp()
        command = appCommand
      }
      // The server stops on SIGTERM and SIGINT by its own graceful shutdown.
      if !(command is Serve) { Interrupts.removeTemporaryFilesOnStop() }
      if var command = command as? any AsyncParsableCommand {
        try await command.run()
      } else {
        try command.run()
      }
      await OpenStores.closeAll()
    } catch let error as any ConfvaultError {
      await OpenStores.closeAll()
      // Messages may quote what an archive or the store holds; each line is escaped, the line breaks kept.
      let message = "\(error)".split(separator: "\n", omittingEmptySubsequences: false).map { safe(String($0)) }
      Terminal.error(
        "confvault: " + message.joined(separator: "\n") + (error.hint.map { "; " + Advice.words(for: $0) } ?? ""))
      Foundation.exit(ExitStatus.code(for: error.kind))
    } catch {
      await OpenStores.closeAll()
      exit(withError: error)
    }
  }
}

extension Confvault {
  /// A first word that names no command (`confvault psuh --app …`) is answered with the commands
  /// it is closest to, before the parser would complain about the options that follow it.
  static func refuseUnknownCommand(_ arguments: [String]) {
    guard let word = arguments.first, !word.hasPrefix("-") else { return }
    let names = configuration.subcommands.map { $0._commandName } + ["help"]
    guard !names.contains(word) else { return }
    let close = names.map { ($0, editDistance($0, word)) }.filter { $0.1 <= 2 }.sorted { $0.1 < $1.1 }.map(\.0)
    Terminal.error(
      "confvault: unknown command `\(safe(word))`"
        + (close.isEmpty ? "" : "; did you mean `\(close.joined(separator: "` or `"))`?")
        + " (`confvault --help` lists them)")
    Foundation.exit(ExitStatus.code(for: .usage))
  }

  /// The Levenshtein distance: how many letters to insert, delete or replace to make one word the other.
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    var previous = Array(0...b.count)
    for (i, x) in a.enumerated() {
      var current = [i + 1]
      for (j, y) in b.enumerated() {
        current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
      }
      previous = current
    }
    return previous[b.count]
  }
}

/// What the command line tells a person to do about a failure, in its own words (flags, commands).
enum Advice {
  static func words(for hint: Hint) -> String {
    switch hint {
    case .createStore: return "create one with `confvault init --app NAME` or name it with --store"
    case .createApp(let name): return "create it with `confvault init --app \(name)`"
    case .createEnvironment(let app, let name): return "create it with `confvault env create --app \(app) \(name)`"
    case .nameTargetOrCreateProduction:
      return "name the target with --to or create one with `confvault env create --production`"
    case .readAsPlain: return "for an ordinary tar of a folder use --plain"
    case .allowOtherApp: return "use --allow-other-app if that is intended"
    case .replaceExisting: return "use --force to replace it"
    case .waitForLock: return "try again later or pass --wait SECONDS"
    case .runCheck: return "run `confvault check`"
    case .upgrade: return "upgrade confvault"
    case .allowEmpty: return "use --allow-empty if an empty configuration is intended"
    case .raiseLimit(.fileSize): return "raise the limit with --max-file-size BYTES if that is intended"
    case .raiseLimit(.totalSize): return "raise the limit with --max-total-size BYTES if that is intended"
    case .raiseLimit(.files): return "raise the limit with --max-files N if that is intended"
    }
  }
}

/// The one mapping from a failure's kind to the process's exit code.
enum ExitStatus {
  static func code(for kind: FailureKind) -> Int32 {
    switch kind {
    case .operationFailed, .notFound, .conflict, .internal: return 1
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
