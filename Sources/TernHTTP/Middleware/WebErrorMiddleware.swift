import Hummingbird
import TernCore

/// On the groups of web pages (`/portal`, `/admin`): an error is answered as an HTML page with the status the API
/// would give; an unauthenticated GET goes to `signInPath` when the group has one. The API's groups answer
/// problem+json (`APIMiddleware`), so the choice follows the route group, not the look of the path.
struct WebErrorMiddleware: RouterMiddleware {
    typealias Context = TernRequestContext
    let pages: WebPages
    var signInPath: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = Problem.logged(error, request: request, context: context)
            if problem.status == 401, request.method == .get, let signInPath = self.signInPath {
                return WebPages.redirect(signInPath)
            }
            return self.pages.errorPage(problem)
        }
    }
}
