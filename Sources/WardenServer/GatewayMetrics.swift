import Prometheus
import WardenCore
import Synchronization

/// Prometheus metrics of the gateway, served at `GET /metrics`.
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let auditQueueDepth: Gauge

    init() {
        auditQueueDepth = registry.makeGauge(name: "warden_audit_queue_depth", help: "Audit rows waiting for their group commit")
    }

    /// The registry's metrics by label values, looked up once (making one validates its name and help each time).
    private let counters = Mutex<[String: Counter]>([:])
    private let histograms = Mutex<[String: DurationHistogram]>([:])

    func request(venue: String, outcome: Outcome) {
        let decision = outcome.rawValue
        let counter = counters.withLock { known in
            if let counter = known[venue + "|" + decision] { return counter }
            let made = registry.makeCounter(
                name: "warden_gateway_requests_total", labels: [("venue", venue), ("decision", decision)],
                help: "Gateway requests by venue and decision")
            known[venue + "|" + decision] = made
            return made
        }
        counter.increment()
    }

    func upstream(venue: String, seconds: Duration) {
        let histogram = histograms.withLock { known in
            if let histogram = known[venue] { return histogram }
            let made = registry.makeDurationHistogram(
                name: "warden_gateway_upstream_duration_seconds", labels: [("venue", venue)],
                buckets: [
                    .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                    .seconds(1), .seconds(2.5), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
                ],
                help: "Time from forwarding a request to the end of the upstream response")
            known[venue] = made
            return made
        }
        histogram.record(seconds)
    }

    func render() -> String { registry.emitToString() }
}
