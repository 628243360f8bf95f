import Prometheus

/// Prometheus metrics of the gateway, served at `GET /metrics`.
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let auditQueueDepth: Gauge

    init() {
        auditQueueDepth = registry.makeGauge(name: "warden_audit_queue_depth", help: "Audit rows waiting for their group commit")
    }

    func request(venue: String, decision: String) {
        registry.makeCounter(name: "warden_gateway_requests_total", labels: [("venue", venue), ("decision", decision)],
                             help: "Gateway requests by venue and decision").increment()
    }

    func upstream(venue: String, seconds: Duration) {
        registry.makeDurationHistogram(
            name: "warden_gateway_upstream_duration_seconds", labels: [("venue", venue)],
            buckets: [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                      .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60)],
            help: "Time from forwarding a request to the end of the upstream response"
        ).record(seconds)
    }

    func render() -> String { registry.emitToString() }
}
