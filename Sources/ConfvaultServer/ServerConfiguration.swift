import ConfvaultCore
import Foundation
import HummingbirdBcrypt

/// How `confvault serve` listens and what it accepts.
public struct ServerConfiguration: Sendable {
  public var host: String = "127.0.0.1"
  public var port: Int = 8080
  /// PEM files; both, or neither.
  public var tlsCertificate: String?
  public var tlsKey: String?
  /// Serve plain HTTP on an address other than loopback: only when said explicitly.
  public var insecureHTTP = false
  /// Mark cookies Secure though this server speaks plain HTTP: behind a proxy that ends TLS.
  public var secureCookies = false
  /// The limits an uploaded archive is read with; its size bound is also the upload's.
  public var limits = ArchiveLimits.default
  /// An upload slower than this on average, after its first `uploadGrace`, is cut off.
  public var minimumUploadRate = 16 << 10
  public var uploadGrace: TimeInterval = 30
  /// How long a checked upload waits for its apply.
  public var uploadLifetime: TimeInterval = 3600
  public var sessionLifetime: TimeInterval = 12 * 3600
  /// How long in-flight requests may finish after SIGTERM.
  public var shutdownGrace: TimeInterval = 10

  public init() {}

  public var usesTLS: Bool { tlsCertificate != nil }

  /// The most bytes an upload may have: the archive limits' total, with room for headers and compression.
  public var maxUploadBytes: Int64 { limits.maxTotalBytes + Int64(limits.maxFiles) * 1024 + (1 << 20) }

  /// Whether `host` is a loopback address.
  public var isLoopback: Bool {
    if host == "localhost" || host == "::1" { return true }
    // An IPv4 address in 127.0.0.0/8, parsed as an address: `127.example.com` is a name, not one.
    var address = in_addr()
    guard inet_pton(AF_INET, host, &address) == 1 else { return false }
    return UInt32(bigEndian: address.s_addr) >> 24 == 127
  }

  /// Refuses a configuration that would expose the server by mistake.
  ///
  /// - Throws: `.usage` for plain HTTP beyond loopback without `insecureHTTP`, or half a TLS pair.
  public func validate() throws {
    if (tlsCertificate == nil) != (tlsKey == nil) {
      throw OperationError(.usage, "TLS needs both a certificate and a key")
    }
    if !isLoopback && !usesTLS && !insecureHTTP {
      throw OperationError(
        .usage,
        "refusing to serve plain HTTP on \(host), which is not a loopback address: give a TLS certificate and key, or say plain HTTP is intended"
      )
    }
  }
}

/// Passwords of the page's users: stored as bcrypt hashes only.
public enum Passwords {
  public static func hash(_ password: String) -> String {
    Bcrypt.hash(password, cost: 12)
  }
}
