import ArgumentParser
import ConfvaultCore
import Foundation

struct Pack: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pack",
    abstract: "Pack a configuration folder into a verifiable archive.",
    discussion: """
      The archive holds `confvault.json` (the manifest: every file's size, mode and SHA-256) and each file under `config/`. Packing an unchanged folder twice gives identical bytes.
      Example:
        confvault pack Samples/inventory/production -o production.tar.gz --app inventory
      """
  )

  @Argument(help: "The configuration folder.")
  var folder: String

  @Option(name: .short, help: "The archive to write, or - for standard output.")
  var output: String

  @Option(help: "gzip, zstd, xz or none (default: what the output name ends with, else gzip).")
  var compression: Compression?

  @Option(help: "The app the configuration belongs to, recorded in the manifest.")
  var app: String?

  @Option(name: .customLong("env"), help: "The environment it comes from, recorded in the manifest.")
  var environment: String?

  @Flag(help: "Replace an existing output file.")
  var force = false

  @OptionGroup var outputOptions: OutputOptions

  func validate() throws {
    try validateName(app, as: "app")
    try validateName(environment, as: "environment")
    if output == "-" && Terminal.isTerminal(STDOUT_FILENO) {
      throw ValidationError("refusing to write an archive to a terminal; redirect it or use -o FILE")
    }
  }

  func run() async throws {
    let destination: ArchiveOutput =
      output == "-" ? .standardOutput : .file(output, replaceExisting: force)
    // An explicit --compression wins over the name: a test archive may carry a misleading name on purpose.
    let compression = compression ?? Compression(fileName: output) ?? .gzip
    let written = try await ProgressDisplay.run("packing", quiet: outputOptions.quiet) {
      try ConfigurationArchive.pack(
        folder: folder, app: app, environment: environment, compression: compression, to: destination)
    }
    if case .standardOutput = destination { return }
    let manifest = written.manifest
    outputOptions.say(
      "packed \(manifest.fileCount) files (\(ByteCount.format(manifest.totalSize))) from \(folder) into \(output)"
        + " (\(ByteCount.format(written.bytes)), \(compression.rawValue))")
    outputOptions.say("tree \(manifest.treeDigest)")
  }
}
