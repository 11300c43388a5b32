import ConfvaultCore
import Foundation
import HTTPTypes
import Hummingbird

/// Finds who makes a request: an API token (`Authorization: Bearer …`) or a browser session (its
/// cookie). A session's changing requests must carry its CSRF token, in the `X-CSRF-Token` header or
/// the form field `csrf`; a missing or wrong one is refused before any route runs.
struct AuthenticationMiddleware: RouterMiddleware {
  typealias Context = ServerContext

  static let sessionCookie = "confvault_session"
  static let csrfHeader = HTTPField.Name("X-CSRF-Token")!

  let principals: any PrincipalStore
  let clock: @Sendable () -> Date

  func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
    -> Response
  {
    var context = context
    if let authorization = request.headers[.authorization] {
      guard authorization.lowercased().hasPrefix("bearer ") else {
        throw Problem(.unauthorized, type: "unauthorized", detail: "only `Authorization: Bearer <token>` is accepted")
      }
      let secret = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
      guard let token = try await principals.token(hash: Secret.hash(secret)), token.revokedAt == nil else {
        throw Problem(.unauthorized, type: "unauthorized", detail: "the token is unknown or revoked")
      }
      context.principal = Principal(name: token.name, role: token.role, kind: .token)
    } else if let cookie = request.cookies[Self.sessionCookie]?.value,
      let session = try await principals.session(hash: Secret.hash(cookie), now: clock()),
      let user = try await principals.user(session.user)
    {
      context.session = session
      context.principal = Principal(name: user.name, role: user.role, kind: .user)
      if ![.get, .head, .options].contains(request.method) {
        try Self.checkCSRF(request, session: session, formAllowed: !request.uri.path.hasPrefix("/api/"))
      }
    }
    return try await next(request, context)
  }

  /// A form's `csrf` field is checked by the page's routes once they have read the form; a header is
  /// checked here. A changing request with a session and neither is refused.
  ///
  /// - Parameter formAllowed: whether the route is a page form (the API takes the header only).
  static func checkCSRF(_ request: Request, session: SessionRecord, formAllowed: Bool) throws {
    if let header = request.headers[csrfHeader] {
      guard Secret.equal(header, session.csrfToken) else { throw csrfRefusal }
      return
    }
    let isForm = request.headers[.contentType]?.hasPrefix("application/x-www-form-urlencoded") == true
    guard formAllowed && isForm else { throw csrfRefusal }
  }

  static let csrfRefusal = Problem(
    .forbidden, type: "csrf", detail: "this request lacks the page's CSRF token; reload the page and try again")
}
