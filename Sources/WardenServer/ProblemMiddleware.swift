import Hummingbird
import WardenCore

/// Turns every error of the API into a problem document: core refusals keep their code and message;
/// anything unexpected is logged and answered as a bare 500 that reveals nothing.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as WardenError {
            throw Problem.from(error)
        } catch let error as HTTPResponseError {
            throw error
        } catch let error as VaultError {
            // A rotation elsewhere took this server's key out of service: it says so rather than failing bare.
            guard case .rotated = error else {
                throw Problem(.internalServerError, code: "internal_error", detail: "the server could not complete the request")
            }
            context.logger.critical("\(error)")
            throw Problem(.serviceUnavailable, code: "vault_rotated", detail: error.description)
        } catch {
            context.logger.error("request failed", metadata: ["error_type": "\(type(of: error))"])
            throw Problem(.internalServerError, code: "internal_error", detail: "the server could not complete the request")
        }
    }
}
