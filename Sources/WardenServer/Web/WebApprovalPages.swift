import Foundation
import Hummingbird
import HTTPTypes
import WardenCore
import WardenStore

/// Orders held for approval: the owner's list, one order's page (the link in its alarm), approve, reject.
struct WebApprovalPages {
    let app: WebApp

    func addRoutes(to web: RouterGroup<WardenContext>) {
        app.get(web, "/approvals") { _, principal, _ in try await list(principal) }
        app.get(web, "/approvals/{id}") { _, principal, context in
            do {
                return try await list(
                    principal, only: try await app.gateway.approvals.find(principal, id: context.parameters.get("id") ?? ""))
            } catch {
                return try await list(principal, error: WebApp.message(error), status: .notFound)
            }
        }
        for action in ["approve", "reject"] {
            app.post(web, RouterPath("/approvals/{id}/\(action)")) { _, principal, context in
                let id = context.parameters.get("id") ?? ""
                do {
                    let done =
                        action == "approve"
                        ? try await app.gateway.approvals.approve(principal, id: id)
                        : try await app.gateway.approvals.reject(principal, id: id)
                    let notice =
                        switch done.status {
                        case .sent: "Approved and sent: the venue answered \(done.answerStatus ?? 0)."
                        case .rejected: "Rejected: nothing was sent."
                        default: "Approved, but not sent: \(done.reason ?? done.status.rawValue)."
                        }
                    return try await list(principal, only: done, notice: notice)
                } catch {
                    return try await list(principal, error: WebApp.message(error), status: .conflict)
                }
            }
        }
    }

    func list(
        _ principal: Principal, only: ApprovalRecord? = nil, notice: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let now = Clock.nowMillis()
        let records: [ApprovalRecord]
        if let only { records = [only] } else { records = try await app.gateway.approvals.list(principal) }
        let rows = records.map { a -> [String: Any] in
            let waiting = a.status == .pending && a.expiresAt > now
            return [
                "id": a.id, "venue": a.venue, "notional": a.notional.description, "client_order_id": a.clientOrderID,
                "created": WebApp.time(a.createdAt), "expires": WebApp.time(a.expiresAt),
                "state": a.status == .pending && !waiting ? "expired" : a.status.rawValue,
                "waiting": waiting && a.ownerID == principal.user.id,
                "answer": a.answerStatus.map { "venue answered \($0)" } ?? a.reason ?? "",
            ]
        }
        var data: [String: Any] = ["approvals": rows]
        if let notice { data["notice"] = notice }
        if let error { data["error"] = error }
        return app.page("approvals", title: "Approvals", nav: "approvals", principal, status: status, data)
    }
}
