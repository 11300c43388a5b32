import ArgumentParser
import ConfvaultCore
import Logging

extension Compression: ExpressibleByArgument {}

/// The limits on what an archive may hold, for every command that reads one (import, verify, backup, …).
struct ArchiveLimitOptions: ParsableArguments {
  @Option(help: "The most bytes one file may have (decompressed, counted as read).")
  var maxFileSize: Int64 = ArchiveLimits.default.maxFileBytes

  @Option(help: "The most bytes all files together may have.")
  var maxTotalSize: Int64 = ArchiveLimits.default.maxTotalBytes

  @Option(help: "The most files an archive may hold.")
  var maxFiles: Int = ArchiveLimits.default.maxFiles

  func validate() throws {
    guard maxFileSize > 0, maxTotalSize > 0, maxFiles > 0 else {
      throw ValidationError("--max-file-size, --max-total-size and --max-files must be positive")
    }
  }

  var limits: ArchiveLimits {
    var limits = ArchiveLimits.default
    limits.maxFileBytes = maxFileSize
    limits.maxTotalBytes = maxTotalSize
    limits.maxFiles = maxFiles
    return limits
  }
}

/// Options shared by the commands that read an archive from outside.
struct ArchiveReadingOptions: ParsableArguments {
  @Flag(help: "Read an ordinary tar of a configuration folder, with no manifest (a single top folder is stripped).")
  var plain = false

  @Flag(help: "Accept an archive of no files (importing one empties the environment).")
  var allowEmpty = false

  @OptionGroup var limitOptions: ArchiveLimitOptions

  var reader: ArchiveReader {
    ArchiveReader(limits: limitOptions.limits, layout: plain ? .plain : .manifest, allowEmpty: allowEmpty)
  }
}

/// Options for commands that print less for scripts and cron.
struct OutputOptions: ParsableArguments {
  @Flag(name: .shortAndLong, help: "Print only errors.")
  var quiet = false

  func say(_ line: @autoclosure () -> String) {
    if !quiet { print(line()) }
  }
}

/// Checks an app or environment name in `validate()`, where only a `ValidationError` exits with 64.
func validateName(_ name: String?, as what: String) throws {
  guard let name else { return }
  do {
    try Name.validate(name, as: what)
  } catch {
    throw ValidationError("\(error)")
  }
}

/// The compression to write `output` with: the one asked for, else the one its name's ending says
/// (`.tar.zst`), else gzip.
///
/// - Throws: `ValidationError` when the name's ending says another compression than the one asked for.
func archiveCompression(asked: Compression?, output: String?) throws -> Compression {
  let named = output.flatMap { $0 == "-" ? nil : Compression(fileName: $0) }
  if let asked, let named, asked != named {
    throw ValidationError(
      "--compression \(asked.rawValue) contradicts the output name `\(output!)`, which ends like \(named.rawValue); change one"
    )
  }
  return asked ?? named ?? .gzip
}

/// A version as a person names it: `16`, `v16` (as the versions list prints it), or an environment's
/// name for its head.
enum VersionReference: ExpressibleByArgument, Sendable {
  case number(Int)
  case head(of: String)

  init?(argument: String) {
    let digits = argument.hasPrefix("v") ? argument.dropFirst() : Substring(argument)
    if !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(digits), number > 0 {
      self = .number(number)
    } else if (try? Name.validate(argument, as: "environment")) != nil {
      self = .head(of: argument)
    } else {
      return nil
    }
  }

  static var defaultCompletionKind: CompletionKind { .default }

  /// The version's number: itself, or the environment's head now.
  ///
  /// - Throws: `.notFound` when the environment does not exist or has no version yet.
  func number(app: String, service: any VaultService, logger: Logger) async throws -> Int {
    switch self {
    case .number(let number):
      return number
    case .head(let environment):
      guard let head = try await service.app(app, logger: logger).environment(environment).head else {
        throw OperationError(.notFound, "environment '\(environment)' of app '\(app)' has no version yet")
      }
      return head
    }
  }
}
