import Foundation
import Hummingbird

/// Serves the OpenAPI 3.1 document of the management API (`Resources/openapi.json`, compiled in).
struct OpenAPIController {
    static let document = ByteBuffer(bytes: EmbeddedResources.files["openapi.json"] ?? Data("{}".utf8))

    func addRoutes(to api: RouterGroup<WardenContext>) {
        api.get("openapi.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: Self.document))
        }
    }
}
