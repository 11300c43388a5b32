import ArgumentParser
import ConfvaultCore
import ConfvaultServer
import Foundation
import Logging

struct Serve: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve the web page and the HTTP API over the store.",
    discussion: """
      Listens on 127.0.0.1:8080 unless told otherwise; another address needs TLS (--tls-cert and --tls-key) or --insecure-http. SIGTERM or Ctrl-C stops taking requests and lets those in flight finish.
      Example:
        confvault serve --port 8080 --sign-in-link admin
      """
  )

  @Option(help: "The address to listen on.") var host = "127.0.0.1"
  @Option(help: "The port to listen on (0: any free port, printed at start).") var port = 8080
  @Option(help: "A PEM certificate (chain) for HTTPS.") var tlsCert: String?
  @Option(help: "The PEM private key of --tls-cert.") var tlsKey: String?
  @Flag(help: "Serve plain HTTP on an address other than loopback (behind a TLS proxy).") var insecureHTTP = false
  @Flag(help: "Mark session cookies Secure: behind a proxy that ends TLS, browsers then send them over HTTPS only.")
  var secureCookies = false
  @Option(help: "Print a one-time sign-in link for this user once listening.") var signInLink: String?
  @Option(help: "The most bytes one file of an upload may have.") var maxFileSize: Int64 = ArchiveLimits.default
    .maxFileBytes
  @Option(help: "The most bytes all files of an upload may have.") var maxTotalSize: Int64 = ArchiveLimits.default
    .maxTotalBytes
  @Option(help: "The most files an upload may hold.") var maxFiles: Int = ArchiveLimits.default.maxFiles
  @Option(help: "Cut off an upload slower than this many bytes a second on average…") var minUploadRate = 16 << 10
  @Option(help: "…once it has run this many seconds.") var uploadGrace: Double = 30
  @OptionGroup var storeOptions: StoreOptions

  func validate() throws {
    guard (0...65535).contains(port) else { throw ValidationError("--port must be 0 to 65535") }
    guard minUploadRate >= 0, uploadGrace >= 0 else {
      throw ValidationError("--min-upload-rate and --upload-grace must be 0 or more")
    }
    guard maxFileSize > 0, maxTotalSize > 0, maxFiles > 0 else {
      throw ValidationError("--max-file-size, --max-total-size and --max-files must be positive")
    }
  }

  func run() async throws {
    var configuration = ServerConfiguration()
    configuration.host = host
    configuration.port = port
    configuration.tlsCertificate = tlsCert
    configuration.tlsKey = tlsKey
    configuration.insecureHTTP = insecureHTTP
    configuration.secureCookies = secureCookies
    configuration.limits.maxFileBytes = maxFileSize
    configuration.limits.maxTotalBytes = maxTotalSize
    configuration.limits.maxFiles = maxFiles
    configuration.minimumUploadRate = minUploadRate
    configuration.uploadGrace = uploadGrace
    try configuration.validate()
    let (vault, principals) = try storeOptions.server()
    if let signInLink, try await principals.user(signInLink) == nil {
      throw OperationError(.notFound, "no user '\(signInLink)' to sign in; add one with `confvault user add`")
    }
    let server = ConfvaultServer(vault: vault, principals: principals, configuration: configuration)
    var logger = Logger(label: "confvault.serve")
    logger.logLevel = storeOptions.verbose ? .debug : .info
    let scheme = configuration.usesTLS ? "https" : "http"
    let shownHost = host.contains(":") ? "[\(host)]" : host
    let user = signInLink
    try await server.run(logger: logger) { port in
      let base = "\(scheme)://\(shownHost):\(port)"
      // Written unbuffered: a script or a test waits for these lines.
      var lines = "confvault serving \(storeOptions.folder) on \(base)\n"
      if let user { lines += "sign in as \(user): \(await server.signInLink(for: user, baseURL: base))\n" }
      FileHandle.standardOutput.write(Data(lines.utf8))
    }
  }
}
