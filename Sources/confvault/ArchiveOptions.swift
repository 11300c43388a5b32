import ArgumentParser
import ConfvaultCore

extension Compression: ExpressibleByArgument {}

/// Options shared by the commands that read an archive from outside.
struct ArchiveReadingOptions: ParsableArguments {
  @Flag(help: "Read an ordinary tar of a configuration folder, with no manifest (a single top folder is stripped).")
  var plain = false

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

  var reader: ArchiveReader {
    var limits = ArchiveLimits.default
    limits.maxFileBytes = maxFileSize
    limits.maxTotalBytes = maxTotalSize
    limits.maxFiles = maxFiles
    return ArchiveReader(limits: limits, layout: plain ? .plain : .manifest)
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
