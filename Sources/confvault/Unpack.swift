import ArgumentParser
import ConfvaultCore

struct Unpack: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "unpack",
    abstract: "Check an archive in full and extract its configuration into a new folder.",
    discussion: """
      The folder appears complete or not at all: files go into a hidden folder beside it, which is renamed at the end. An existing non-empty folder is refused.
      Example:
        confvault unpack production.tar.gz --to /tmp/production
      """
  )

  @Argument(help: "The archive, or - for standard input.")
  var archive: String

  @Option(help: "The folder to create.")
  var to: String

  @OptionGroup var reading: ArchiveReadingOptions
  @OptionGroup var outputOptions: OutputOptions

  func run() async throws {
    let contents = try await ProgressDisplay.run("unpacking", quiet: outputOptions.quiet) {
      try ConfigurationArchive.unpack(ArchiveSource(argument: archive), to: to, reader: reading.reader)
    }
    outputOptions.say(
      "unpacked \(contents.files.count) files (\(ByteCount.format(contents.totalSize))) into \(to)")
    outputOptions.say("tree \(contents.treeDigest)")
  }
}
