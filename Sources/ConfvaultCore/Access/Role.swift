/// What a principal may do, from least to most.
public enum Role: String, Sendable, Codable, CaseIterable, Comparable {
  /// Read and download.
  case viewer
  /// Also push, upload and restore outside production.
  case deployer
  /// Also sync, and change the production environment.
  case releaser
  /// Also apps, environments, users and tokens.
  case admin

  public static func < (a: Role, b: Role) -> Bool {
    allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
  }

  /// Whether this role may do `action`.
  public func allows(_ action: Action) -> Bool {
    self >= action.leastRole
  }
}

/// Something a principal asks to do, as roles see it.
public enum Action: Sendable, Equatable {
  /// Read versions, changes, the audit log; download archives.
  case read
  /// Add a version to an environment (upload, restore, push); production needs more.
  case change(production: Bool)
  /// Put a version into an environment's head by a sync.
  case sync
  /// Apps, environments, users and tokens.
  case administer

  /// The least role that may do it.
  public var leastRole: Role {
    switch self {
    case .read: return .viewer
    case .change(let production): return production ? .releaser : .deployer
    case .sync: return .releaser
    case .administer: return .admin
    }
  }
}

/// Who acts: a signed-in user or a named API token, with a role. Its name is the author of every change.
public struct Principal: Sendable, Equatable, Codable {
  public enum Kind: String, Sendable, Codable { case user, token }

  public var name: String
  public var role: Role
  public var kind: Kind

  public init(name: String, role: Role, kind: Kind) {
    self.name = name
    self.role = role
    self.kind = kind
  }

  /// Refuses an action the role does not allow.
  ///
  /// - Throws: `.permissionDenied` naming the principal, the action and the role it needs.
  public func require(_ action: Action) throws {
    guard role.allows(action) else {
      throw OperationError(
        .permissionDenied,
        "\(kind.rawValue) '\(name)' is a \(role.rawValue); this needs the role \(action.leastRole.rawValue) or more")
    }
  }
}
