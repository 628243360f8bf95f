import Foundation
import Hummingbird
import WardenCore
import WardenStore

/// `/freeze` and `/unfreeze`: the kill switch, for logged-in people only (an agent key cannot reach these
/// routes: they sit behind the session check).
struct FreezeController {
    let killSwitch: KillSwitch
    let bodyLimit: Int

    struct FreezeRequest: Decodable {
        /// `all` for every key (administrators); without it, `email`'s keys, one key's `family` (its id), or the caller's own.
        let all: Bool?
        let email: String?
        let family: String?
        let reason: String?
    }

    struct View: Encodable {
        let scope, reason, frozenBy: String
        let frozenAt: String?
        enum CodingKeys: String, CodingKey { case scope, reason, frozenBy = "frozen_by", frozenAt = "frozen_at" }
        init(_ r: FreezeRecord) {
            scope = r.scope; reason = r.reason; frozenBy = r.frozenBy; frozenAt = Timestamp.iso(r.frozenAt)
        }
    }

    struct Changed: Encodable {
        let scope: String
        let changed: Bool
    }

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("freeze") { _, context in
            try Response.json(["freezes": try await killSwitch.list(try context.requirePrincipal()).map(View.init)])
        }
        api.post("freeze") { request, context in
            let p = try context.requirePrincipal()
            let body = try await JSONBody.decode(FreezeRequest.self, from: request, limit: bodyLimit)
            let scope = try await killSwitch.scope(all: body.all == true, email: body.email, family: body.family, caller: p)
            let changed = try await killSwitch.freeze(scope, reason: body.reason ?? "", by: .person(p))
            return try Response.json(Changed(scope: scope.stored, changed: changed), status: changed ? .created : .ok)
        }
        api.post("unfreeze") { request, context in
            let p = try context.requirePrincipal()
            let body = try await JSONBody.decode(FreezeRequest.self, from: request, limit: bodyLimit)
            let scope = try await killSwitch.scope(all: body.all == true, email: body.email, family: body.family, caller: p)
            let changed = try await killSwitch.unfreeze(scope, by: .person(p))
            return try Response.json(Changed(scope: scope.stored, changed: changed))
        }
    }
}
