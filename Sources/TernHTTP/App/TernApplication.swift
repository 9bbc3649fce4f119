import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import TernCore
import TernDelivery
import TernStorage

/// Opens the database, builds the router and registers the long-running services. Tests call this with a test
/// configuration; the `tern` executable calls it with the flags and environment.
public func buildApplication(_ configuration: TernConfiguration) async throws -> some ApplicationProtocol {
    var logger = Logger(label: "tern")
    logger.logLevel = configuration.logLevel
    let location = try DatabaseLocation(url: configuration.databaseURL)
    let migrator = try Migrator(directory: configuration.resourcesDirectory.appendingPathComponent("Migrations"))
    let secretBox = try configuration.secretBox(for: location, logger: logger)
    let database = try await Database.open(location, connections: configuration.databaseConnections, logger: logger)
    let store = Store(database: database, secretBox: secretBox)
    let authenticator = Authenticator(store: store, adminKey: configuration.adminKey, logger: logger)
    TernMetrics.bootstrap()
    let router: Router<TernRequestContext>
    do {
        router = try buildRouter(store: store, authenticator: authenticator, configuration: configuration)
    } catch {
        await database.close()
        throw error
    }
    var services: [any Service] = [database, authenticator]
    // The tracer's exporter runs first and stops last, so that the last spans are still sent.
    if let tracing = configuration.tracing, let exporter = try TernTracing.start(tracing, logger: logger) { services.insert(exporter, at: 0) }
    if configuration.role != .api {
        // Last in, first out: on shutdown the workers finish their deliveries while the database is still open.
        services.append(Pruner(store: store, policy: configuration.retention, logger: logger))
        services.append(DeliveryWorker(store: store, settings: configuration.delivery, logger: logger))
    }
    // Connections idle for `TERN_REQUEST_TIMEOUT_SECONDS` (30 s) are closed, and so are those whose request does not
    // arrive whole in time (slow clients cannot hold them for ever); headers are capped at 16 KB each, 64 KB in all and 100 fields, refused
    // before they are buffered whole.
    let requestTimeout = TimeAmount.nanoseconds(
        Int64(configuration.requestReadTimeout.components.seconds) * 1_000_000_000
            + Int64(configuration.requestReadTimeout.components.attoseconds / 1_000_000_000))
    let server = HTTPServerBuilder.http1(
        configuration: .init(
            additionalChannelHandlers: [RequestDeadlineHandler(timeout: requestTimeout)],
            idleTimeout: requestTimeout,
            httpDecoderConfiguration: .init(maxHeaderFieldSize: 16 * 1024, maxHeaderListSize: 64 * 1024, maxHeaderFieldCount: 100)
        ))
    var app = Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "Tern"),
        services: services,
        logger: logger
    )
    let startupLogger = logger
    app.beforeServerStarts {
        try await prepare(
            database: database, store: store, migrator: migrator, configuration: configuration, location: location, logger: startupLogger)
    }
    return app
}

/// Migrates, and on first start without `TERN_ADMIN_KEY` creates the admin key and prints it once.
func prepare(
    database: Database, store: Store, migrator: Migrator, configuration: TernConfiguration, location: DatabaseLocation, logger: Logger
) async throws {
    await database.started.wait()
    do {
        try await migrator.migrate(database, logger: logger)
    } catch let error as ConfigurationError {
        throw error
    } catch {
        throw ConfigurationError("cannot prepare the database at \(location): \(describeDatabaseError(error))")
    }
    if configuration.adminKey == nil, try await !store.hasAdminKey() {
        let issued = try await store.issueAPIKey(organizationID: nil, name: "admin", scopes: [Scopes.all], applicationID: nil)
        FileHandle.standardOutput.write(
            Data(
                """

                ┌ Tern admin key (shown once; only its argon2id hash is stored) ───────────────
                │ \(issued.token)
                └ Set TERN_ADMIN_KEY to choose your own instead. ─────────────────────────────────


                """.utf8))
    }
    logger.info("Tern is ready", metadata: ["database": "\(location)", "url": "\(configuration.publicBaseURL)"])
}

/// The routes: `/health`, `/metrics`, the admin API under `/v1/admin`, the organization API under `/v1`, the
/// portal under `/portal` and the admin pages under `/admin` (with their files from `Public/` under `/static`).
public func buildRouter(store: Store, authenticator: Authenticator, configuration: TernConfiguration) throws -> Router<TernRequestContext> {
    let router = Router(context: TernRequestContext.self)
    // A span per request, continuing the caller's `traceparent`.
    if configuration.tracing != nil { router.add(middleware: TracingMiddleware()) }
    let routes = RouteTable()
    router.add(middleware: APIMiddleware(routes: routes))
    guard configuration.role != .worker else {
        HealthController(database: store.database).addRoutes(to: router)
        MetricsController(store: store).addRoutes(to: router)
        routes.load(router.routes)
        return router
    }
    let signer = SessionSigner(secretBox: store.secretBox)
    let pages = WebPages(
        library: try WebPages.loadTemplates(configuration.resourcesDirectory.appendingPathComponent("Templates")),
        signer: signer, secureCookies: configuration.publicBaseURL.hasPrefix("https://")
    )
    router.add(
        middleware: FileMiddleware(
            configuration.resourcesDirectory.appendingPathComponent("Public").path, urlBasePath: "/static",
            cacheControl: .init([(MediaType(type: .any), [.maxAge(3600)])])
        ))
    HealthController(database: store.database).addRoutes(to: router)
    MetricsController(store: store).addRoutes(to: router)
    // API keys are read on the API's routes only; the pages read their session cookie (`WebErrorMiddleware` groups).
    let v1 = router.group("v1").add(middleware: AuthMiddleware(authenticator: authenticator))
    let admin = v1.group("admin", context: AdminContext.self)
        .add(middleware: IdempotencyMiddleware<AdminContext>(store: store))
        .add(middleware: AuditMiddleware<AdminContext>(store: store))
    AdminController(store: store).addRoutes(to: admin)

    let api = v1.group(context: OrganizationContext.self)
        .add(middleware: IdempotencyMiddleware<OrganizationContext>(store: store))
        .add(middleware: AuditMiddleware<OrganizationContext>(store: store))
    APIKeyController(store: store, authenticator: authenticator).addRoutes(to: api)
    AuditController(store: store).addRoutes(to: api)
    OperationalEndpointController(store: store, allowPrivateEndpoints: configuration.allowPrivateEndpoints).addRoutes(to: api)
    let applications = ApplicationController(store: store)
    applications.addRoutes(to: api)
    let application = api.group("applications/:app_id", context: ApplicationContext.self)
    applications.addRoutes(to: application)
    EventTypeController(store: store).addRoutes(to: application)
    EndpointController(store: store, allowPrivateEndpoints: configuration.allowPrivateEndpoints).addRoutes(to: application)
    TenantController(store: store).addRoutes(to: application)
    EventController(store: store).addRoutes(to: application)
    DeliveryController(store: store).addRoutes(to: application)
    PortalSessionController(store: store, signer: signer, publicBaseURL: configuration.publicBaseURL).addRoutes(to: application)
    SourceController(store: store, baseURL: configuration.publicBaseURL).addRoutes(to: application)
    IngressController(store: store, baseURL: configuration.publicBaseURL, trustedProxies: configuration.trustedProxies).addRoutes(to: router)

    let svix = router.group("api/v1").add(middleware: SvixErrorMiddleware())
    SvixHealthController(database: store.database).addRoutes(to: svix)
    let svixAPI = svix.group()
        .add(middleware: AuthMiddleware(authenticator: authenticator))
        .add(middleware: SvixEnvironmentMiddleware(store: store))
        .group(context: SvixContext.self)
        .add(middleware: SvixIdempotencyMiddleware(store: store))
        .add(middleware: AuditMiddleware<SvixContext>(store: store))
    SvixApplicationController(store: store).addRoutes(to: svixAPI)
    SvixEventTypeController(store: store).addRoutes(to: svixAPI)
    SvixEndpointController(store: store, allowPrivateEndpoints: configuration.allowPrivateEndpoints).addRoutes(to: svixAPI)
    SvixMessageController(store: store).addRoutes(to: svixAPI)
    SvixAttemptController(store: store).addRoutes(to: svixAPI)
    SvixBackgroundTaskController(store: store).addRoutes(to: svixAPI)
    SvixAuthController(store: store, signer: signer, publicBaseURL: configuration.publicBaseURL).addRoutes(to: svixAPI)
    SvixOperationalWebhookController(store: store, allowPrivateEndpoints: configuration.allowPrivateEndpoints).addRoutes(to: svixAPI)

    PortalController(store: store, pages: pages, allowPrivateEndpoints: configuration.allowPrivateEndpoints).addRoutes(to: router)
    AdminWebController(store: store, pages: pages, authenticator: authenticator).addRoutes(to: router)
    routes.load(router.routes)
    return router
}

/// A short, secret-free account of a database error for one line of output.
public func describeDatabaseError(_ error: any Error) -> String {
    let text = String(reflecting: error)
    if text.contains("connectionError") || text.contains("Connection refused") || text.contains("connect(descriptor") {
        return "connection refused or unreachable"
    }
    if text.contains("28P01") || text.contains("password authentication failed") { return "authentication failed" }
    if text.contains("3D000") { return "the database does not exist" }
    if let configuration = error as? ConfigurationError { return configuration.description }
    return String(text.prefix(300))
}

/// Runs a built application until SIGTERM or SIGINT. Shutdown is graceful (deliveries in flight finish, each within
/// its endpoint's timeout of at most 30 s) for up to `gracefulFor`; after that the services are cancelled, so that a
/// process whose database has gone away (where a claim can wait for a connection for ever) still exits. On
/// `onEventLoops`, the application's tasks run on NIO's event loops (`EventLoopExecutor`) rather than Swift's pool.
public func runUntilStopped(_ app: some ApplicationProtocol, gracefulFor: Duration, onEventLoops: Bool = true) async throws {
    var configuration = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: app.logger)
    configuration.maximumGracefulShutdownDuration = gracefulFor
    configuration.maximumCancellationDuration = .seconds(5)
    let group = ServiceGroup(configuration: configuration)
    guard onEventLoops else { return try await group.run() }
    try await EventLoopExecutor(group: .singleton).run { try await group.run() }
}
