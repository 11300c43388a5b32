import ConfvaultPostgres
import ConfvaultTestSupport
import Logging

extension PostgresCluster {
  /// A new store in a new database of the cluster.
  func newStore(logger: Logger = Logger(label: "test")) throws -> PostgresStore {
    let location = try DatabaseLocation(url: try newDatabaseURL(), environment: [:], defaultUser: PostgresCluster.role)
    return try PostgresStore(location: location, create: true, lockTimeout: 60, logger: logger)
  }
}
