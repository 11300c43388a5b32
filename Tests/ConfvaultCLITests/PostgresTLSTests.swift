import ConfvaultTestSupport
import Foundation
import Testing

/// TLS to the database when the store URL asks for it (`sslmode`, `sslrootcert`), against a cluster of
/// its own that serves TLS with a certificate for `localhost` from a throwaway authority, and takes TCP
/// connections over TLS only.
@Suite struct PostgresTLSTests {
  /// Runs `arguments` on the store `url`.
  static func run(_ arguments: [String], store url: String) throws -> Outcome {
    try Harness.confvault(arguments, environment: ["CONFVAULT_STORE": url, "CONFVAULT_AUTHOR": "ana"])
  }

  @Test(
    "sslmode=require works over TLS where the server refuses plain connections; verify-ca and verify-full check the certificate"
  )
  func tls() throws {
    let cluster = try PostgresCluster.make(tls: true)
    defer { cluster.remove() }
    let url = try cluster.newDatabaseURL()
    let port = "127.0.0.1:\(cluster.port)"
    let store = try StoreFixture(kind: .postgres, database: url + "?sslmode=require")
    let pushed = try store.ok(["push", "--app", "inventory", "--env", "staging", Harness.samples + "/staging"])
    #expect(pushed.contains("pushed v1"), "\(pushed)")

    // The same database without TLS is refused by the server's pg_hba.conf: what worked went over TLS.
    let plain = try Self.run(["versions", "--app", "inventory"], store: url + "?sslmode=disable")
    #expect(plain.status == 77, "\(plain)")
    #expect(
      plain.stderr.contains("refused the connection") && plain.stderr.contains("no encryption")
        && plain.stderr.contains("set sslmode=require"), "\(plain.stderr)")
    #expect(!plain.stderr.contains("PGPASSWORD"), "not a password problem: \(plain.stderr)")

    // verify-ca: signed by the authority of sslrootcert, whatever host the certificate names.
    let authority = "sslrootcert=" + cluster.certificateAuthority
    let verifiedCA = try Self.run(["versions", "--app", "inventory"], store: url + "?sslmode=verify-ca&" + authority)
    #expect(verifiedCA.status == 0 && verifiedCA.stdout.contains("v1"), "\(verifiedCA)")
    // verify-full: the certificate names `localhost`, not 127.0.0.1.
    let byName = url.replacingOccurrences(of: port, with: "localhost:\(cluster.port)")
    let verifiedFull = try Self.run(
      ["versions", "--app", "inventory"], store: byName + "?sslmode=verify-full&" + authority)
    #expect(verifiedFull.status == 0 && verifiedFull.stdout.contains("v1"), "\(verifiedFull)")
    let byAddress = try Self.run(["versions", "--app", "inventory"], store: url + "?sslmode=verify-full&" + authority)
    #expect(byAddress.status == 1, "\(byAddress)")
    #expect(
      byAddress.stderr.contains("was not trusted") && byAddress.stderr.contains("does not name the host"),
      "\(byAddress.stderr)")

    // Another authority, and the system's (without sslrootcert), do not trust the certificate.
    let other = try TemporaryFolder()
    let made = try Harness.run(
      "/usr/bin/openssl",
      [
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
        other.file("ca.key"), "-out", other.file("ca.pem"), "-days", "2", "-subj", "/CN=another CA",
      ])
    #expect(made.status == 0, "\(made)")
    for query in ["sslmode=verify-ca&sslrootcert=" + other.file("ca.pem"), "sslmode=verify-ca"] {
      let refused = try Self.run(["versions", "--app", "inventory"], store: url + "?" + query)
      #expect(refused.status == 1, "\(query): \(refused)")
      #expect(
        refused.stderr.contains("was not trusted") && refused.stderr.contains("not signed by an authority"),
        "\(query): \(refused.stderr)")
      #expect(!refused.stderr.contains("try again"), "no outage: \(refused.stderr)")
    }
    let refusedPush = try Self.run(
      ["push", "--app", "inventory", "--env", "development", Harness.samples + "/development"],
      store: url + "?sslmode=verify-ca&sslrootcert=" + other.file("ca.pem"))
    #expect(refusedPush.status == 1 && refusedPush.stderr.contains("nothing was changed"), "\(refusedPush)")
    #expect(try store.versions().count == 1, "the refused push wrote nothing")

    // An sslrootcert that is missing, or holds no certificate, is said as such.
    try other.write("notes.txt", "not a certificate\n")
    for file in [other.file("missing.pem"), other.file("notes.txt")] {
      let unreadable = try Self.run(
        ["versions", "--app", "inventory"], store: url + "?sslmode=verify-ca&sslrootcert=" + file)
      #expect(unreadable.status == 66 && unreadable.stderr.contains("sslrootcert file `\(file)`"), "\(unreadable)")
    }

    // A server that is down is an outage over TLS too, not a refused certificate.
    try cluster.stopServer()
    let down = try Self.run(["versions", "--app", "inventory"], store: url + "?sslmode=verify-ca&" + authority)
    #expect(down.status == 75 && down.stderr.contains("cannot be reached"), "\(down)")
  }

  @Test("sslmode=require against a server without TLS fails clearly; the default (prefer) connects without")
  func serverWithoutTLS() throws {
    let url = try PostgresCluster.shared().newDatabaseURL()
    let required = try Self.run(["init", "--app", "inventory"], store: url + "?sslmode=require")
    #expect(required.status == 1, "\(required)")
    #expect(required.stderr.contains("does not offer TLS, which its URL requires"), "\(required.stderr)")
    #expect(!required.stderr.contains("PSQLError") && !required.stderr.contains("try again"), "\(required.stderr)")
    let preferred = try Self.run(["init", "--app", "inventory"], store: url)
    #expect(preferred.status == 0, "\(preferred)")
  }
}
