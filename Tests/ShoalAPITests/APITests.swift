import Foundation
import ShoalAPI
import ShoalRollout
import ShoalWire
import Testing

/// The HTTP API over real sockets on 127.0.0.1 against a real coordinator (TLS control server,
/// SQLite store): the token gate, rollouts created and steered over HTTP, /metrics.
@Suite(.serialized) struct APITests {
    /// A path for each route, with `{id}` filled in.
    func concrete(_ route: CoordinatorAPI.Route) -> String { route.path.replacingOccurrences(of: "{id}", with: "r1") }

    @Test func everyRouteButThePageNeedsTheTokenAndShowsNothingWithoutIt() async throws {
        let fleet = try await Fleet()
        defer { fleet.shutdown() }
        try await fleet.publishTwoBundles()
        try await fleet.announceHosts()
        #expect(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1")).status == 201)

        let protected = CoordinatorAPI.routes.filter { $0.path != "/" && $0.path != "/dashboard" }
        #expect(protected.count == 12)
        for route in protected {
            for token in [nil, "", "wrong", String(fleet.token.dropLast()), fleet.token + "0", fleet.token.uppercased()] as [String?] {
                let r = try await fleet.request(route.method, concrete(route), token: token, body: route.method == "POST" ? "{}" : nil)
                #expect(r.status == 401, "\(route) with token \(token ?? "none"): \(r.status)")
                #expect(r.contentType == "application/json")
                let error = try r.json() as? [String: String]
                #expect(error?.keys.sorted() == ["error"] && error?["error"]?.hasPrefix("unauthorized") == true, "\(route): \(r.text)")
                for secret in ["a1", "b1", fleet.staging, "shoal_"] { #expect(!r.text.contains(secret), "\(route) leaked \(secret)") }
            }
        }
        // Unknown paths are behind the gate as well (their existence is not revealed)…
        #expect(try await fleet.request("GET", "/api/v1/nothing", token: nil).status == 401)
        #expect(try await fleet.request("GET", "//api/v1/status", token: nil).status == 401)
        #expect(try await fleet.request("GET", "/metrics/", token: nil).status == 401)
        #expect(try await fleet.request("POST", "/dashboard", token: nil).status == 401)
        // …and with the token the reads answer 200 with JSON (or Prometheus text).
        for route in protected where route.method == "GET" {
            let r = try await fleet.get(concrete(route))
            #expect(r.status == 200, "\(route): \(r.status) \(r.text)")
        }
        // The page itself is public and holds no data.
        for path in ["/", "/dashboard"] {
            let r = try await fleet.request("GET", path, token: nil)
            #expect(r.status == 200 && r.contentType?.hasPrefix("text/html") == true)
            #expect(!r.text.contains("a1") && !r.text.contains(fleet.staging))
        }
    }

    @Test func statusAndHostsAreTheTrackersReport() async throws {
        let fleet = try await Fleet()
        defer { fleet.shutdown() }
        try await fleet.publishTwoBundles()
        try await fleet.announceHosts()
        let status = try JSONDecoder().decode(StatusReport.self, from: try await fleet.get("/api/v1/status").body)
        #expect(Set(status.bundles) == [fleet.staging, fleet.target])
        #expect(status.hosts.map(\.host).sorted() == ["a1", "a2", "b1", "seed"])
        #expect(status.hosts.first { $0.host == "a2" }?.bundles.first?.have == 1)
        let siteA = try JSONDecoder().decode([HostStatus].self, from: try await fleet.get("/api/v1/hosts?site=a").body)
        #expect(siteA.map(\.host).sorted() == ["a1", "a2"] && siteA.allSatisfy(\.alive))
        let all = try JSONDecoder().decode([HostStatus].self, from: try await fleet.get("/api/v1/hosts").body)
        #expect(all.count == 4)
        let none = try await fleet.get("/api/v1/hosts?site=nowhere")
        #expect(try none.status == 404 && (none.json() as? [String: String])?["error"] != nil)
    }

    @Test func aRolloutIsCreatedReadBackPausedAndResumedOverHTTP() async throws {
        let fleet = try await Fleet()
        defer { fleet.shutdown() }
        try await fleet.publishTwoBundles()
        try await fleet.announceHosts()

        // The plan first (a dry run): a1 and b1 have their data, a2 does not.
        let planReply = try await fleet.post("/api/v1/rollouts/plan", fleet.rolloutJSON(id: "r1"))
        #expect(planReply.status == 200, "\(planReply.text)")
        let plan = try JSONDecoder().decode(RolloutPlan.self, from: planReply.body)
        #expect(plan.waitingForData == ["a2"] && Set(plan.waves.flatMap(\.hosts)) == ["a1", "b1"])
        #expect(try await fleet.get("/api/v1/rollouts").text == "[]")

        let created = try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1"))
        #expect(created.status == 201, "\(created.text)")
        let rollout = try JSONDecoder().decode(Rollout.self, from: created.body)
        #expect(rollout.spec.id == "r1" && rollout.status == .running)
        #expect(rollout.waves.first?.hosts.sorted() == ["a1", "b1"])
        // The same request again is harmless (200 with the rollout); another spec under the id is a conflict.
        #expect(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1")).status == 201)
        let clash = try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1", policy: #"{"soakSeconds": 5}"#))
        #expect(clash.status == 409, "\(clash.text)")

        // Read back, one and all; the orders went out through the tracker like any operator's.
        let one = try JSONDecoder().decode(Rollout.self, from: try await fleet.get("/api/v1/rollouts/r1").body)
        #expect(one.spec == rollout.spec)
        #expect(try JSONDecoder().decode([Rollout].self, from: try await fleet.get("/api/v1/rollouts").body).map(\.spec.id) == ["r1"])
        #expect(fleet.server.snapshot.orders?["a1"]?.orderedBy == "rollout")

        // Pause, pause again (409: it is paused), resume.
        let paused = try await fleet.post("/api/v1/rollouts/r1/pause")
        #expect(try paused.status == 200 && (JSONDecoder().decode(Rollout.self, from: paused.body)).status == .paused, "\(paused.text)")
        let again = try await fleet.post("/api/v1/rollouts/r1/pause")
        #expect(try again.status == 409 && (again.json() as? [String: String])?["error"]?.contains("pause") == true, "\(again.text)")
        let resumed = try await fleet.post("/api/v1/rollouts/r1/resume")
        #expect(try resumed.status == 200 && (JSONDecoder().decode(Rollout.self, from: resumed.body)).status == .running)
        // Saved before the answer: the SQLite store has the resumed rollout.
        let stored = fleet.server.snapshot.documents["rollout"]?["r1"].flatMap { try? JSONDecoder().decode(Rollout.self, from: $0) }
        #expect(stored?.status == .running && stored?.events.contains { $0.contains("resume") } == true)

        // Retry with nothing failed: a conflict; revert of a host not in the rollout: a bad request.
        #expect(try await fleet.post("/api/v1/rollouts/r1/retry", #"{"hosts": ["a1"]}"#).status == 409)
        #expect(try await fleet.post("/api/v1/rollouts/r1/revert", #"{"hosts": ["zz"]}"#).status == 400)
        #expect(try await fleet.post("/api/v1/rollouts/r1/revert").status == 400)
        #expect(try await fleet.post("/api/v1/rollouts/r1/retry", #"{"hosts": "a1"}"#).status == 400)
        // Abort; then resume is a conflict.
        #expect(try await fleet.post("/api/v1/rollouts/r1/abort").status == 200)
        #expect(try await fleet.post("/api/v1/rollouts/r1/resume").status == 409)
    }

    @Test func badRequestsAreAnswered400404And409WithAnErrorBody() async throws {
        let fleet = try await Fleet()
        defer { fleet.shutdown() }
        try await fleet.publishTwoBundles()
        try await fleet.announceHosts()
        func expectError(_ reply: Fleet.Reply, _ status: Int, _ words: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(reply.status == status, "\(reply.status) \(reply.text)", sourceLocation: sourceLocation)
            #expect(reply.contentType == "application/json", sourceLocation: sourceLocation)
            let body = try reply.json() as? [String: String]
            #expect(body?.keys.sorted() == ["error"] && body?["error"]?.contains(words) == true, "\(reply.text)", sourceLocation: sourceLocation)
        }
        // Policy: an unknown key, a bad amount, a value out of range.
        try expectError(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1", policy: #"{"wavez": [1]}"#)), 400, "unknown key \"wavez\"")
        try expectError(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1", policy: #"{"waves": ["ten"]}"#)), 400, "percentage")
        try expectError(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1", policy: #"{"maxConcurrent": 0}"#)), 400, "maxConcurrent")
        // Not JSON, no body, a missing field, an unpublished bundle, a bad id.
        try expectError(try await fleet.post("/api/v1/rollouts", "{nope"), 400, "bad JSON body")
        try expectError(try await fleet.post("/api/v1/rollouts"), 400, "needs a JSON body")
        try expectError(try await fleet.post("/api/v1/rollouts", #"{"id": "r1"}"#), 400, "missing kind")
        try expectError(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1").replacingOccurrences(of: fleet.target, with: "ff")), 400, "not published")
        try expectError(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "no spaces")), 400, "id")
        try expectError(try await fleet.post("/api/v1/rollouts/plan", fleet.rolloutJSON(id: "r1", policy: "[]")), 400, "bad JSON body")
        // Unknown rollout: 404 for reads and every action.
        try expectError(try await fleet.get("/api/v1/rollouts/nope"), 404, "no rollout nope")
        for action in RolloutAction.allCases {
            try expectError(try await fleet.post("/api/v1/rollouts/nope/\(action.rawValue)", #"{"hosts": ["a1"]}"#), 404, "no rollout nope")
        }
        // Nothing was created by any of that.
        #expect(try await fleet.get("/api/v1/rollouts").text == "[]")
        // A second rollout over hosts of an active one: 409.
        #expect(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1")).status == 201)
        try expectError(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r2")), 409, "is in rollout r1")
    }

    @Test func metricsCarryTheFleetWithLabels() async throws {
        let fleet = try await Fleet()
        defer { fleet.shutdown() }
        try await fleet.publishTwoBundles()
        try await fleet.announceHosts()
        #expect(try await fleet.post("/api/v1/rollouts", fleet.rolloutJSON(id: "r1")).status == 201)
        guard case .ok = try await fleet.ops.send(.reportBadPeer(bundleID: fleet.staging, peer: "a2", reason: "digest mismatch")).get() else {
            Issue.record("report refused"); return
        }
        let reply = try await fleet.get("/metrics")
        #expect(reply.status == 200 && reply.contentType?.hasPrefix("text/plain") == true)
        let lines = Set(reply.text.split(separator: "\n").map(String.init))
        func has(_ line: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(lines.contains(line), "missing \(line) in\n\(reply.text)", sourceLocation: sourceLocation)
        }
        // a1: 2 bundles × 1000 in, 200 out; a2: 100 in; b1 as a1.
        has(#"shoal_site_bytes_total{site="a",direction="in"} 2100"#)
        has(#"shoal_site_bytes_total{site="a",direction="out"} 400"#)
        has(#"shoal_site_bytes_total{site="b",direction="in"} 2000"#)
        has(#"shoal_site_served_bytes_total{site="a"} 605"#)
        has("shoal_chunks_verified_total 9")
        has("shoal_chunks_rejected_total 1")
        has(#"shoal_hosts{state="alive"} 3.0"#)
        has(#"shoal_hosts{state="dead"} 1.0"#)
        has(#"shoal_hosts{state="running"} 2.0"#)
        has(#"shoal_hosts{state="waitingForData"} 1.0"#)
        has(#"shoal_rollout_wave{rollout="r1"} 1.0"#)
        has(#"shoal_rollout_hosts{rollout="r1",phase="running"} 2.0"#)
        has(#"shoal_rollout_hosts{rollout="r1",phase="waitingForData"} 1.0"#)
        has(#"shoal_rollout_status{rollout="r1",status="running"} 1.0"#)
        #expect(reply.text.contains("# TYPE shoal_site_bytes_total counter") && reply.text.contains("# TYPE shoal_hosts gauge"))
        // Counters only grow: a second scrape with nothing new reports the same sums.
        let second = try await fleet.get("/metrics").text
        #expect(second.contains(#"shoal_site_bytes_total{site="a",direction="in"} 2100"#))

        // Step durations from a1's step log: the start in one announce, the end in the next (the
        // start has scrolled out by then); each step counted once however often it is scraped.
        func progress(_ lines: [String]) -> OperationProgress {
            OperationProgress(id: "r1-a1-1", kind: "convert", step: "x", status: .running, log: lines)
        }
        try await fleet.announceHosts(a1Operation: progress([
            "2026-11-22T06:00:00Z 0 check-target done: ok", "2026-11-22T06:00:01Z 0 write-staging started: writing"]))
        _ = try await fleet.get("/metrics")
        try await fleet.announceHosts(a1Operation: progress([
            "2026-11-22T06:00:08Z 0 write-staging done: written", "2026-11-22T06:00:08Z 0 reboot #2 started: rebooting",
            "2026-11-22T06:00:09Z 51 reboot #2 failed: no boot"]))
        _ = try await fleet.get("/metrics")
        let steps = try await fleet.get("/metrics").text
        #expect(steps.contains(#"shoal_operation_step_seconds_count{kind="convert",step="write-staging",status="done"} 1"#), "\(steps)")
        #expect(steps.contains(#"shoal_operation_step_seconds_sum{kind="convert",step="write-staging",status="done"} 7."#))
        #expect(steps.contains(#"shoal_operation_step_seconds_bucket{kind="convert",step="write-staging",status="done",le="15.0"} 1"#))
        #expect(steps.contains(#"shoal_operation_step_seconds_count{kind="convert",step="reboot",status="failed"} 1"#))
        #expect(!steps.contains(#"step="check-target""#))
    }

    @Test func tokenFilesAreMadePrivateAndCheckedOnLoad() throws {
        let dir = NSTemporaryDirectory() + "shoal-token-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/token"
        let token = try APIToken.create(at: path)
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))
        let mode = (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue
        #expect(mode == 0o600)
        #expect(try APIToken.load(path: path) == token)
        #expect(throws: APIToken.TokenError.self) { try APIToken.create(at: path) }
        chmod(path, 0o644)
        #expect(throws: APIToken.TokenError.self) { try APIToken.load(path: path) }
        let short = dir + "/short"
        FileManager.default.createFile(atPath: short, contents: Data("abc\n".utf8), attributes: [.posixPermissions: 0o600])
        #expect(throws: APIToken.TokenError.self) { try APIToken.load(path: short) }
        #expect(APIToken.generate() != APIToken.generate())
    }
}
