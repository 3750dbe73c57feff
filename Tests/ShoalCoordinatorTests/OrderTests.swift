import Foundation
import ShoalCoordinator
import ShoalTLS
import ShoalTopology
import ShoalWire
import Testing

/// Operations ordered through the coordinator: kept per host, handed out with the host's jobs
/// until it reports the id, one unfinished order per host, operators only.
struct OrderTests {
    let ops = FleetIdentity(host: "ops", site: "origin", role: .operator_)
    let a1 = FleetIdentity(host: "a1", site: "a", role: .peer)
    let convert = OperationOrder(id: "op-1", kind: "convert", stagingBundle: "aa", targetBundle: "bb")

    func announce(_ t: inout Tracker, _ id: FleetIdentity, _ progress: OperationProgress? = nil, at now: Double = 1) -> ControlResponse {
        t.handle(.announceAndWait(listenPort: 7701, listenAddress: "10.0.0.1", bundles: [], waitSeconds: 1, operation: progress),
                 from: id, remoteAddress: nil, now: now)
    }

    @Test func ordersGoOutWithJobsUntilTheHostReportsTheID() throws {
        var t = try TrackerTests().tracker()
        guard case .jobs(let none) = announce(&t, a1) else { Issue.record("want plain jobs"); return }
        #expect(none.isEmpty)
        guard case .operation(let s) = t.handle(.orderOperation(host: "a1", request: convert), from: ops, remoteAddress: nil, now: 2) else {
            Issue.record("order refused"); return
        }
        #expect(s.pending && s.order == convert && s.orderedBy == "ops" && s.progress == nil)
        // Handed out with every answer until the host reports op-1 …
        for _ in 0..<2 {
            guard case .jobsAndOrders(let jobs, let orders) = announce(&t, a1) else { Issue.record("no order handed out"); return }
            #expect(jobs.isEmpty && orders == [convert])
        }
        // … other hosts never see it.
        guard case .jobs = announce(&t, FleetIdentity(host: "b1", site: "b", role: .peer)) else { Issue.record("b1 got an order"); return }
        // The host reports it: no longer handed out; the progress is recorded and shown.
        let running = OperationProgress(id: "op-1", kind: "convert", step: "writeTarget#1", status: .running, log: ["… 100 writeTarget started: …"])
        guard case .jobs = announce(&t, a1, running) else { Issue.record("order still handed out after the report"); return }
        #expect(t.operationStatus(of: "a1").progress == running && !t.operationStatus(of: "a1").pending)
        let a1Status = t.status(now: 3).hosts.first { $0.host == "a1" }
        #expect(a1Status?.operation?.progress?.step == "writeTarget#1")
        #expect(t.status(now: 3).hosts.first { $0.host == "a2" }?.operation == nil)
        // An announce without a report keeps the last one.
        guard case .jobs = announce(&t, a1) else { Issue.record("want plain jobs"); return }
        #expect(t.operationStatus(of: "a1").progress == running)
        guard case .operation(let viaRequest) = t.handle(.operationStatus(host: "a1"), from: a1, remoteAddress: nil, now: 4) else {
            Issue.record("status refused"); return
        }
        #expect(viaRequest.progress?.status == .running)
    }

    @Test func aSecondOrderIsRefusedWhileOneIsUnfinished() throws {
        var t = try TrackerTests().tracker()
        guard case .operation = t.handle(.orderOperation(host: "a1", request: convert), from: ops, remoteAddress: nil, now: 1) else {
            Issue.record("order refused"); return
        }
        // The same order again is harmless; the same id with other parameters is not.
        guard case .operation = t.handle(.orderOperation(host: "a1", request: convert), from: ops, remoteAddress: nil, now: 1) else {
            Issue.record("a re-sent order was refused"); return
        }
        var other = convert
        other.targetBundle = "cc"
        guard case .refused(let sameID) = t.handle(.orderOperation(host: "a1", request: other), from: ops, remoteAddress: nil, now: 1) else {
            Issue.record("same id, other parameters accepted"); return
        }
        #expect(sameID.contains("other parameters"))
        let revert = OperationOrder(id: "op-2", kind: "revert", stagingBundle: "aa")
        guard case .refused(let why) = t.handle(.orderOperation(host: "a1", request: revert), from: ops, remoteAddress: nil, now: 1) else {
            Issue.record("second order accepted"); return
        }
        #expect(why.contains("unfinished operation op-1") && why.contains("not yet taken"), "\(why)")
        _ = announce(&t, a1, OperationProgress(id: "op-1", kind: "convert", step: "rebootIntoStaging#1", status: .running))
        guard case .refused(let still) = t.handle(.orderOperation(host: "a1", request: revert), from: ops, remoteAddress: nil, now: 2) else {
            Issue.record("second order accepted while running"); return
        }
        #expect(still.contains("at rebootIntoStaging#1"), "\(still)")
        // Finished: the next order goes out; an old id is not reused.
        _ = announce(&t, a1, OperationProgress(id: "op-1", kind: "convert", step: "finished", status: .succeeded))
        guard case .refused = t.handle(.orderOperation(host: "a1", request: OperationOrder(id: "op-1", kind: "revert", stagingBundle: "aa")),
                                       from: ops, remoteAddress: nil, now: 3) else { Issue.record("an id was reused"); return }
        guard case .operation(let s) = t.handle(.orderOperation(host: "a1", request: revert), from: ops, remoteAddress: nil, now: 3) else {
            Issue.record("order after the outcome refused"); return
        }
        #expect(s.pending && s.order == revert)
        guard case .jobsAndOrders(_, let orders) = announce(&t, a1) else { Issue.record("no order"); return }
        #expect(orders == [revert])
        // A host that refused an order (no driver) frees the host for the next one.
        _ = announce(&t, a1, OperationProgress(id: "op-2", kind: "revert", step: "refused", status: .refused, message: "no driver"))
        guard case .operation = t.handle(.orderOperation(host: "a1", request: OperationOrder(id: "op-3", kind: "revert", stagingBundle: "aa")),
                                         from: ops, remoteAddress: nil, now: 4) else { Issue.record("order after a refusal refused"); return }
    }

    @Test func onlyOperatorsOrder() throws {
        var t = try TrackerTests().tracker()
        for role in [FleetIdentity.Role.peer, .seed, .coordinator] {
            guard case .refused(let why) = t.handle(.orderOperation(host: "a1", request: convert),
                                                    from: FleetIdentity(host: "a2", site: "a", role: role), remoteAddress: nil, now: 1) else {
                Issue.record("\(role) may order"); return
            }
            #expect(why.contains("only operators"))
        }
        #expect(t.state.orders == nil)
        guard case .refused(let unknown) = t.handle(.orderOperation(host: "zz9", request: convert), from: ops, remoteAddress: nil, now: 1) else {
            Issue.record("order for an unknown host accepted"); return
        }
        #expect(unknown.contains("not in the topology"))
    }

    @Test func ordersAndProgressSurviveEncodeDecode() throws {
        var t = try TrackerTests().tracker()
        _ = t.handle(.orderOperation(host: "a1", request: convert), from: ops, remoteAddress: nil, now: 1)
        _ = t.handle(.orderOperation(host: "b1", request: OperationOrder(id: "op-b", kind: "revert", stagingBundle: "aa")), from: ops, remoteAddress: nil, now: 1)
        _ = announce(&t, a1, OperationProgress(id: "op-1", kind: "convert", step: "preflight#1", status: .running, log: ["x"]))
        let decoded = try JSONDecoder().decode(Tracker.State.self, from: try JSONEncoder().encode(t.state))
        #expect(decoded == t.state)
        let t2 = Tracker(topology: t.topology, state: decoded)
        #expect(t2.pendingOrders(for: "b1").map(\.id) == ["op-b"] && t2.pendingOrders(for: "a1").isEmpty)
        #expect(t2.operationStatus(of: "a1").progress?.step == "preflight#1")

        // A state file from before orders (no "orders", no "operation") still reads.
        var old = try JSONSerialization.jsonObject(with: JSONEncoder().encode(t.state)) as! [String: Any]
        old.removeValue(forKey: "orders")
        var hosts = old["hosts"] as! [String: [String: Any]]
        for k in hosts.keys { hosts[k]!.removeValue(forKey: "operation") }
        old["hosts"] = hosts
        let legacy = try JSONDecoder().decode(Tracker.State.self, from: JSONSerialization.data(withJSONObject: old))
        #expect(legacy.orders == nil && legacy.hosts["a1"]?.operation == nil)
    }

    @Test func oldAnnouncesAndAnswersStillDecode() throws {
        // An announce of a peer from before operations: no "operation" key.
        let json = #"{"announceAndWait":{"listenPort":7701,"listenAddress":null,"bundles":[],"waitSeconds":1}}"#
        let request = try JSONDecoder().decode(ControlRequest.self, from: Data(json.utf8))
        guard case .announceAndWait(7701, nil, [], 1, nil) = request else { Issue.record("decoded as \(request)"); return }
        let jobs = try JSONEncoder().encode(ControlResponse.jobs([]))
        #expect(String(decoding: jobs, as: UTF8.self) == #"{"jobs":{"_0":[]}}"#)
    }
}
