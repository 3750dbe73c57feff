import ShoalTestKit
import Foundation
import Testing

@testable import ShoalRollout

/// Operator actions, waiting for data, determinism and persistence.
struct ControlTests {
    func fleet(_ n: Int = 4, _ more: (inout RolloutPolicy) -> Void = { _ in }) throws -> Fleet {
        try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: n)) {
            open(&$0)
            $0.waves = [2]
            $0.minHostsBeforeJudging = 100
            more(&$0)
        })
    }

    func expectError(_ expected: RolloutError, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("no error; expected \(expected)")
        } catch {
            #expect(error as? RolloutError == expected)
        }
    }

    @Test func createStartsEveryHostWaiting() throws {
        let f = try fleet()
        #expect(f.r.status == .running && f.r.waves.isEmpty && f.r.createdAt == f.now)
        #expect(f.r.hosts.map(\.phase) == Array(repeating: .waitingForData, count: 4))
        #expect(f.r.hosts.map(\.attempt) == [1, 1, 1, 1])
        #expect(f.r.events == ["1970-01-12T13:46:40Z created: convert of 4 host(s) in 1 site(s)"])
    }

    @Test func pauseAndResume() throws {
        var f = try fleet()
        f.advance()
        try RolloutEngine.pause(&f.r, now: f.now)
        #expect(f.r.status == .paused)
        expectError(.wrongStatus(action: "pause", status: .paused)) { try RolloutEngine.pause(&f.r, now: f.now) }
        f.succeedAll()
        #expect(f.advance().isEmpty)  // in-flight ones are recorded, no new wave
        #expect(f.host("a1").phase == .succeeded && f.host("a3").phase == .ready)
        try RolloutEngine.resume(&f.r, now: f.now)
        #expect(f.advance().map(\.host) == ["a3", "a4"])
        expectError(.wrongStatus(action: "resume", status: .running)) { try RolloutEngine.resume(&f.r, now: f.now) }
    }

    @Test func abortIsFinal() throws {
        var f = try fleet()
        f.advance()
        try RolloutEngine.abort(&f.r, now: f.now)
        #expect(f.advance().map(\.host) == ["a1", "a2"])  // still outstanding: re-sent and tracked
        f.succeedAll()
        #expect(f.advance().isEmpty)
        #expect(f.host("a1").phase == .succeeded && f.r.status == .aborted)
        for (action, call) in [
            ("resume", { (r: inout Rollout) throws(RolloutError) in try RolloutEngine.resume(&r, now: 0) }),
            ("pause", { (r: inout Rollout) throws(RolloutError) in try RolloutEngine.pause(&r, now: 0) }),
            ("abort", { (r: inout Rollout) throws(RolloutError) in try RolloutEngine.abort(&r, now: 0) }),
            ("retry", { (r: inout Rollout) throws(RolloutError) in try RolloutEngine.retry(&r, hosts: nil, now: 0) }),
            ("revert", { (r: inout Rollout) throws(RolloutError) in try RolloutEngine.revert(&r, hosts: ["a1"], now: 0) }),
        ] as [(String, (inout Rollout) throws(RolloutError) -> Void)] {
            expectError(.wrongStatus(action: action, status: .aborted)) { try call(&f.r) }
        }
        #expect(RolloutError.wrongStatus(action: "resume", status: .aborted).description
            == "cannot resume: the rollout was aborted, which is final; start a new rollout")
    }

    @Test func retry() throws {
        var f = try fleet(4) { $0.waves = ["100%"] }
        f.advance()
        f.succeedAll()
        f.report("a2", .failed, leftIn: "staging")
        f.advance()
        #expect(f.r.status == .completed)
        expectError(.unknownHosts(["zz"])) { try RolloutEngine.retry(&f.r, hosts: ["zz", "a2"], now: f.now) }
        expectError(.hostNotEligible(action: "retry", host: "a1", phase: .succeeded)) {
            try RolloutEngine.retry(&f.r, hosts: ["a1", "a2"], now: f.now)
        }
        try RolloutEngine.retry(&f.r, hosts: nil, now: f.now)
        #expect(f.r.status == .running)
        #expect(f.host("a2").phase == .ready && f.host("a2").attempt == 2 && f.host("a2").wave == nil)
        let o = f.advance()
        #expect(o.map(\.operationID) == ["R-a2-2"])
        #expect(f.r.waves.map(\.hosts) == [["a1", "a2", "a3", "a4"], ["a2"]])
        f.succeedAll()
        f.advance()
        #expect(f.r.status == .completed)
        expectError(.nothingToDo("nothing to retry: no host of rollout R has failed")) {
            try RolloutEngine.retry(&f.r, hosts: nil, now: f.now)
        }
    }

    @Test func retryBringsAHaltedRolloutBack() throws {
        var f = try fleet(4) { $0.canaryPerSite = true }
        f.advance()
        f.report("a1", .failed)
        f.advance()
        #expect(f.r.status == .halted)
        try RolloutEngine.retry(&f.r, hosts: ["a1"], now: f.now)
        #expect(f.r.status == .running && f.r.haltReason == nil)
        #expect(f.advance().map(\.operationID) == ["R-a1-2"])  // a1 is again site a's canary
        #expect(f.host("a1").canary)
    }

    @Test func retryDuringAWaveDoesNotHoldTheWave() throws {
        var f = try fleet(4) { $0.soakSeconds = 0 }
        f.advance()  // a1, a2
        f.report("a1", .failed)
        f.advance()  // a1 failed, a2 still running
        try RolloutEngine.retry(&f.r, hosts: ["a1"], now: f.now)
        f.report("a2", .succeeded)
        #expect(f.advance().map(\.host) == ["a1", "a3"])  // wave 1 ended without a1; wave 2 takes it
    }

    @Test func revert() throws {
        var f = try fleet(4) { $0.waves = ["100%"] }
        expectError(.nothingToDo("nothing to revert: name the hosts to revert")) { try RolloutEngine.revert(&f.r, hosts: [], now: f.now) }
        expectError(.hostNotEligible(action: "revert", host: "a1", phase: .waitingForData)) {
            try RolloutEngine.revert(&f.r, hosts: ["a1"], now: f.now)
        }
        f.advance()
        f.succeedAll()
        f.advance()
        #expect(f.r.status == .completed)
        expectError(.unknownHosts(["nope"])) { try RolloutEngine.revert(&f.r, hosts: ["nope"], now: f.now) }
        try RolloutEngine.revert(&f.r, hosts: ["a3", "a1", "a3"], now: f.now)
        #expect(f.r.status == .running)
        #expect(f.advance().map(\.operationID) == ["R-a1-revert-1", "R-a3-revert-1"])
        f.report("a1", .succeeded, leftIn: "base")
        f.report("a3", .failed, message: "no staging")
        f.advance()
        #expect(f.host("a1").phase == .reverted && f.host("a3").phase == .failed)
        #expect(f.r.status == .completed)
        try RolloutEngine.revert(&f.r, hosts: ["a3"], now: f.now)
        #expect(f.advance().map(\.operationID) == ["R-a3-revert-2"])
        #expect(RolloutError.hostNotEligible(action: "revert", host: "a1", phase: .reverted).description
            == "cannot revert host a1: it is reverted; only succeeded or failed hosts can be reverted")
    }

    @Test func waitingForDataThenEligible() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 3)) { open(&$0); $0.waves = ["100%"] }, dataLocal: false)
        #expect(f.advance().isEmpty)
        #expect(f.r.hosts.allSatisfy { $0.phase == .waitingForData } && f.r.status == .running)
        f.facts["a2"]!.dataLocal = true
        #expect(f.advance().map(\.host) == ["a2"])
        #expect(f.host("a1").phase == .waitingForData)
        f.succeedAll()
        f.facts["a1"]!.dataLocal = true
        f.facts["a3"]!.dataLocal = true
        f.advance()  // wave 1 ends, wave 2 takes a1 and a3
        #expect(f.r.waves.map(\.hosts) == [["a2"], ["a1", "a3"]])
        // A ready host whose data goes away waits again; facts missing mean no data.
        var g = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 2)) { open(&$0); $0.waves = [1] })
        g.advance()
        g.facts["a2"] = nil
        g.succeedAll()
        g.advance()
        #expect(g.host("a2").phase == .waitingForData)
        #expect(g.r.status == .running)
    }

    @Test func determinism() throws {
        func run() throws -> (Rollout, [[RolloutOrder]]) {
            var f = try Fleet(makeSpec(makeHosts(sites: ["a", "b", "c"], perSite: 6, rackSize: 2)) {
                $0.onFailure = .revert
                $0.minHostsBeforeJudging = 3
                $0.failureBudget = "40%"
            })
            var all: [[RolloutOrder]] = []
            var rng = SplitMix64(seed: 7)
            for _ in 0..<60 {
                all.append(f.advance(after: Double(rng.next() % 400)))
                for h in f.r.hosts where h.inFlight && rng.next() % 3 == 0 {
                    f.report(h.host, rng.next() % 5 == 0 ? .failed : .succeeded, leftIn: "staging")
                }
            }
            return (f.r, all)
        }
        let (r1, o1) = try run()
        let (r2, o2) = try run()
        #expect(r1 == r2)
        #expect(o1 == o2)
        #expect(r1.waves.count > 2)
        // One call twice on the same state gives the same result.
        var a = r1, b = r1
        let facts = [String: HostFacts](uniqueKeysWithValues: r1.hosts.map { ($0.host, HostFacts(dataLocal: true)) })
        #expect(RolloutEngine.advance(&a, facts: facts, now: r1.updatedAt + 5_000) == RolloutEngine.advance(&b, facts: facts, now: r1.updatedAt + 5_000))
        #expect(a == b)
    }

    @Test func codableRoundTrip() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a", "b"], perSite: 3, rackSize: 2)) {
            $0.windows = [MaintenanceWindow(days: [.sat], start: "01:00", durationMinutes: 90)]
            $0.windows = []
            $0.onFailure = .revert
        })
        f.advance()
        f.report("a1", .failed, leftIn: "staging", message: "x")
        f.advance()
        let data = try JSONEncoder().encode(f.r)
        let back = try JSONDecoder().decode(Rollout.self, from: data)
        #expect(back == f.r)
        #expect(back.hosts.first?.phase == .reverting)
        let plan = RolloutEngine.plan(f.r.spec, dataLocal: ["a1"])
        #expect(try JSONDecoder().decode(RolloutPlan.self, from: JSONEncoder().encode(plan)) == plan)
    }

    @Test func eventsAreCapped() throws {
        var f = try fleet(300) { $0.waves = [1]; $0.maxUnavailablePerSite = "100%" }
        f.runAllSucceeding()
        #expect(f.r.status == .completed)
        #expect(f.r.events.count == Rollout.maxEvents)
        #expect(f.r.events.last?.contains("completed: 300 succeeded") == true)
    }
}
