import ConfvaultCore
import Foundation
import HTTPTypes
import Hummingbird

/// An RFC 9457 problem: what the API answers for every failure, as `application/problem+json`.
struct Problem: Error, Encodable, Sendable {
  /// A stable URI per kind of failure (`/problems/archive-refused`), which clients may switch on.
  var type: String
  var title: String
  var status: Int
  var detail: String
  /// For a refused archive: the entry, and the rule it broke.
  var entry: String?
  var rule: String?
  /// Seconds to wait before retrying (for 503); also sent as `Retry-After`.
  var retryAfter: Int?
  /// What to do about it, as a stable code (`create-app:NAME`) a client words its own way.
  var hint: String?

  init(
    _ status: HTTPResponse.Status, type: String, detail: String, entry: String? = nil, rule: String? = nil,
    retryAfter: Int? = nil
  ) {
    self.type = "/problems/" + type
    self.title = status.reasonPhrase
    self.status = status.code
    self.detail = detail
    self.entry = entry
    self.rule = rule
    self.retryAfter = retryAfter
  }

  /// The one mapping from a failure to an HTTP status and problem type.
  init(_ error: any Error) {
    switch error {
    case let problem as Problem:
      self = problem
    case let refusal as ArchiveRefusal:
      self.init(
        .unprocessableContent, type: "archive-refused", detail: refusal.description, entry: refusal.entry,
        rule: refusal.rule.rawValue)
      hint = refusal.hint?.code
    case let failure as any ConfvaultError:
      let detail = failure.description
      switch failure.kind {
      case .notFound: self.init(.notFound, type: "not-found", detail: detail)
      case .conflict: self.init(.conflict, type: "conflict", detail: detail)
      case .usage: self.init(.badRequest, type: "bad-request", detail: detail)
      case .badInput, .inputUnreadable: self.init(.unprocessableContent, type: "bad-input", detail: detail)
      case .operationFailed: self.init(.conflict, type: "not-allowed-now", detail: detail)
      // The store's own words name its folder or database: they go to the log, not to whoever asked.
      case .ioError:
        self.init(
          .init(code: 507, reasonPhrase: "Insufficient Storage"), type: "storage",
          detail: "the store cannot be written (its disk is full or failing); nothing was changed")
      case .temporaryFailure:
        self.init(
          .serviceUnavailable, type: "busy",
          detail: "the store is busy or cannot be reached just now; nothing was changed, try again", retryAfter: 2)
      case .permissionDenied:
        // Who may do what is decided by `ServerContext.require`; this is the store or the system refusing.
        self.init(.forbidden, type: "forbidden", detail: detail)
      case .cannotCreateOutput, .internal:
        self.init(.internalServerError, type: "internal", detail: "the server failed; its log says why")
      }
      if status < 500 { hint = failure.hint?.code }
    case let error as HTTPError:
      self.init(error.status, type: "http-\(error.status.code)", detail: error.body ?? error.status.reasonPhrase)
    case is DecodingError:
      self.init(.badRequest, type: "bad-request", detail: "the request body is not the JSON this route takes")
    default:
      self.init(.internalServerError, type: "internal", detail: "the server failed; its log says why")
    }
  }

  func response() -> Response {
    var headers = HTTPFields()
    headers[.contentType] = "application/problem+json"
    if let retryAfter { headers[.retryAfter] = String(retryAfter) }
    if status == 401 { headers[.wwwAuthenticate] = "Bearer realm=\"confvault\"" }
    let body = (try? JSONCoding.encoder().encode(self)) ?? Data()
    return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
  }
}

/// Turns every error a route throws into a problem response; 5xx causes are logged, never sent.
struct ProblemMiddleware: RouterMiddleware {
  typealias Context = ServerContext

  func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
    -> Response
  {
    do {
      return try await next(request, context)
    } catch {
      let problem = Problem(error)
      if problem.status >= 500 {
        context.logger.error(
          "request failed",
          metadata: ["error": "\(error)", "cause": "\((error as? OperationError)?.cause.map { "\($0)" } ?? "-")"])
      }
      if request.uri.path.hasPrefix("/api/") || request.uri.path == "/healthz" || problem.status < 400 {
        return problem.response()
      }
      return try Pages.errorPage(problem, request: request, context: context)
    }
  }
}
