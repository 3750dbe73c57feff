import Foundation
import ShoalCoordinator
import ShoalRollout
import ShoalTLS
import ShoalTopology
import ShoalWire
import Testing

/// Rollouts in the coordinator: created by operators against published bundles, hosts eligible
/// once their bundles are complete, orders handed out with jobs, outcomes reconciled from the
/// hosts' reports, and the whole state surviving an encode/decode (a restart).
struct RolloutTrackerTests {
    let ops = FleetIdentity(host: "ops", site: "origin", role: .operator_)

    /// Two bundles published to every host; returns the tracker and their ids.
    func setup() throws -> (Tracker, String, String) {
        var t = try TrackerTests().tracker()
        let (b64, staging) = try TrackerTests().manifestB64()
        guard case .published = t.handle(.publish(manifest: b64, seedHost: "", selector: "all"), from: ops, remoteAddress: nil, now: 0) else {
            throw Failure("publish refused")
        }
        let (b64b, target) = try TrackerTests().manifestB64(name: "y")
        guard case .published = t.handle(.publish(manifest: b64b, seedHost: "", selector: "all"), from: ops, remoteAddress: nil, now: 0) else {
            throw Failure("publish refused")
        }
        return (t, staging, target)
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    func policy() -> RolloutPolicy {
        var p = RolloutPolicy()
        p.soakSeconds = 0
        p.maxUnavailablePerSite = .percent(100)
        p.maxUnavailablePerRack = .percent(100)
        p.minHostsBeforeJudging = 1
        p.failureBudget = .count(0)
        return p
    }

    func announce(_ t: inout Tracker, _ host: String, _ site: String, bundles: [String], _ op: OperationProgress? = nil, at now: Double) -> ControlResponse {
        let progress = bundles.map { BundleProgress(bundleID: $0, have: 2, total: 2, bytes: 20, complete: true, staged: false) }
        return t.handle(.announceAndWait(listenPort: 7701, listenAddress: "10.0.0.1", bundles: progress, waitSeconds: 1, operation: op),
                        from: FleetIdentity(host: host, site: site, role: .peer), remoteAddress: nil, now: now)
    }

    func orders(_ r: ControlResponse) -> [OperationOrder] {
        if case .jobsAndOrders(_, let o) = r { return o }
        return []
    }

    @Test func aRolloutConvertsEveryHostInWavesOnceTheirDataIsLocal() throws {
        var (t, staging, target) = try setup()
        let request = RolloutRequest(id: "r1", kind: .convert, stagingBundle: staging, targetBundle: target, selector: "all", policy: policy())
        // Not an operator: refused.
        guard case .refused = t.handle(.rolloutCreate(request), from: FleetIdentity(host: "a1", site: "a", role: .peer), remoteAddress: nil, now: 1) else {
            Issue.record("a peer created a rollout"); return
        }
        // A dry run changes nothing; nobody has the data yet.
        guard case .rolloutPlan(let plan) = t.handle(.rolloutPlan(request), from: ops, remoteAddress: nil, now: 1) else { Issue.record("plan refused"); return }
        #expect(plan.waves.isEmpty && Set(plan.waitingForData) == ["a1", "a2", "b1"])
        guard case .rollouts(let created) = t.handle(.rolloutCreate(request), from: ops, remoteAddress: nil, now: 1) else { Issue.record("create refused"); return }
        #expect(created.first?.status == .running)
        // The same request again is harmless; another spec under the id is refused.
        guard case .rollouts = t.handle(.rolloutCreate(request), from: ops, remoteAddress: nil, now: 1) else { Issue.record("re-create refused"); return }
        var other = request
        other.selector = "site=a"
        guard case .refused = t.handle(.rolloutCreate(other), from: ops, remoteAddress: nil, now: 1) else { Issue.record("other spec accepted"); return }

        // Only a1 and b1 have both bundles: the canaries of a and b; a2 has only the staging bundle.
        #expect(orders(announce(&t, "a2", "a", bundles: [staging], at: 2)).isEmpty)
        _ = announce(&t, "a1", "a", bundles: [staging, target], at: 2)
        _ = announce(&t, "b1", "b", bundles: [staging, target], at: 2)
        _ = t.advanceRollouts(now: 3)
        let a1Orders = orders(announce(&t, "a1", "a", bundles: [staging, target], at: 3))
        #expect(a1Orders.count == 1 && a1Orders.first?.kind == "convert" && a1Orders.first?.stagingBundle == staging && a1Orders.first?.targetBundle == target)
        let b1Orders = orders(announce(&t, "b1", "b", bundles: [staging, target], at: 3))
        #expect(b1Orders.count == 1)
        #expect(orders(announce(&t, "a2", "a", bundles: [staging], at: 3)).isEmpty)

        // Both canaries succeed; a2's data arrives: it goes in the next wave.
        for (host, site, order) in [("a1", "a", a1Orders[0]), ("b1", "b", b1Orders[0])] {
            _ = announce(&t, host, site, bundles: [staging, target], OperationProgress(id: order.id, kind: "convert", step: "finished", status: .succeeded), at: 4)
        }
        _ = announce(&t, "a2", "a", bundles: [staging, target], at: 4)
        _ = t.advanceRollouts(now: 5)
        _ = t.advanceRollouts(now: 6)
        let a2Orders = orders(announce(&t, "a2", "a", bundles: [staging, target], at: 6))
        #expect(a2Orders.count == 1)
        guard let a2Order = a2Orders.first else { return }
        _ = announce(&t, "a2", "a", bundles: [staging, target], OperationProgress(id: a2Order.id, kind: "convert", step: "finished", status: .succeeded), at: 7)
        _ = t.advanceRollouts(now: 8)
        _ = t.advanceRollouts(now: 9)

        // Survives a restart: the state encodes and decodes to the same rollout.
        let decoded = try JSONDecoder().decode(Tracker.State.self, from: try JSONEncoder().encode(t.state))
        #expect(decoded == t.state)
        guard case .rollouts(let list) = t.handle(.rolloutStatus(id: "r1"), from: ops, remoteAddress: nil, now: 9), let r = list.first else {
            Issue.record("status refused"); return
        }
        #expect(r.status == .completed, "\(r.events)")
        #expect(r.hosts.allSatisfy { $0.phase == .succeeded })
        #expect(r.waves.count == 2 && r.waves[0].hosts.sorted() == ["a1", "b1"] && r.waves[1].hosts == ["a2"])
    }

    @Test func aRolloutNeedsItsBundlesPublishedToEveryHost() throws {
        var t = try TrackerTests().tracker()
        let request = RolloutRequest(id: "r2", kind: .convert, stagingBundle: String(repeating: "a", count: 64),
                                     targetBundle: String(repeating: "b", count: 64), selector: "all", policy: policy())
        guard case .refused(let why) = t.handle(.rolloutCreate(request), from: ops, remoteAddress: nil, now: 1) else { Issue.record("accepted"); return }
        #expect(why.contains("not published"))
        var (t2, staging, target) = try setup()
        var bad = request
        bad.stagingBundle = staging
        bad.targetBundle = target
        bad.selector = "site=zz"
        guard case .refused = t2.handle(.rolloutCreate(bad), from: ops, remoteAddress: nil, now: 1) else { Issue.record("empty selector accepted"); return }
        // A host can be in one active rollout only.
        var first = bad
        first.selector = "site=a"
        guard case .rollouts = t2.handle(.rolloutCreate(first), from: ops, remoteAddress: nil, now: 1) else { Issue.record("refused"); return }
        var second = first
        second.id = "r3"
        second.selector = "all"
        guard case .refused(let clash) = t2.handle(.rolloutCreate(second), from: ops, remoteAddress: nil, now: 1) else { Issue.record("overlap accepted"); return }
        #expect(clash.contains("is in rollout r2"))
    }

    @Test func operatorActionsGoThroughTheEngineAndAreRefusedWithReasons() throws {
        var (t, staging, target) = try setup()
        let request = RolloutRequest(id: "r4", kind: .convert, stagingBundle: staging, targetBundle: target, selector: "all", policy: policy())
        guard case .rollouts = t.handle(.rolloutCreate(request), from: ops, remoteAddress: nil, now: 1) else { Issue.record("refused"); return }
        func control(_ action: RolloutAction, _ hosts: [String]? = nil, as who: FleetIdentity? = nil) -> ControlResponse {
            t.handle(.rolloutControl(id: "r4", action: action, hosts: hosts), from: who ?? ops, remoteAddress: nil, now: 2)
        }
        guard case .refused = control(.pause, as: FleetIdentity(host: "a1", site: "a", role: .peer)) else { Issue.record("a peer paused"); return }
        guard case .rollouts(let paused) = control(.pause) else { Issue.record("pause refused"); return }
        #expect(paused.first?.status == .paused)
        // Paused: data arrives, nothing is ordered.
        for (h, site) in [("a1", "a"), ("a2", "a"), ("b1", "b")] { _ = announce(&t, h, site, bundles: [staging, target], at: 3) }
        _ = t.advanceRollouts(now: 4)
        #expect(orders(announce(&t, "a1", "a", bundles: [staging, target], at: 4)).isEmpty)
        guard case .rollouts(let resumed) = control(.resume) else { Issue.record("resume refused"); return }
        #expect(resumed.first?.status == .running)
        _ = t.advanceRollouts(now: 5)
        #expect(orders(announce(&t, "a1", "a", bundles: [staging, target], at: 5)).count == 1)
        // No failed host to retry; revert needs hosts; unknown rollout.
        guard case .refused = control(.retry) else { Issue.record("retry with nothing failed accepted"); return }
        guard case .refused(let why) = control(.revert, []) else { Issue.record("revert without hosts accepted"); return }
        #expect(why.contains("hosts"))
        guard case .refused = t.handle(.rolloutControl(id: "nope", action: .pause, hosts: nil), from: ops, remoteAddress: nil, now: 5) else {
            Issue.record("unknown rollout accepted"); return
        }
        guard case .rollouts(let aborted) = control(.abort) else { Issue.record("abort refused"); return }
        #expect(aborted.first?.status == .aborted)
        guard case .refused = control(.resume) else { Issue.record("resume after abort accepted"); return }
        // Status is readable with any fleet certificate.
        guard case .rollouts(let seen) = t.handle(.rolloutStatus(id: nil), from: FleetIdentity(host: "b1", site: "b", role: .peer), remoteAddress: nil, now: 6) else {
            Issue.record("status refused"); return
        }
        #expect(seen.map(\.spec.id) == ["r4"])
        // The rollout survives as the coordinator's state does.
        let restarted = Tracker(topology: t.topology, state: try JSONDecoder().decode(Tracker.State.self, from: try JSONEncoder().encode(t.state)))
        #expect(restarted.rollouts["r4"] == t.rollouts["r4"] && restarted.undecodableRollouts.isEmpty)
    }
}
