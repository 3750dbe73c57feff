import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import ShoalCoordinator
import ShoalRollout
import ShoalWire

/// The coordinator's HTTP side: a JSON API over the same tracker the control protocol serves,
/// `/metrics` for Prometheus, and the dashboard page (docs/API.md).
///
/// Every write goes through `CoordinatorServer.handleOperator(_:as:)`, i.e. the tracker's own
/// `handle(_:from:remoteAddress:now:)` under the server's lock, saved before the answer: the API
/// adds transport, never logic. Reads go the same way (`.status`, `.rolloutStatus`).
///
/// Everything but `/` and `/dashboard` needs `Authorization: Bearer TOKEN`; see
/// `BearerTokenMiddleware`.
public struct CoordinatorAPI: Sendable {
    /// The name write requests are recorded under (`orderedBy`, rollout events), like an
    /// operator certificate's host name.
    public static let operatorName = "http-api"

    public let server: CoordinatorServer
    public let token: String
    let metrics: FleetMetrics

    public init(server: CoordinatorServer, token: String) {
        self.server = server
        self.token = token
        self.metrics = FleetMetrics()
    }

    /// One route: method and path as the OpenAPI document spells them (`{id}` for parameters).
    public struct Route: Hashable, Sendable, CustomStringConvertible {
        public var method: String
        public var path: String
        public var description: String { "\(method) \(path)" }
        public init(method: String, path: String) {
            self.method = method
            self.path = path
        }
    }

    /// Every route the router registers (the OpenAPI test checks the document against this).
    public static let routes: [Route] = {
        var r: [Route] = [
            Route(method: "GET", path: "/"),
            Route(method: "GET", path: "/dashboard"),
            Route(method: "GET", path: "/metrics"),
            Route(method: "GET", path: "/api/v1/status"),
            Route(method: "GET", path: "/api/v1/hosts"),
            Route(method: "GET", path: "/api/v1/rollouts"),
            Route(method: "POST", path: "/api/v1/rollouts"),
            Route(method: "POST", path: "/api/v1/rollouts/plan"),
            Route(method: "GET", path: "/api/v1/rollouts/{id}"),
        ]
        for action in RolloutAction.allCases { r.append(Route(method: "POST", path: "/api/v1/rollouts/{id}/\(action.rawValue)")) }
        return r
    }()

    /// The router: every route of `routes`, behind the bearer-token check.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: BearerTokenMiddleware(token: token))
        var registered: [Route] = []
        func get(_ path: String, _ handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Response) {
            router.get(RouterPath(Self.hummingbirdPath(path)), use: handler)
            registered.append(Route(method: "GET", path: path))
        }
        func post(_ path: String, _ handler: @escaping @Sendable (Request, BasicRequestContext) async throws -> Response) {
            router.post(RouterPath(Self.hummingbirdPath(path)), use: handler)
            registered.append(Route(method: "POST", path: path))
        }
        let api = self
        get("/") { _, _ in Self.html(Dashboard.page) }
        get("/dashboard") { _, _ in Self.html(Dashboard.page) }
        get("/metrics") { _, _ in
            let text = api.metrics.scrape(api.status(), api.rollouts())
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        }
        get("/api/v1/status") { _, _ in Self.json(api.status()) }
        get("/api/v1/hosts") { request, _ in
            let hosts = api.status().hosts
            guard let site = request.uri.queryParameters.get("site") else { return Self.json(hosts) }
            let inSite = hosts.filter { $0.site == site }
            if inSite.isEmpty { return Self.error(.notFound, "no host in site \(site)") }
            return Self.json(inSite)
        }
        get("/api/v1/rollouts") { _, _ in Self.json(api.rollouts()) }
        get("/api/v1/rollouts/{id}") { _, context in
            let id = context.parameters.get("id") ?? ""
            return Self.answer(api.server.handleOperator(.rolloutStatus(id: id), as: Self.operatorName), single: true, created: false)
        }
        post("/api/v1/rollouts") { request, _ in
            let body: RolloutRequest
            do { body = try await Self.decode(RolloutRequest.self, request) } catch let e as BadRequest { return Self.error(.badRequest, e.message) }
            return Self.answer(api.server.handleOperator(.rolloutCreate(body), as: Self.operatorName), single: true, created: true)
        }
        post("/api/v1/rollouts/plan") { request, _ in
            let body: RolloutRequest
            do { body = try await Self.decode(RolloutRequest.self, request) } catch let e as BadRequest { return Self.error(.badRequest, e.message) }
            return Self.answer(api.server.handleOperator(.rolloutPlan(body), as: Self.operatorName), single: true, created: false)
        }
        for action in RolloutAction.allCases {
            post("/api/v1/rollouts/{id}/\(action.rawValue)") { request, context in
                let id = context.parameters.get("id") ?? ""
                var hosts: [String]?
                if action == .retry || action == .revert {
                    do { hosts = try await Self.decodeOptional(HostsBody.self, request)?.hosts } catch let e as BadRequest {
                        return Self.error(.badRequest, e.message)
                    }
                }
                return Self.answer(api.server.handleOperator(.rolloutControl(id: id, action: action, hosts: hosts), as: Self.operatorName),
                                   single: true, created: false, control: true)
            }
        }
        assert(Set(registered) == Set(Self.routes), "CoordinatorAPI.routes is out of step with router()")
        return router
    }

    /// The routes `router()` registers, read back from the Hummingbird router itself.
    public func registeredRoutes() -> [Route] {
        router().routes.map { Route(method: $0.method.rawValue, path: $0.path.description) }
    }

    /// `{id}` → Hummingbird's `:id`.
    static func hummingbirdPath(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { part in
            part.hasPrefix("{") && part.hasSuffix("}") ? ":" + part.dropFirst().dropLast() : String(part)
        }.joined(separator: "/")
    }

    func status() -> StatusReport {
        if case .status(let report) = server.handleOperator(.status, as: Self.operatorName) { return report }
        return StatusReport(bundles: [], hosts: [], badPeerReports: [])
    }

    func rollouts() -> [Rollout] {
        if case .rollouts(let all) = server.handleOperator(.rolloutStatus(id: nil), as: Self.operatorName) { return all }
        return []
    }

    /// `{"hosts": [...]}` of retry and revert (the body may be absent: retry then takes every failed host).
    struct HostsBody: Codable { var hosts: [String]? }

    struct BadRequest: Error { var message: String }

    static let maxBody = 1 << 20

    static func decode<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        guard let value = try await decodeOptional(type, request) else { throw BadRequest(message: "the request needs a JSON body") }
        return value
    }

    static func decodeOptional<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T? {
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: maxBody) } catch { throw BadRequest(message: "the body is larger than \(maxBody) bytes") }
        let bytes = Array(buffer.readableBytesView)
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return nil }
        do {
            return try JSONDecoder().decode(T.self, from: Data(bytes))
        } catch let error as DecodingError {
            throw BadRequest(message: "bad JSON body: \(describe(error))")
        } catch {
            throw BadRequest(message: "bad JSON body: \(error)")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        func path(_ c: DecodingError.Context) -> String {
            let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            return p.isEmpty ? "" : " at \(p)"
        }
        switch error {
        case .keyNotFound(let key, let c): return "missing \(key.stringValue)\(path(c))"
        case .typeMismatch(_, let c), .valueNotFound(_, let c): return "\(c.debugDescription)\(path(c))"
        case .dataCorrupted(let c):
            if let underlying = c.underlyingError, !(underlying is DecodingError) { return "\(underlying)\(path(c))" }
            return "\(c.debugDescription)\(path(c))"
        @unknown default: return "\(error)"
        }
    }

    /// Maps the tracker's answer to HTTP: rollouts → 200 (201 when created), a plan → 200, a
    /// refusal → 404 (no such rollout), 409 (the rollout's state or another rollout's hosts
    /// forbid it) or 400 (the request itself is wrong).
    static func answer(_ response: ControlResponse, single: Bool, created: Bool, control: Bool = false) -> Response {
        switch response {
        case .rollouts(let all):
            if single, let first = all.first { return json(first, status: created ? .created : .ok) }
            return json(all)
        case .rolloutPlan(let plan):
            return json(plan)
        case .refused(let why):
            return error(refusalStatus(why, control: control), why)
        default:
            return error(.internalServerError, "unexpected answer from the tracker")
        }
    }

    static func refusalStatus(_ why: String, control: Bool) -> HTTPResponse.Status {
        if why.hasPrefix("no rollout ") { return .notFound }
        if why.contains("exists with another spec") || why.contains("is in rollout") { return .conflict }
        if control {
            if why.hasPrefix("not in this rollout") || why.hasPrefix("name the hosts") { return .badRequest }
            return .conflict
        }
        return .badRequest
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        guard let data = try? encoder.encode(value) else { return error(.internalServerError, "cannot encode the answer") }
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, headers: HTTPFields = [:]) -> Response {
        var h = headers
        h[.contentType] = "application/json"
        let data = (try? encoder.encode(["error": message])) ?? Data(#"{"error":"error"}"#.utf8)
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func html(_ page: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: page)))
    }
}

/// The HTTP listener: a Hummingbird `Application` over `CoordinatorAPI.router()` in a
/// `ServiceGroup` of its own, run in a task until `stop()` shuts it down gracefully.
public final class APIServer: @unchecked Sendable {
    // Invariant: `task` and `group` are set once in `start` and read in `stop`, from the
    // caller's thread.
    private var task: Task<Void, any Error>?
    private var group: ServiceGroup?
    public let api: CoordinatorAPI
    /// Hummingbird's own log lines (warnings and worse only: the coordinator reports on stderr itself).
    public var logger: Logger = {
        var l = Logger(label: "shoal.http")
        l.logLevel = .warning
        return l
    }()

    public init(api: CoordinatorAPI) { self.api = api }

    /// Starts listening on `host:port` (0: any free port) and returns the bound port once the
    /// server accepts connections.
    public func start(host: String, port: Int) async throws -> Int {
        let (stream, continuation) = AsyncStream<Result<Int, any Error>>.makeStream()
        let app = Application(
            router: api.router(),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { channel in
                continuation.yield(.success(channel.localAddress?.port ?? port))
            },
            logger: logger)
        let group = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
        self.group = group
        task = Task {
            do {
                try await group.run()
            } catch {
                continuation.yield(.failure(error))
                throw error
            }
            continuation.finish()
        }
        for await result in stream { return try result.get() }
        throw CancellationError()
    }

    /// Blocking form of `start` for synchronous callers (the CLI).
    public func startBlocking(host: String, port: Int) throws -> Int {
        let box = ResultBox()
        let done = DispatchSemaphore(value: 0)
        Task {
            do { box.result = .success(try await self.start(host: host, port: port)) } catch { box.result = .failure(error) }
            done.signal()
        }
        done.wait()
        return try box.result!.get()
    }

    private final class ResultBox: @unchecked Sendable { var result: Result<Int, any Error>? }

    /// Stops listening: no new connections, requests in flight are answered, then the server
    /// ends.
    public func stop() async {
        guard let task, let group else { return }
        self.task = nil
        self.group = nil
        await group.triggerGracefulShutdown()
        _ = await task.result
    }

    /// `stop()` for synchronous callers off the concurrency pool (the CLI's main thread); waits
    /// at most 5 s, then cancels.
    public func stopBlocking() {
        let task = self.task
        let done = DispatchSemaphore(value: 0)
        Task {
            await self.stop()
            done.signal()
        }
        if done.wait(timeout: .now() + 5) == .timedOut { task?.cancel() }
    }
}
