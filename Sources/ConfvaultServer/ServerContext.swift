import ConfvaultCore
import HTTPTypes
import Hummingbird

/// A request's context: who makes it (from a token or a session), once the authentication
/// middleware has looked.
public struct ServerContext: RequestContext {
  public var coreContext: CoreRequestContextStorage
  /// Nil until authenticated; routes that need one call `require`.
  public var principal: Principal?
  /// The session a browser request came with: its CSRF token is checked on every change.
  public var session: SessionRecord?

  public init(source: ApplicationRequestContextSource) {
    coreContext = .init(source: source)
  }

  /// Uploads stream to a spool file with their own bound; no collected body is larger than this.
  public var maxUploadSize: Int { 1 << 20 }

  /// The principal, whatever it may do: checked before any name is looked up, so that a caller
  /// without credentials learns nothing of what exists.
  public func requireSignedIn() throws {
    guard principal != nil else {
      throw Problem(.unauthorized, type: "unauthorized", detail: "sign in, or send `Authorization: Bearer <token>`")
    }
  }

  /// The principal, allowed to do `action`.
  ///
  /// - Throws: 401 without a principal, 403 with one whose role does not allow it.
  public func require(_ action: Action) throws -> Principal {
    guard let principal else {
      throw Problem(.unauthorized, type: "unauthorized", detail: "sign in, or send `Authorization: Bearer <token>`")
    }
    do {
      try principal.require(action)
    } catch {
      throw Problem(.forbidden, type: "forbidden", detail: "\(error)")
    }
    return principal
  }
}
