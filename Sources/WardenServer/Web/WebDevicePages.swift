import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `/device`: where a person approves `warden login --device` (the code it printed), after seeing where
/// the request came from and when.
struct WebDevicePages {
    let app: WebApp

    func addRoutes(to web: RouterGroup<WardenContext>) {
        app.get(web, "/device") { request, principal, _ in
            guard let code = request.uri.queryParameters["code"].map(String.init), !code.isEmpty else {
                return page(principal, nil)
            }
            guard let grant = try await app.services.deviceLogins.pending(userCode: code) else {
                return page(principal, nil, error: "No device login is waiting with the code \(code): it may have expired (10 minutes).")
            }
            return page(principal, grant)
        }
        app.post(web, "/device") { form, principal, _ in
            let approve = form["action"] == "approve"
            do {
                try await app.services.deviceLogins.decide(principal, userCode: form["user_code"] ?? "", approve: approve)
            } catch {
                return page(principal, nil, error: WebApp.message(error))
            }
            return app.page(
                "message", title: approve ? "Device logged in" : "Device login denied", nav: nil, principal,
                ["notice": approve ? "The machine is logged in as you; it may close this page." : "The machine was not logged in."])
        }
    }

    func page(_ principal: Principal, _ grant: DeviceGrantRecord?, error: String? = nil) -> Response {
        var data: [String: Any] = [:]
        if let grant {
            data["request"] = [
                "code": grant.userCode, "address": grant.clientAddress,
                "created": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(grant.createdAt) / 1000)),
            ]
        }
        if let error { data["error"] = error }
        return app.page("device", title: "Log in a device", nav: nil, principal, status: error == nil ? .ok : .badRequest, data)
    }
}
