import Foundation
import Hummingbird
import Logging
import WardenCore

/// One log line per request: its id (the answer's `X-Warden-Request-Id`), method, path without its query
/// (queries may carry signatures), status and duration. Headers and bodies are never logged.
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = WardenContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var status = 500
        defer {
            let elapsed = ContinuousClock.now - start
            let ms = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            context.logger.info(
                "request",
                metadata: [
                    "request": "\(context.requestID)",
                    "method": "\(request.method.rawValue)",
                    "path": "\(request.uri.path)",
                    "status": "\(status)",
                    "ms": "\(Decimals.fixed(ms, places: 2))",
                ])
        }
        do {
            let response = try await next(request, context)
            status = response.status.code
            return response
        } catch let error as HTTPResponseError {
            status = error.status.code
            throw error
        }
    }
}
