import ConfvaultCore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdBcrypt
import Logging
import Mustache

/// The web page: server-rendered HTML from the templates built into the binary, readable without
/// JavaScript. Every change asks first (a preview, then Confirm); buttons a role may not use are
/// not shown, and the routes refuse them anyway.
struct Pages {
  let vault: Vault
  let principals: any PrincipalStore
  let configuration: ServerConfiguration
  let signInLinks: SignInLinks

  static let library: MustacheLibrary = {
    var library = MustacheLibrary()
    let templates: [(String, [UInt8])] = [
      ("header", PackageResources.header_mustache), ("footer", PackageResources.footer_mustache),
      ("sign-in", PackageResources.sign_in_mustache), ("apps", PackageResources.apps_mustache),
      ("app", PackageResources.app_mustache), ("version", PackageResources.version_mustache),
      ("changes", PackageResources.changes_mustache), ("preview", PackageResources.preview_mustache),
      ("audit", PackageResources.audit_mustache), ("error", PackageResources.error_mustache),
    ]
    for (name, bytes) in templates {
      // The templates are part of the source: a broken one is a bug caught by every page test.
      // swift-format-ignore: NeverUseForceTry
      try! library.register(String(decoding: bytes, as: UTF8.self), named: name)
    }
    return library
  }()

  static let signInCookie = "confvault_sign_in"

  func add(to router: Router<ServerContext>) {
    router.get("/assets/app.css") { _, _ in Self.asset(PackageResources.app_css, type: "text/css") }
    router.get("/assets/app.js") { _, _ in Self.asset(PackageResources.app_js, type: "text/javascript") }
    router.get("/sign-in") { request, context in try signInPage(request, context: context, error: nil) }
    router.post("/sign-in") { request, context in try await signIn(request, context: context) }
    router.get("/sign-in/link") { request, context in try await signInByLink(request, context: context) }
    router.post("/sign-out") { request, context in try await signOut(request, context: context) }
    router.get("/") { request, context in
      guard context.principal != nil else { return Response.redirect(to: "/sign-in") }
      _ = try context.require(.read)
      let apps = try await vault.apps(logger: context.logger).map {
        ["name": $0.name, "environmentCount": String($0.environments.count)]
      }
      return try render("apps", title: "Apps", context: context, ["apps": apps])
    }
    router.get("/apps/:app") { request, context in
      guard context.principal != nil else { return Response.redirect(to: "/sign-in") }
      let principal = try context.require(.read)
      let app = try app(context)
      let before = try queryInt(request, "before")
      let page = try await vault.versionsPage(
        app: app, environment: nil, before: before, limit: 50, logger: context.logger)
      let environments = page.app.environments.map { environment -> [String: Any] in
        var row: [String: Any] = [
          "app": app, "name": environment.name, "isProduction": environment.isProduction,
          "canUpload": principal.role.allows(.change(production: environment.isProduction)),
        ]
        if let head = environment.head { row["head"] = String(head) }
        return row
      }
      let versions = page.rows.map { row -> [String: Any] in
        let version = row.version
        return [
          "app": app, "number": String(version.number), "environment": version.environment,
          "author": version.author, "createdAt": Timestamp.iso8601(version.createdAt),
          "syncedAt": version.syncedAt.map(Timestamp.iso8601) ?? "–", "comment": version.comment,
          "backup": version.backup, "status": row.status.rawValue,
          "inProduction": row.status == .currentProduction,
        ]
      }
      var view: [String: Any] = ["app": app, "environments": environments, "versions": versions]
      if let next = page.nextBefore { view["nextBefore"] = String(next) }
      return try render("app", title: app, context: context, view)
    }
    router.get("/apps/:app/versions/:n") { request, context in
      guard context.principal != nil else { return Response.redirect(to: "/sign-in") }
      let principal = try context.require(.read)
      let app = try app(context)
      let detail = try await vault.show(app: app, number: try number(context), logger: context.logger)
      let version = detail.version
      let info = try await vault.app(app, logger: context.logger)
      let comparison = try await vault.compare(app: app, .version(version.number), logger: context.logger)
      let files = try await vault.describe(comparison.changes, logger: context.logger)
      let targets = info.environments.filter { principal.role.allows(.change(production: $0.isProduction)) }
        .map(\.name)
      var view: [String: Any] = [
        "app": app, "number": String(version.number), "status": detail.status.rawValue,
        "environment": version.environment, "author": version.author,
        "createdAt": Timestamp.iso8601(version.createdAt), "comment": version.comment.isEmpty ? "–" : version.comment,
        "origin": version.origin.rawValue, "syncedAt": version.syncedAt.map(Timestamp.iso8601) ?? "never",
        "headOf": detail.headOf.isEmpty ? "–" : detail.headOf.joined(separator: ", "),
        "fileCount": String(version.fileCount), "totalSize": ByteCount.format(version.totalSize),
        "files": Self.fileViews(files), "restoreTargets": targets, "canRestore": !targets.isEmpty,
        "canSync": principal.role.allows(.sync) && info.production != nil,
      ]
      if let parent = version.parent { view["parent"] = String(parent) }
      if let restoredFrom = version.restoredFrom { view["restoredFrom"] = String(restoredFrom) }
      return try render("version", title: "\(app) v\(version.number)", context: context, view)
    }
    router.post("/apps/:app/versions/:n/restore/preview") { request, context in
      try await preview(request, context: context, sync: false)
    }
    router.post("/apps/:app/versions/:n/sync/preview") { request, context in
      try await preview(request, context: context, sync: true)
    }
    router.post("/apps/:app/versions/:n/restore") { request, context in
      try await confirm(request, context: context, sync: false)
    }
    router.post("/apps/:app/versions/:n/sync") { request, context in
      try await confirm(request, context: context, sync: true)
    }
    router.get("/apps/:app/audit") { _, context in
      guard context.principal != nil else { return Response.redirect(to: "/sign-in") }
      _ = try context.require(.read)
      let app = try app(context)
      let entries = try await vault.audit(app: app, limit: 500, logger: context.logger).reversed().map {
        entry -> [String: Any] in
        var row: [String: Any] = [
          "at": Timestamp.iso8601(entry.at), "author": entry.author, "action": entry.action.rawValue,
          "environment": entry.environment ?? "–", "detail": entry.detail,
        ]
        if let version = entry.version { row["version"] = String(version) }
        if let archive = entry.archiveSHA256 { row["archiveSHA256"] = archive.value }
        return row
      }
      return try render("audit", title: "Audit of \(app)", context: context, ["app": app, "entries": entries])
    }
  }

  // MARK: Signing in

  private func signInPage(_ request: Request, context: ServerContext, error: String?) throws -> Response {
    // Before a session there is no session token: the form carries a token also set as a cookie
    // (double submit), so another site cannot sign a browser in as someone else.
    let token = Secret.make()
    var view: [String: Any] = ["signInToken": token]
    if let error { view["error"] = error }
    var response = try render("sign-in", title: "Sign in", context: context, view)
    response.setCookie(cookie(Self.signInCookie, token, maxAge: 3600))
    return response
  }

  private func signIn(_ request: Request, context: ServerContext) async throws -> Response {
    let form = try await Self.form(request)
    guard let token = form["csrf"], let cookie = request.cookies[Self.signInCookie]?.value,
      Secret.equal(token, cookie)
    else { throw AuthenticationMiddleware.csrfRefusal }
    let name = form["user"] ?? ""
    let password = form["password"] ?? ""
    let user = try await principals.user(name)
    // bcrypt runs even for an unknown user, so the time taken does not say which names exist.
    let hash = user?.passwordHash ?? Self.decoyHash
    let matches = try await offload { Bcrypt.verify(password, hash: hash) }
    guard let user, matches else {
      context.logger.notice("sign-in refused", metadata: ["user": "\(SafeText.escaping(name))"])
      var response = try signInPage(request, context: context, error: "Unknown user or wrong password.")
      response.status = .unauthorized
      return response
    }
    return try await startSession(for: user.name, context: context)
  }

  private func signInByLink(_ request: Request, context: ServerContext) async throws -> Response {
    guard let token = request.uri.queryParameters.get("token"), let user = await signInLinks.redeem(String(token))
    else {
      throw Problem(.unauthorized, type: "unauthorized", detail: "this sign-in link is unknown, used or expired")
    }
    return try await startSession(for: user, context: context)
  }

  private func startSession(for user: String, context: ServerContext) async throws -> Response {
    let secret = Secret.make()
    try await principals.addSession(
      SessionRecord(
        hash: Secret.hash(secret), user: user, csrfToken: Secret.make(),
        expiresAt: vault.clock().addingTimeInterval(configuration.sessionLifetime)))
    context.logger.info("signed in", metadata: ["user": "\(user)"])
    var response = Response.redirect(to: "/", type: .found)
    response.setCookie(
      cookie(AuthenticationMiddleware.sessionCookie, secret, maxAge: Int(configuration.sessionLifetime)))
    response.setCookie(cookie(Self.signInCookie, "", maxAge: 0))
    return response
  }

  private func signOut(_ request: Request, context: ServerContext) async throws -> Response {
    let form = try await Self.form(request)
    if let session = context.session {
      guard let token = form["csrf"], Secret.equal(token, session.csrfToken) else {
        throw AuthenticationMiddleware.csrfRefusal
      }
      try await principals.removeSession(hash: session.hash)
    }
    var response = Response.redirect(to: "/sign-in", type: .found)
    response.setCookie(cookie(AuthenticationMiddleware.sessionCookie, "", maxAge: 0))
    return response
  }

  /// A hash that matches no password, verified against for unknown users.
  private static let decoyHash = Bcrypt.hash(Secret.make(), cost: 12)

  private func cookie(_ name: String, _ value: String, maxAge: Int) -> Cookie {
    Cookie(
      name: name, value: value, maxAge: maxAge, path: "/", secure: configuration.usesTLS || configuration.secureCookies,
      httpOnly: true,
      sameSite: .strict)
  }

  // MARK: Restore and sync

  private func preview(_ request: Request, context: ServerContext, sync: Bool) async throws -> Response {
    let form = try await pageForm(request, context: context)
    let app = try app(context)
    let number = try number(context)
    let preview: Vault.Preview
    if sync {
      _ = try context.require(.sync)
      preview = try await vault.previewSync(app: app, number: number, environment: nil, logger: context.logger)
    } else {
      let environment = try validateName(form["environment"] ?? "", as: "environment")
      try context.requireSignedIn()
      let production = try await vault.app(app, logger: context.logger).environment(environment).isProduction
      _ = try context.require(.change(production: production))
      preview = try await vault.previewRestore(
        app: app, number: number, environment: environment, logger: context.logger)
    }
    let action = sync ? "sync" : "restore"
    var view: [String: Any] = [
      "app": app, "number": String(number), "environment": preview.environment,
      "action": sync ? "Sync" : "Restore", "files": Self.fileViews(preview.files),
      "headTag": preview.head.map(String.init) ?? "none",
      "confirmAction": "/apps/\(app)/versions/\(number)/\(action)",
    ]
    if let head = preview.head { view["head"] = String(head) }
    return try render("preview", title: "\(sync ? "Sync" : "Restore") v\(number)", context: context, view)
  }

  private func confirm(_ request: Request, context: ServerContext, sync: Bool) async throws -> Response {
    let form = try await pageForm(request, context: context)
    let app = try app(context)
    let number = try number(context)
    let environment = try validateName(form["environment"] ?? "", as: "environment")
    let expected: Vault.ExpectedHead
    switch form["head"] {
    case "none": expected = .none
    case let text?:
      guard let number = Int(text), number > 0 else {
        throw OperationError(.usage, "the form's head `\(SafeText.escaping(text))` is not a version number")
      }
      expected = .version(number)
    case nil: throw OperationError(.usage, "the form lacks the head it was previewed against")
    }
    do {
      if sync {
        let principal = try context.require(.sync)
        _ = try await vault.sync(
          app: app, number: number, environment: environment, author: principal.name, expectedHead: expected,
          logger: context.logger)
      } else {
        let production = try await vault.app(app, logger: context.logger).environment(environment).isProduction
        let principal = try context.require(.change(production: production))
        _ = try await vault.restore(
          app: app, number: number, environment: environment, comment: nil, author: principal.name,
          expectedHead: expected, logger: context.logger)
      }
    } catch let error as OperationError where error.kind == .conflict {
      throw Problem(
        .preconditionFailed, type: "head-moved",
        detail: "the head of \(environment) moved since the preview; nothing was changed. Preview again.")
    }
    return Response.redirect(to: "/apps/\(app)", type: .found)
  }

  // MARK: Rendering

  private func render(_ template: String, title: String, context: ServerContext, _ view: [String: Any]) throws
    -> Response
  {
    var view = view
    view["title"] = title
    if let principal = context.principal {
      view["principal"] = ["name": principal.name, "role": principal.role.rawValue]
    }
    if let session = context.session { view["csrf"] = session.csrfToken }
    guard let html = Self.library.render(view, withTemplate: template) else {
      throw OperationError(.internal, "no page template `\(template)`")
    }
    return Response(
      status: .ok, headers: Self.pageHeaders, body: .init(byteBuffer: ByteBuffer(string: html)))
  }

  /// A problem as a page, for a browser.
  static func errorPage(_ problem: Problem, request: Request, context: ServerContext) throws -> Response {
    var view: [String: Any] = ["title": problem.title, "detail": problem.detail]
    if let rule = problem.rule { view["rule"] = rule }
    if let entry = problem.entry { view["entry"] = entry }
    if let principal = context.principal {
      view["principal"] = ["name": principal.name, "role": principal.role.rawValue]
    }
    let html = library.render(view, withTemplate: "error") ?? problem.detail
    return Response(
      status: .init(code: problem.status), headers: pageHeaders, body: .init(byteBuffer: ByteBuffer(string: html)))
  }

  static let pageHeaders: HTTPFields = [
    .contentType: "text/html; charset=utf-8",
    .contentSecurityPolicy:
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    HTTPField.Name("X-Content-Type-Options")!: "nosniff", HTTPField.Name("Referrer-Policy")!: "no-referrer",
    .cacheControl: "no-store",
  ]

  private static func asset(_ bytes: [UInt8], type: String) -> Response {
    Response(
      status: .ok, headers: [.contentType: type, .cacheControl: "max-age=300"],
      body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
  }

  /// The changed files as the `changes` template shows them.
  static func fileViews(_ files: [FileDiff]) -> [[String: Any]] {
    files.map { file in
      let change = file.change
      var view: [String: Any] = [
        "path": change.path, "kind": change.kind.rawValue,
        "mark": ["added": "A", "removed": "D", "modified": "M", "mode-changed": "m"][change.kind.rawValue] ?? "?",
      ]
      let sizes = { (old: Int64?, new: Int64?) in
        "\(old.map(ByteCount.format) ?? "–") → \(new.map(ByteCount.format) ?? "–")"
      }
      switch file.detail {
      case .keys(let keys):
        view["keys"] = keys.map { key -> [String: Any] in
          ["line": key.description, "text": key.text ?? [], "hasText": !(key.text ?? []).isEmpty]
        }
        view["hasKeys"] = !keys.isEmpty
      case .text(let lines):
        view["text"] = lines
        view["hasText"] = !lines.isEmpty
      case .sizes(let old, let new):
        view["note"] = sizes(old, new)
      case .tooLarge(let old, let new):
        view["note"] = sizes(old, new) + ": too large to show here; download both versions to compare them"
      }
      var notes = file.notes
      if change.kind == .modified, file.modeChanged, let old = change.old, let new = change.new {
        notes.insert("mode \(old.mode.rawValue) → \(new.mode.rawValue)", at: 0)
      }
      view["notes"] = notes
      return view
    }
  }

  /// A page form, with the session's CSRF token checked.
  private func pageForm(_ request: Request, context: ServerContext) async throws -> [String: String] {
    let form = try await Self.form(request)
    guard let session = context.session, let token = form["csrf"], Secret.equal(token, session.csrfToken) else {
      throw context.principal == nil
        ? Problem(.unauthorized, type: "unauthorized", detail: "sign in first")
        : AuthenticationMiddleware.csrfRefusal
    }
    return form
  }

  /// An `application/x-www-form-urlencoded` body, bounded.
  static func form(_ request: Request) async throws -> [String: String] {
    let body = try await JSONReply.collect(request)
    var fields: [String: String] = [:]
    for pair in String(buffer: body).split(separator: "&") {
      let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
        String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
      }
      guard let name = parts.first, !name.isEmpty else { continue }
      fields[name] = parts.count > 1 ? parts[1] : ""
    }
    return fields
  }
}

/// One-time sign-in links, as `confvault serve` prints one for an admin at start.
actor SignInLinks {
  private var links: [SHA256Hex: (user: String, expiresAt: Date)] = [:]

  /// A new link token for `user`, valid once, for `lifetime` seconds.
  func make(for user: String, lifetime: TimeInterval = 600) -> String {
    let token = Secret.make()
    links[Secret.hash(token)] = (user, Date().addingTimeInterval(lifetime))
    return token
  }

  func redeem(_ token: String) -> String? {
    guard let link = links.removeValue(forKey: Secret.hash(token)), link.expiresAt > Date() else { return nil }
    return link.user
  }
}
