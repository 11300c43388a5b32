import ArgumentParser
import ConfvaultCore
import Foundation

struct Export: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write an environment's current configuration (or any version) as a verifiable archive.",
    discussion: """
      Without -o, writes <app>-<env>-v<N>.tar.gz (or .tar.zst, .tar.xz, .tar) in the current folder.
      Exporting the same version twice gives identical bytes.
      Example: confvault export --app inventory --env production -o production-backup.tar.gz
      """
  )

  @OptionGroup var app: AppOption
  @Option(name: .customLong("env"), help: "The environment whose head to export.") var environment: String?
  @Option(
    name: .customLong("version"),
    help: "The version to export instead of the head: 12, v12, or an environment's name for its head.")
  var reference: VersionReference?
  @Option(name: .short, help: "The archive to write, or - for standard output.") var output: String?
  @Option(help: "gzip, zstd, xz or none (default: what the output name ends with, else gzip).")
  var compression: Compression?
  @Flag(help: "Replace an existing output file.") var force = false
  @OptionGroup var storeOptions: StoreOptions
  @OptionGroup var outputOptions: OutputOptions

  func validate() throws {
    if environment == nil && reference == nil { throw ValidationError("name --env or --version") }
    _ = try archiveCompression(asked: compression, output: output)
    if output == "-" && Terminal.isTerminal(STDOUT_FILENO) {
      throw ValidationError("refusing to write an archive to a terminal; redirect it or use -o FILE")
    }
  }

  func run() async throws {
    let vault = try storeOptions.readMostlyService()
    var number: Int?
    if let reference { number = try await reference.number(app: app.app, service: vault, logger: storeOptions.logger) }
    let version = try await vault.resolve(
      app: app.app, environment: environment, number: number, logger: storeOptions.logger)
    let label = number == nil ? environment! : version.environment
    let compression = try archiveCompression(asked: compression, output: output)
    let path = output ?? "\(app.app)-\(label)-v\(version.number)\(compression.fileExtension)"
    let destination: ArchiveOutput = path == "-" ? .standardOutput : .file(path, replaceExisting: force)
    let written = try await vault.export(
      version, environment: number == nil ? environment : nil, compression: compression, to: destination,
      author: storeOptions.who, logger: storeOptions.logger)
    if case .standardOutput = destination { return }
    outputOptions.say(
      "exported v\(version.number) of \(app.app)/\(label) to \(path) (\(written.fileCount) files, \(ByteCount.format(written.bytes)))"
    )
    outputOptions.say("tree \(written.treeDigest)  archive sha256 \(written.sha256)")
  }
}
