import Hummingbird
import WardenCore
import WardenStore

/// `GET /healthz`: the vault's state and whether the store answers. 200 when both are fine, else 503.
struct HealthController {
    let database: Database
    let vault: Vault?

    struct Status: ResponseEncodable {
        let status: String
        let vault: String
        let store: String
    }

    func addRoutes(to router: Router<WardenContext>) {
        router.get("/healthz") { _, _ -> EditedResponse<Status> in
            let storeOK = await database.ping()
            let healthy = storeOK && vault != nil
            return EditedResponse(
                status: healthy ? .ok : .serviceUnavailable,
                response: Status(
                    status: healthy ? "ok" : "unavailable",
                    vault: vault == nil ? "sealed" : "unsealed",
                    store: storeOK ? "ok" : "unreachable"))
        }
    }
}
