import ArgumentParser
import ConfvaultCore

extension Compression: ExpressibleByArgument {}

/// Options shared by the commands that read an archive from outside.
struct ArchiveReadingOptions: ParsableArguments {
  @Flag(help: "Read an ordinary tar of a configuration folder, with no manifest (a single top folder is stripped).")
  var plain = false

  var reader: ArchiveReader {
    ArchiveReader(layout: plain ? .plain : .manifest)
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
