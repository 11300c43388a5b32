import Foundation
import Synchronization

/// A throwaway PostgreSQL cluster for the tests of this process: made in a temporary folder with
/// `initdb`, started on a free loopback port, with one new database per store a test asks for.
///
/// The shared cluster is started once, by the first test that needs it; a test that stops and starts
/// its server gets one of its own (`make()`). Each is removed however the process ends:
///
/// - at a normal exit, an `atexit` handler stops it (`pg_ctl stop -m immediate`) and removes its folder;
/// - when the process is killed or crashes, no handler runs: a watchdog does it instead. The watchdog is
///   a small shell loop started in a session of its own (so that a signal to the test's process group
///   does not take it down first), which checks every second that the test process is alive
///   (`kill -0 PID`) and, once it is not, stops the cluster and removes the folder.
///
/// PostgreSQL refuses to run as root, as CI runs: the cluster's folder is then given to `nobody`, and
/// `initdb` and `pg_ctl` run as `nobody` through `setpriv`. There is no mock and no skip: when
/// PostgreSQL is missing or does not start, every test that needs it fails with what went wrong.
///
/// Its databases are reached as `postgres://confvault@127.0.0.1:PORT/NAME` with trust authentication,
/// so the `confvault` binary, run as root or not, signs in without a password.
public final class PostgresCluster: Sendable {
  public let folder: String
  public let port: Int
  public let binaries: String
  private let user: (uid: uid_t, gid: gid_t)?
  private let counter = Atomic<Int>(0)

  /// The cluster of this process, started on first use; a failure to start is thrown to every caller.
  public static func shared() throws -> PostgresCluster {
    try started.withLock { started in
      if let started { return try started.get() }
      let result = Result { try PostgresCluster() }
      started = result
      return try result.get()
    }
  }

  private static let started = Mutex<Result<PostgresCluster, any Error>?>(nil)

  /// The role the tests sign in as (the cluster's superuser; trust authentication on loopback only).
  public static let role = "confvault"

  /// A cluster of the caller's own, started now, for a test that stops and starts its server: stopping
  /// the shared one would fail every other test that runs meanwhile. `remove()` it when done.
  ///
  /// - Parameter tls: serve TLS only: a certificate for `localhost` signed by a throwaway authority
  ///   (`certificateAuthority`), and a `pg_hba.conf` that refuses TCP connections without TLS.
  public static func make(tls: Bool = false) throws -> PostgresCluster {
    try PostgresCluster(tls: tls)
  }

  /// The certificate of the authority that signed the server's certificate, for a cluster made with TLS.
  public var certificateAuthority: String { folder + "/ca.pem" }

  private init(tls: Bool = false) throws {
    binaries = try PostgresCluster.findBinaries()
    var template = Array((NSTemporaryDirectory() + "/confvault-pg-XXXXXX").utf8CString)
    guard let made = mkdtemp(&template) else { throw ClusterError("cannot make a temporary folder for PostgreSQL") }
    folder = String(cString: made)
    if geteuid() == 0 {
      guard let entry = getpwnam("nobody") else {
        throw ClusterError("the tests run as root and there is no user `nobody` to run PostgreSQL as")
      }
      user = (entry.pointee.pw_uid, entry.pointee.pw_gid)
      guard chown(folder, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
        throw ClusterError("cannot give `\(folder)` to `nobody`: \(String(cString: strerror(errno)))")
      }
    } else {
      user = nil
    }
    port = try PostgresCluster.freePort()
    do {
      try run(
        binaries + "/initdb",
        ["-D", folder + "/data", "-U", PostgresCluster.role, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
        what: "initdb")
      if tls { try serveTLSOnly() }
      startWatchdog()
      try startServer()
    } catch {
      remove()
      throw error
    }
    PostgresCluster.removeAtExit(self)
  }

  /// Makes a throwaway authority and a server certificate for `localhost` (not for 127.0.0.1) with
  /// `openssl` in the cluster's folder, as its owner (the server refuses a key others may read), turns
  /// TLS on, and lets TCP connections in over TLS only.
  private func serveTLSOnly() throws {
    let elliptic = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    try run(
      "/usr/bin/openssl",
      ["req", "-x509"] + elliptic + [
        "-keyout", folder + "/ca.key", "-out", certificateAuthority, "-days", "2", "-subj", "/CN=confvault test CA",
      ],
      what: "openssl ca")
    try run(
      "/usr/bin/openssl",
      ["req"] + elliptic + [
        "-keyout", folder + "/server.key", "-out", folder + "/server.csr", "-subj", "/CN=localhost",
      ],
      what: "openssl request")
    try Data("subjectAltName=DNS:localhost\n".utf8).write(to: URL(fileURLWithPath: folder + "/server.ext"))
    try run(
      "/usr/bin/openssl",
      [
        "x509", "-req", "-in", folder + "/server.csr", "-CA", certificateAuthority, "-CAkey", folder + "/ca.key",
        "-CAcreateserial", "-out", folder + "/server.crt", "-days", "2", "-extfile", folder + "/server.ext",
      ],
      what: "openssl sign")
    guard chmod(folder + "/server.key", 0o600) == 0 else { throw ClusterError("cannot make server.key private") }
    let settings = """

      ssl = on
      ssl_cert_file = '\(folder)/server.crt'
      ssl_key_file = '\(folder)/server.key'

      """
    let configuration = try FileHandle(forWritingTo: URL(fileURLWithPath: folder + "/data/postgresql.conf"))
    try configuration.seekToEnd()
    try configuration.write(contentsOf: Data(settings.utf8))
    try configuration.close()
    // Unix sockets as before; TCP only with TLS (`createdb`, as libpq does by default, prefers TLS).
    try Data("local all all trust\nhostssl all all 127.0.0.1/32 trust\n".utf8)
      .write(to: URL(fileURLWithPath: folder + "/data/pg_hba.conf"))
  }

  /// A URL of a new, empty database of the cluster, which `confvault --store` takes as it is.
  public func newDatabaseURL() throws -> String {
    let name = "test_\(getpid())_\(counter.add(1, ordering: .relaxed).newValue)"
    try run(
      binaries + "/createdb", ["-h", "127.0.0.1", "-p", "\(port)", "-U", PostgresCluster.role, name],
      what: "createdb", asOwner: false)
    return "postgres://\(PostgresCluster.role)@127.0.0.1:\(port)/\(name)"
  }

  /// Starts the server (again, after `stopServer()`) on the cluster's port, and waits until it takes
  /// connections.
  public func startServer() throws {
    do {
      try run(
        binaries + "/pg_ctl",
        [
          "start", "-D", folder + "/data", "-w", "-t", "60", "-l", folder + "/server.log", "-o",
          "-c listen_addresses=127.0.0.1 -p \(port) -k \(folder) -c fsync=off -c synchronous_commit=off "
            + "-c full_page_writes=off -c max_connections=200",
        ],
        what: "pg_ctl start")
    } catch {
      let log = (try? String(contentsOfFile: folder + "/server.log", encoding: .utf8)) ?? ""
      throw ClusterError("\(error)\n\(log.suffix(2000))")
    }
  }

  /// Stops the server as an administrator does (`pg_ctl stop -m fast`: open sessions are ended, the
  /// data is kept), and waits until it is down.
  public func stopServer() throws {
    try run(binaries + "/pg_ctl", ["stop", "-D", folder + "/data", "-m", "fast", "-w"], what: "pg_ctl stop")
  }

  /// Stops the server at once and removes its folder.
  public func remove() {
    try? run(binaries + "/pg_ctl", ["stop", "-D", folder + "/data", "-m", "immediate", "-w"], what: "pg_ctl stop")
    try? FileManager.default.removeItem(atPath: folder)
  }

  private static func removeAtExit(_ cluster: PostgresCluster) {
    let first = atExit.withLock { clusters in
      defer { clusters.append(cluster) }
      return clusters.isEmpty
    }
    if first {
      atexit { for cluster in PostgresCluster.atExit.withLock({ $0 }) { cluster.remove() } }
    }
  }

  private static let atExit = Mutex<[PostgresCluster]>([])

  /// Stops the cluster and removes its folder once this process is gone, however it ends.
  private func startWatchdog() {
    let owner = user.map { "setpriv --reuid=\($0.uid) --regid=\($0.gid) --clear-groups " } ?? ""
    let script = """
      while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done
      \(owner)'\(binaries)/pg_ctl' stop -D '\(folder)/data' -m immediate >/dev/null 2>&1
      rm -rf '\(folder)'
      """
    // `setsid -f` forks the loop into a session of its own and returns at once.
    _ = try? PostgresCluster.spawn(["/usr/bin/setsid", "-f", "sh", "-c", script], output: "/dev/null")
  }

  /// Runs a PostgreSQL program (as the cluster's owner when `asOwner`); its output is in the error.
  private func run(_ program: String, _ arguments: [String], what: String, asOwner: Bool = true) throws {
    let command =
      asOwner && user != nil
      ? ["/usr/bin/setpriv", "--reuid=\(user!.uid)", "--regid=\(user!.gid)", "--clear-groups", program] + arguments
      : [program] + arguments
    // A file, not a pipe: the server pg_ctl starts inherits the descriptors, and would keep a pipe open
    // for as long as it runs.
    let outputPath = folder + "/\(what.replacingOccurrences(of: " ", with: "-")).out"
    let status = try PostgresCluster.spawn(command, output: outputPath)
    guard status == 0 else {
      let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
      throw ClusterError("\(what) failed (exit status \(status)): \(text)")
    }
  }

  /// Runs `command` with its output appended to `output`, and waits for it: `posix_spawn` and `waitpid`,
  /// since the server pg_ctl leaves behind must not be tied to anything of this process.
  private static func spawn(_ command: [String], output: String) throws -> Int32 {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o666)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // Nothing else of this process: the server pg_ctl starts would otherwise keep, for as long as it
    // runs, whatever descriptor another thread has open at that moment, such as the socket by which
    // Foundation's `Process` learns that a child it started in that thread has exited (its
    // `waitUntilExit` would then wait for PostgreSQL to stop).
    guard let closeFrom = closeFrom else {
      throw ClusterError("this glibc lacks posix_spawn_file_actions_addclosefrom_np (glibc 2.34 or later needed)")
    }
    guard closeFrom(&actions, 3) == 0 else { throw ClusterError("cannot set up the closing of descriptors") }
    var argv = command.map { strdup($0) }
    argv.append(nil)
    defer { for argument in argv { free(argument) } }
    var pid = pid_t()
    let code = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
    guard code == 0 else { throw ClusterError("cannot run \(command[0]): \(String(cString: strerror(code)))") }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
      guard errno == EINTR else { throw ClusterError("cannot wait for \(command[0])") }
    }
    return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
  }

  /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which Swift's Glibc module
  /// does not show.
  private static var closeFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? {
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(
      symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
  }

  /// The newest PostgreSQL's programs: Debian keeps them in /usr/lib/postgresql/VERSION/bin.
  private static func findBinaries() throws -> String {
    let root = "/usr/lib/postgresql"
    let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [])
      .compactMap(Int.init).sorted()
    for version in versions.reversed()
    where FileManager.default.isExecutableFile(atPath: "\(root)/\(version)/bin/initdb") {
      return "\(root)/\(version)/bin"
    }
    throw ClusterError(
      "PostgreSQL is not installed (no \(root)/VERSION/bin/initdb): run `make setup`, which installs Debian's postgresql"
    )
  }

  /// A TCP port on 127.0.0.1 that nothing listens on now.
  private static func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw ClusterError("cannot make a socket to find a free port") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
        bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
      }
    }
    guard bound else { throw ClusterError("cannot find a free port on 127.0.0.1") }
    return Int(UInt16(bigEndian: address.sin_port))
  }
}

/// Why the test cluster could not be made or used.
public struct ClusterError: Error, CustomStringConvertible {
  public let description: String
  init(_ description: String) { self.description = "test PostgreSQL cluster: " + description }
}
