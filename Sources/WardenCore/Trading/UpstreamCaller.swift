import Foundation
import HTTPTypes
import WardenVenues

/// Sends a call Warden makes on its own account (a price, a balance) and returns the whole answer.
/// The server implements it with its upstream HTTP client.
public protocol UpstreamCaller: Sendable {
    func send(_ request: UpstreamRequest, origin: String) async throws -> (status: Int, body: Data)
}

/// A configured base URL split into the origin and the path prefix every venue path goes under.
struct UpstreamBase: Sendable {
    let origin: String
    let prefix: String
    /// The host, and the port when the URL names one.
    let authority: String

    init(_ baseURL: String) {
        let parts = URLComponents(string: baseURL)
        let path = parts?.path ?? ""
        let prefix = path.hasSuffix("/") ? String(path.dropLast()) : path
        self.prefix = prefix
        origin = String(baseURL.dropLast(path.count))
        authority = (parts?.host ?? "") + (parts?.port.map { ":\($0)" } ?? "")
    }

    func url(_ request: UpstreamRequest) -> String {
        origin + request.path + (request.query.isEmpty ? "" : "?" + request.query)
    }
}

/// Where a venue's market data is read: its base, or its market data host, with the credential's headers
/// when the venue serves market data only to its customers.
struct MarketSource: Sendable {
    let base: UpstreamBase
    let headers: HTTPFields
}
