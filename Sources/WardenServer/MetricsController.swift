import Hummingbird
import WardenCore

/// `GET /metrics`: Prometheus text format.
struct MetricsController {
    let metrics: GatewayMetrics
    let gateway: Gateway

    func addRoutes(to router: Router<WardenContext>) {
        router.get("/metrics") { _, _ in
            metrics.auditQueueDepth.set(Double(gateway.audit.depth))
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(string: metrics.render())))
        }
    }
}
