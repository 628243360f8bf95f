import Foundation
import Hummingbird
import WardenCore

/// `POST /auth/device` and `POST /auth/device/token`: the device authorization grant (RFC 8628) that
/// `warden login --device` uses. The token endpoint answers as RFC 8628 says (`400 {"error": …}` while
/// the person has not approved), so any OAuth device-flow client can drive it.
struct DeviceLoginController {
    let logins: DeviceLogins
    /// The dashboard's address, for the verification URI.
    let base: String
    let bodyLimit: Int

    struct StartResponse: Encodable {
        let deviceCode: String, userCode: String, verificationURI: String, verificationURIComplete: String
        let expiresIn: Int, interval: Int
        enum CodingKeys: String, CodingKey {
            case deviceCode = "device_code", userCode = "user_code", verificationURI = "verification_uri"
            case verificationURIComplete = "verification_uri_complete", expiresIn = "expires_in", interval
        }
    }
    struct TokenRequest: Decodable {
        let deviceCode: String
        enum CodingKeys: String, CodingKey { case deviceCode = "device_code" }
    }
    struct TokenError: Encodable {
        let error: String, errorDescription: String
        enum CodingKeys: String, CodingKey { case error, errorDescription = "error_description" }
    }

    func addPublicRoutes(to api: RouterGroup<WardenContext>) {
        api.post("auth/device") { _, context in
            let started = try await logins.start(clientAddress: context.clientAddress)
            return try Response.json(
                StartResponse(
                    deviceCode: started.deviceCode, userCode: started.userCode, verificationURI: "\(base)/device",
                    verificationURIComplete: "\(base)/device?code=\(started.userCode)", expiresIn: DeviceLogins.lifetimeSeconds,
                    interval: DeviceLogins.intervalSeconds))
        }
        api.post("auth/device/token") { request, _ in
            let body = try await JSONBody.decode(TokenRequest.self, from: request, limit: bodyLimit)
            switch try await logins.poll(deviceCode: body.deviceCode) {
            case .approved(let result):
                return try Response.json(
                    AuthController.LoginResponse(
                        accessToken: result.accessToken, tokenType: "Bearer", expiresIn: result.expiresIn,
                        mustChangePassword: result.mustChangePassword))
            case .pending: return try Self.error("authorization_pending", "the login has not been approved yet")
            case .slowDown: return try Self.error("slow_down", "poll at most every \(DeviceLogins.intervalSeconds) seconds")
            case .denied: return try Self.error("access_denied", "the login was denied")
            case .expired: return try Self.error("expired_token", "the device code is unknown, used or expired: start again")
            }
        }
    }

    static func error(_ code: String, _ description: String) throws -> Response {
        var response = try Response.json(TokenError(error: code, errorDescription: description), status: .badRequest)
        response.headers[.cacheControl] = "no-store"
        return response
    }
}
