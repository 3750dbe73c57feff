import Foundation
import NIOPosix
import ShoalAPI
import ShoalCoordinator
import ShoalTLS
import ShoalTopology
import ShoalRollout
import ShoalWire
import Testing
import Yams

/// openapi/shoal-coordinator.yaml against the code: the same routes as the router registers, a
/// bearer scheme that guards all but the page, and schemas whose properties are exactly the keys
/// the Codable types write (every optional set) and whose required lists are exactly the keys
/// they write with every optional nil.
struct OpenAPITests {
    static let documentPath: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("openapi/shoal-coordinator.yaml").path
    }()

    func document() throws -> [String: Any] {
        let text = try String(contentsOfFile: Self.documentPath, encoding: .utf8)
        guard let doc = try Yams.load(yaml: text) as? [String: Any] else { throw TestFailure("not a YAML mapping") }
        return doc
    }

    @Test func theDocumentHasEveryRouteAndNoOther() throws {
        let doc = try document()
        #expect(doc["openapi"] as? String == "3.1.0")
        let paths = try #require(doc["paths"] as? [String: Any])
        var documented = Set<CoordinatorAPI.Route>()
        for (path, item) in paths {
            for (method, _) in try #require(item as? [String: Any]) where ["get", "post", "put", "patch", "delete"].contains(method) {
                documented.insert(CoordinatorAPI.Route(method: method.uppercased(), path: path))
            }
        }
        // What the Hummingbird router of a real coordinator has registered.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let ca = try FleetCA.create()
        let server = try CoordinatorServer(topology: try Topology.parse(yaml: Fleet.yaml),
                                           tls: try Fleet.context(ca, FleetIdentity(host: "coordinator", site: "origin", role: .coordinator)),
                                           store: nil, group: group)
        let registered = Set(CoordinatorAPI(server: server, token: APIToken.generate()).registeredRoutes())
        #expect(registered.count == 14)
        #expect(registered == Set(CoordinatorAPI.routes))
        #expect(registered.subtracting(documented).isEmpty, "not in the document: \(registered.subtracting(documented))")
        #expect(documented.subtracting(registered).isEmpty, "not in the router: \(documented.subtracting(registered))")

        // Bearer security everywhere but the page.
        let schemes = try #require((doc["components"] as? [String: Any])?["securitySchemes"] as? [String: Any])
        let bearer = try #require(schemes["bearer"] as? [String: Any])
        #expect(bearer["type"] as? String == "http" && bearer["scheme"] as? String == "bearer")
        #expect((doc["security"] as? [[String: Any]])?.first?["bearer"] != nil)
        for (path, item) in paths {
            for (method, op) in try #require(item as? [String: Any]) {
                let operation = try #require(op as? [String: Any])
                let open = (operation["security"] as? [Any])?.isEmpty == true
                #expect(open == (path == "/" || path == "/dashboard"), "\(method) \(path): security \(open ? "off" : "on")")
                let responses = try #require(operation["responses"] as? [String: Any])
                if !open { #expect(responses["401"] != nil, "\(method) \(path) documents no 401") }
            }
        }
    }

    /// The keys `value` encodes to at the top level.
    func keys(_ value: some Encodable) throws -> Set<String> {
        let data = try JSONEncoder().encode(value)
        return Set(try #require(JSONSerialization.jsonObject(with: data) as? [String: Any]).keys)
    }

    @Test func schemasMatchTheJSONTheTypesWrite() throws {
        let schemas = try #require(((try document())["components"] as? [String: Any])?["schemas"] as? [String: Any])
        /// `lenientInput`: the type writes every key but reads any of them missing (its defaults),
        /// so the document requires none.
        func check(_ name: String, full: some Encodable, minimal: some Encodable, lenientInput: Bool = false,
                   sourceLocation: SourceLocation = #_sourceLocation) throws {
            let schema = try #require(schemas[name] as? [String: Any], "no schema \(name)", sourceLocation: sourceLocation)
            let properties = Set((schema["properties"] as? [String: Any] ?? [:]).keys)
            let required = Set(schema["required"] as? [String] ?? [])
            let all = try keys(full), least = try keys(minimal)
            #expect(properties == all, "\(name): document \(properties.sorted()) vs JSON \(all.sorted())", sourceLocation: sourceLocation)
            #expect(required == (lenientInput ? [] : least), "\(name): required \(required.sorted()) vs JSON without optionals \(least.sorted())", sourceLocation: sourceLocation)
        }

        var progress = BundleProgress(bundleID: "b", have: 1, total: 2, bytes: 3, complete: false, staged: false, error: "e",
                                      wanInBytes: 1, wanOutBytes: 2, servedBytes: 3, seconds: 4)
        progress.haveBits = "gA=="
        progress.completedAt = 5
        let minimalProgress = BundleProgress(bundleID: "b", have: 1, total: 2, bytes: 3, complete: false, staged: false)
        try check("BundleProgress", full: progress, minimal: minimalProgress)

        let order = OperationOrder(id: "o", kind: "convert", stagingBundle: "s", targetBundle: "t", maintenanceBundle: "m", captureName: "c",
                                   healthTimeoutSeconds: 1, healthPollSeconds: 2, bootAttempts: 3)
        try check("OperationOrder", full: order, minimal: OperationOrder(id: "o", kind: "convert"))
        let op = OperationProgress(id: "o", kind: "convert", step: "s", status: .failed, log: ["l"], message: "m", hostLeftIn: "base", code: 1)
        try check("OperationProgress", full: op, minimal: OperationProgress(id: "o", kind: "convert", step: "s", status: .running))
        let hostOp = HostOperationStatus(host: "h", order: order, orderedBy: "ops", pending: true, progress: op)
        try check("HostOperationStatus", full: hostOp, minimal: HostOperationStatus(host: "h", order: nil, orderedBy: nil, pending: false, progress: nil))
        let host = HostStatus(host: "h", site: "s", alive: true, lastSeenSecondsAgo: 1, bundles: [progress], operation: hostOp)
        try check("HostStatus", full: host, minimal: HostStatus(host: "h", site: "s", alive: true, lastSeenSecondsAgo: nil, bundles: []))
        let report = StatusReport(bundles: ["b"], hosts: [host], badPeerReports: [])
        try check("StatusReport", full: report, minimal: report)

        var policy = RolloutPolicy()
        policy.windows = [MaintenanceWindow(days: [.sat], start: "22:00", durationMinutes: 60)]
        policy.agentHealthTimeoutSeconds = 1
        policy.agentHealthPollSeconds = 1
        policy.agentBootAttempts = 2
        try check("RolloutPolicy", full: policy, minimal: RolloutPolicy(), lenientInput: true)
        // The window writes `days` always; reading it, `days` may be absent.
        let window = MaintenanceWindow(days: [.sat], start: "22:00", durationMinutes: 60)
        #expect(try keys(window) == ["days", "start", "durationMinutes"])
        let request = RolloutRequest(id: "r", kind: .convert, stagingBundle: "s", targetBundle: "t", maintenanceBundle: "m", selector: "all", policy: policy)
        try check("RolloutRequest", full: request, minimal: RolloutRequest(id: "r", kind: .maintenance, stagingBundle: "s"))
        let rHost = RolloutHost(name: "h", site: "s", rack: "r", labels: ["k": "v"])
        try check("RolloutHost", full: rHost, minimal: RolloutHost(name: "h", site: "s"))
        let spec = RolloutSpec(id: "r", kind: .convert, stagingBundle: "s", targetBundle: "t", maintenanceBundle: "m", selector: "all", hosts: [rHost], policy: policy)
        try check("RolloutSpec", full: spec, minimal: RolloutSpec(id: "r", kind: .convert, stagingBundle: "s", hosts: []))
        let state = RolloutHostState(host: "h", site: "s", rack: "r", phase: .failed, attempt: 2, operationID: "o", wave: 1, orderedAt: 1,
                                     finishedAt: 2, message: "m", canary: true, reverts: 1, lastOutcome: .failed, leftIn: "staging")
        try check("RolloutHostState", full: state, minimal: RolloutHostState(host: "h", site: "s", rack: nil))
        let wave = Wave(index: 1, hosts: ["h"], startedAt: 1, endedAt: 2, converted: 1, failed: 0, reverted: 0)
        try check("Wave", full: wave, minimal: Wave(index: 1, hosts: [], startedAt: 1))
        let rollout = Rollout(spec: spec, status: .halted, hosts: [state], waves: [wave], createdAt: 1, updatedAt: 2, haltReason: "h",
                              soakUntil: 3, events: ["e"], acceptedFailures: 1)
        try check("Rollout", full: rollout, minimal: Rollout(spec: spec, status: .running, hosts: [], waves: [], createdAt: 1, updatedAt: 1))
        try check("PlannedWave", full: PlannedWave(index: 1, hosts: ["h"]), minimal: PlannedWave(index: 1, hosts: []))
        let plan = RolloutPlan(waves: [PlannedWave(index: 1, hosts: ["h"])], waitingForData: [], notes: [])
        try check("RolloutPlan", full: plan, minimal: plan)

        // Enumerations list every case the Swift types have.
        func enumValues(_ schema: String, property: String? = nil) -> Set<String> {
            var s = schemas[schema] as? [String: Any]
            if let property { s = (s?["properties"] as? [String: Any])?[property] as? [String: Any] }
            return Set(s?["enum"] as? [String] ?? [])
        }
        #expect(enumValues("HostPhase") == Set(HostPhase.allCases.map(\.rawValue)))
        #expect(enumValues("RolloutKind") == Set(RolloutKind.allCases.map(\.rawValue)))
        #expect(enumValues("Rollout", property: "status") == Set(RolloutStatus.allCases.map(\.rawValue)))
        #expect(enumValues("RolloutPolicy", property: "waveScope") == Set(WaveScope.allCases.map(\.rawValue)))
        #expect(enumValues("RolloutPolicy", property: "order") == Set(HostOrder.allCases.map(\.rawValue)))
        #expect(enumValues("RolloutPolicy", property: "onFailure") == Set(FailureAction.allCases.map(\.rawValue)))
        let statuses: [OperationProgress.Status] = [.running, .succeeded, .failed, .refused]
        #expect(enumValues("OperationProgress", property: "status") == Set(statuses.map(\.rawValue)))
    }
}
