import Hummingbird
import TernCore
import TernStorage

/// `GET /api/v1/health`: 204 while the database answers (the Svix SDK ignores the body), 503 otherwise.
struct SvixHealthController {
    let database: Database

    func addRoutes(to group: RouterGroup<TernRequestContext>) {
        group.get("health", use: self.health)
    }

    @Sendable func health(_ request: Request, context: TernRequestContext) async throws -> Response {
        do {
            try await self.database.ping()
        } catch {
            throw TernError.unavailable("the database is unavailable")
        }
        return JSONResponse.noContent()
    }
}
