import ConfvaultCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import ServiceLifecycle

/// `confvault serve`: the web page and the HTTP API over one store.
public struct ConfvaultServer: Sendable {
  public let vault: Vault
  public let principals: any PrincipalStore
  public let configuration: ServerConfiguration
  let uploads: UploadRegistry
  let metrics = ServerMetrics()
  let signInLinks = SignInLinks()

  public init(vault: Vault, principals: any PrincipalStore, configuration: ServerConfiguration) {
    self.vault = vault
    self.principals = principals
    self.configuration = configuration
    uploads = UploadRegistry(folder: vault.store.stagingFolder + "/uploads")
  }

  /// The routes and middleware, for the application and for in-process tests.
  public func router() -> Router<ServerContext> {
    let router = Router(context: ServerContext.self)
    router.add(middleware: MetricsMiddleware(metrics: metrics))
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: AuthenticationMiddleware(principals: principals, clock: vault.clock))
    APIRoutes(
      vault: vault, principals: principals, uploads: uploads, configuration: configuration, metrics: metrics
    ).add(to: router)
    Pages(vault: vault, principals: principals, configuration: configuration, signInLinks: signInLinks)
      .add(to: router)
    return router
  }

  /// The application, listening where the configuration says.
  ///
  /// - Parameter onRunning: called with the port once the server listens (port 0 picks a free one).
  public func application(logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws
    -> some ApplicationProtocol
  {
    try configuration.validate()
    // Uploads waiting for an apply live in a server's memory: a server that stopped left their spools.
    let removed = vault.removeAbandonedStaging()
    if removed > 0 { logger.info("removed what stopped servers left", metadata: ["spools": "\(removed)"]) }
    var http = HTTP1Channel.Configuration()
    // A connection that sends nothing is closed; a slow upload is cut off by `UploadSpool`.
    http.idleTimeout = .seconds(120)
    let server: HTTPServerBuilder
    if let certificate = configuration.tlsCertificate, let key = configuration.tlsKey {
      let tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
      server = try .tls(.http1(configuration: http), tlsConfiguration: tls)
    } else {
      server = .http1(configuration: http)
    }
    return Application(
      router: router(), server: server,
      configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "confvault"),
      onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
      logger: logger)
  }

  /// A one-time link that signs `user` in, to print at start.
  public func signInLink(for user: String, baseURL: String) async -> String {
    baseURL + "/sign-in/link?token=" + (await signInLinks.make(for: user))
  }

  /// Serves until SIGTERM or SIGINT, then stops taking requests, lets those in flight finish (up to
  /// the configured grace) and returns.
  public func run(logger: Logger, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
    let application = try application(logger: logger, onRunning: onRunning)
    var group = ServiceGroupConfiguration(
      services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
    group.maximumGracefulShutdownDuration = .seconds(Int64(configuration.shutdownGrace))
    try await ServiceGroup(configuration: group).run()
  }
}
