import ConfvaultCore
import Foundation
import HTTPTypes
import Hummingbird
import Prometheus

/// The server's Prometheus metrics: requests by route and status, latency by route, uploads
/// refused by rule. Served as text at `/metrics`.
final class ServerMetrics: Sendable {
  private let registry = PrometheusCollectorRegistry()

  private static var requests: MetricNameDescriptor {
    MetricNameDescriptor(
      namespace: "confvault", subsystem: "http", metricName: "requests", unitName: "total",
      helpText: "HTTP requests answered, by route, method and status.")
  }
  private static var latency: MetricNameDescriptor {
    MetricNameDescriptor(
      namespace: "confvault", subsystem: "http", metricName: "request_duration", unitName: "seconds",
      helpText: "Time to answer a request (its headers), by route.")
  }
  private static var refused: MetricNameDescriptor {
    MetricNameDescriptor(
      namespace: "confvault", subsystem: "uploads", metricName: "refused", unitName: "total",
      helpText: "Uploaded archives refused, by the rule they broke.")
  }
  private static let buckets: [Duration] = [
    .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10),
  ]

  func request(route: String, method: String, status: Int, duration: Duration) {
    registry.makeCounter(
      descriptor: Self.requests, labels: [("route", route), ("method", method), ("status", String(status))]
    ).increment()
    registry.makeDurationHistogram(descriptor: Self.latency, labels: [("route", route)], buckets: Self.buckets)
      .record(duration)
  }

  func refusedUpload(rule: ArchiveRefusal.Rule) {
    registry.makeCounter(descriptor: Self.refused, labels: [("rule", rule.rawValue)]).increment()
  }

  func text() -> String { registry.emitToString() }
}

/// Counts each request by the route it matched (its pattern, never the path: no names in labels).
struct MetricsMiddleware: RouterMiddleware {
  typealias Context = ServerContext
  let metrics: ServerMetrics

  func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
    -> Response
  {
    let started = ContinuousClock.now
    var status = 500
    defer {
      metrics.request(
        route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status,
        duration: ContinuousClock.now - started)
    }
    let response = try await next(request, context)
    status = response.status.code
    return response
  }
}
