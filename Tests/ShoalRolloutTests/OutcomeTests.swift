import Testing

@testable import ShoalRollout

/// Outcomes, the failure budget, the health deadline and the revert path.
struct OutcomeTests {
    /// One site of `n` hosts, all in one wave, judged after `minHosts`.
    func oneWave(_ n: Int, budget: Amount = "5%", minHosts: Int = 10, _ more: (inout RolloutPolicy) -> Void = { _ in }) throws -> Fleet {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: n)) {
            open(&$0)
            $0.waves = ["100%"]
            $0.failureBudget = budget
            $0.minHostsBeforeJudging = minHosts
            more(&$0)
        })
        #expect(f.advance().count == n)
        return f
    }

    @Test func budgetReachedExactlyDoesNotHalt() throws {
        var f = try oneWave(20)
        f.succeedAll()
        f.report("a7", .failed, leftIn: "staging")
        f.advance()
        #expect(f.r.status == .completed)  // 1 of 20 = 5%: reached, not exceeded
        #expect(f.r.events.last?.contains("completed with failures: 19 succeeded, 1 failed, 0 reverted") == true)
        #expect(f.r.waves[0].converted == 19 && f.r.waves[0].failed == 1)
    }

    @Test func budgetExceededHalts() throws {
        var f = try oneWave(20)
        f.succeedAll()
        f.report("a7", .failed, leftIn: "staging")
        f.report("a9", .failed, leftIn: "staging")
        f.advance()
        #expect(f.r.status == .halted)
        #expect(f.r.haltReason == "failures exceed the budget: 2 of 20 finished host(s) failed (budget 5%)")
    }

    @Test func countBudget() throws {
        var f = try oneWave(12, budget: 2)
        f.succeedAll()
        for h in ["a1", "a2"] { f.report(h, .failed) }
        f.advance()
        #expect(f.r.status == .completed)
        var g = try oneWave(12, budget: 2)
        g.succeedAll()
        for h in ["a1", "a2", "a3"] { g.report(h, .failed) }
        g.advance()
        #expect(g.r.status == .halted)
    }

    @Test func notJudgedBeforeMinHosts() throws {
        var f = try oneWave(20)
        for h in ["a1", "a2", "a3"] { f.report(h, .failed) }
        f.advance()
        #expect(f.r.status == .running)  // 3 finished < 10
        for n in 4...9 { f.report("a\(n)", .succeeded) }
        f.advance()
        #expect(f.r.status == .running)  // 9 finished
        f.report("a10", .succeeded)
        f.advance()
        #expect(f.r.status == .halted)  // 10 finished, 3 failed: judged now even though no new failure
        #expect(f.r.haltReason?.contains("3 of 10") == true)
    }

    @Test func resumeAcceptsTheFailuresSoFar() throws {
        var f = try oneWave(30, minHosts: 0)
        f.report("a1", .failed)
        f.advance()
        #expect(f.r.status == .halted)
        try RolloutEngine.resume(&f.r, now: f.now)
        #expect(f.r.acceptedFailures == 1)
        for n in 2...10 { f.report("a\(n)", .succeeded) }
        f.advance()
        #expect(f.r.status == .running)  // no new failure: still 1 of 10
        f.report("a11", .failed)
        f.advance()
        #expect(f.r.status == .halted)  // one more failure beyond the budget
    }

    @Test func healthDeadline() throws {
        var f = try oneWave(2, minHosts: 100) { $0.onFailure = .revert }
        f.report("a1", .running)
        #expect(f.advance(after: 3_599).map(\.host) == ["a2"])  // a2 never reported: order re-sent
        #expect(f.host("a1").phase == .running)
        let orders = f.advance(after: 1)
        #expect(orders.isEmpty)  // timed out: failed, and no revert while the agent may still hold the host
        #expect(f.host("a1").phase == .failed && f.host("a2").phase == .failed)
        #expect(f.host("a1").message == "no outcome within 3600 s of the order")
        #expect(f.r.status == .completed)
    }

    @Test func revertOnFailure() throws {
        var f = try oneWave(3, minHosts: 100) { $0.onFailure = .revert; $0.agentBootAttempts = 2 }
        f.report("a1", .succeeded, leftIn: "target")
        f.report("a2", .failed, leftIn: "staging", message: "target not healthy")
        f.report("a3", .refused, message: "bundle corrupt")
        let orders = f.advance()
        #expect(orders == [
            RolloutOrder(host: "a2", operationID: "R-a2-revert-1", kind: "revert", stagingBundle: "staging-1", bootAttempts: 2),
            RolloutOrder(host: "a3", operationID: "R-a3-revert-1", kind: "revert", stagingBundle: "staging-1", bootAttempts: 2),
        ])
        #expect(f.host("a2").phase == .reverting && f.host("a2").message == "convert failed: target not healthy; reverting")
        #expect(f.r.currentWave != nil)  // reverting hosts keep the wave open
        #expect(f.advance() == orders)  // re-sent until reported
        f.report("a2", .succeeded, leftIn: "base")
        f.report("a3", .failed, message: "disk gone")
        #expect(f.advance().isEmpty)
        #expect(f.host("a2").phase == .reverted)
        #expect(f.host("a3").phase == .failed && f.host("a3").message == "revert failed: failed: disk gone")
        #expect(f.r.waves[0].converted == 1 && f.r.waves[0].failed == 1 && f.r.waves[0].reverted == 1)
        #expect(f.r.status == .completed)
    }

    @Test func revertOnFailureAlsoAfterAbort() throws {
        var f = try oneWave(2, minHosts: 100) { $0.onFailure = .revert }
        try RolloutEngine.abort(&f.r, now: f.now)
        f.report("a1", .failed, leftIn: "staging")
        f.report("a2", .succeeded, leftIn: "target")
        #expect(f.advance().map(\.operationID) == ["R-a1-revert-1"])
        #expect(f.r.status == .aborted)
    }

    @Test func aTimedOutCanaryHalts() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 3)) { $0.healthDeadlineSeconds = 60 })
        #expect(f.advance().map(\.host) == ["a1"])
        f.advance(after: 60)
        #expect(f.r.status == .halted)
        #expect(f.r.haltReason == "canary a1 of site a failed: no outcome within 60 s of the order")
    }

    @Test func maintenanceFailuresAreNotReverted() throws {
        var spec = makeSpec(makeHosts(sites: ["a"], perSite: 1)) { open(&$0); $0.onFailure = .revert }
        spec.kind = .maintenance
        spec.targetBundle = nil
        spec.maintenanceBundle = "memtest"
        var f = try Fleet(spec)
        let o = f.advance()
        #expect(o == [RolloutOrder(host: "a1", operationID: "R-a1-1", kind: "maintenance", stagingBundle: "staging-1", maintenanceBundle: "memtest")])
        f.report("a1", .failed, leftIn: "base")
        #expect(f.advance().isEmpty)
        #expect(f.host("a1").phase == .failed)
    }

    @Test func ordersCarryTheAgentSettings() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 1)) {
            $0.agentHealthTimeoutSeconds = 600
            $0.agentHealthPollSeconds = 5
            $0.agentBootAttempts = 3
        })
        #expect(f.advance() == [
            RolloutOrder(
                host: "a1", operationID: "R-a1-1", kind: "convert", stagingBundle: "staging-1", targetBundle: "debian-12",
                healthTimeoutSeconds: 600, healthPollSeconds: 5, bootAttempts: 3
            )
        ])
    }

    @Test func staleReportsOfOtherOperationsAreIgnored() throws {
        var f = try oneWave(1, minHosts: 100)
        f.facts["a1"]!.operation = ReportedOperation(id: "R-a1-0", status: .failed)
        #expect(f.advance().map(\.operationID) == ["R-a1-1"])
        #expect(f.host("a1").phase == .running)
        f.facts["a1"]!.operation = ReportedOperation(id: "R-a1-1", status: .running)
        #expect(f.advance().isEmpty)  // reported: no need to send again
    }
}
