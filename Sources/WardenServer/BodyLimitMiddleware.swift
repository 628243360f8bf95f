import Hummingbird
import HTTPTypes
import NIOCore

/// Refuses request bodies over the configured size before any handler reads them: by the declared
/// Content-Length at once, and for chunked bodies while they stream in.
struct BodyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw Problem.payloadTooLarge(limit: limit)
        }
        var request = request
        if request.headers[.contentLength] == nil, request.headers[.transferEncoding] != nil {
            // Chunked body: collect up to the limit (management bodies are small JSON documents).
            do {
                let buffer = try await request.body.collect(upTo: limit)
                request.body = .init(buffer: buffer)
            } catch is NIOTooManyBytesError {
                throw Problem.payloadTooLarge(limit: limit)
            } catch {
                // A bad chunk size or a body cut short: the request is malformed, not too large.
                throw Problem(.badRequest, code: "malformed_body", detail: "the request body is malformed or incomplete")
            }
        }
        return try await next(request, context)
    }
}
