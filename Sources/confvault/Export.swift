import ArgumentParser
import ConfvaultCore
import Foundation

struct Export: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write an environment's current configuration (or any version) as a verifiable archive.",
    discussion: """
      Without -o, writes <app>-<env>-v<N>.tar.gz (or .tar.zst, .tar.xz, .tar) in the current folder. Exporting the same version twice gives identical bytes.
      Example:
        confvault export --app inventory --env production -o production-backup.tar.gz
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

  @Flag(help: "Print JSON for machines (on standard error when the archive goes to standard output).")
  var json = false

  func validate() throws {
    if environment == nil && reference == nil { throw ValidationError("name --env or --version") }
    _ = try archiveCompression(asked: compression, output: output)
    if output == "-" && Terminal.isTerminal(STDOUT_FILENO) {
      throw ValidationError("refusing to write an archive to a terminal; redirect it or use -o FILE")
    }
  }

  /// What `export --json` prints: the version written and the archive it made.
  struct ExportJSON: Encodable {
    var app: String
    var environment: String
    var version: Int
    /// Nil when the archive went to standard output.
    @ExplicitNull var file: String?
    var compression: Compression
    var fileCount: Int
    var totalSize: Int64
    var treeDigest: TreeDigest
    var archiveBytes: Int64
    var archiveSHA256: SHA256Hex
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
    let written = try await ProgressDisplay.run("exporting", quiet: outputOptions.quiet || json) {
      try await vault.export(
        version, environment: number == nil ? environment : nil, compression: compression, to: destination,
        author: storeOptions.who, logger: storeOptions.logger)
    }
    if json {
      return try JSONOutput.print(
        ExportJSON(
          app: app.app, environment: version.environment, version: version.number,
          file: path == "-" ? nil : path, compression: compression, fileCount: written.fileCount,
          totalSize: written.totalSize, treeDigest: written.treeDigest, archiveBytes: written.bytes,
          archiveSHA256: written.sha256),
        to: path == "-" ? .standardError : .standardOutput)
    }
    if case .standardOutput = destination { return }
    outputOptions.say(
      "exported v\(version.number) of \(app.app)/\(label) to \(path) (\(written.fileCount) files, \(ByteCount.format(written.bytes)))"
    )
    outputOptions.say("tree \(written.treeDigest)  archive sha256 \(written.sha256)")
  }
}
