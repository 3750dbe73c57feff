import ShoalTestKit
import Foundation
import Testing

@testable import ShoalRollout

/// plan() against advance(): the dry run must show the waves a real rollout runs.
struct PlanTests {
    static func randomSpec(_ rng: inout SplitMix64) -> (RolloutSpec, Set<String>) {
        func pick(_ n: Int) -> Int { Int(rng.next() % UInt64(n)) }
        func amount(maxCount: Int) -> Amount {
            pick(2) == 0 ? .count(1 + pick(maxCount)) : .percent([5, 10, 12.5, 25, 33, 50, 75, 100][pick(8)])
        }
        let siteCount = 1 + pick(5)
        var hosts: [RolloutHost] = []
        for s in 0..<siteCount {
            let n = 1 + pick(12)
            let rackSize = pick(3) == 0 ? nil : 1 + pick(4)
            for i in 0..<n {
                hosts.append(RolloutHost(name: "s\(s)h\(i)", site: "site\(s)", rack: rackSize.map { "r\(i / $0)" }))
            }
        }
        // Shuffle so sites interleave in the spec in odd ways.
        for i in stride(from: hosts.count - 1, to: 0, by: -1) { hosts.swapAt(i, pick(i + 1)) }
        var p = RolloutPolicy()
        p.waves = (0...pick(4)).map { _ in amount(maxCount: 6) }
        p.waveScope = pick(2) == 0 ? .perSite : .fleet
        p.canaryPerSite = pick(2) == 0
        p.maxUnavailablePerSite = amount(maxCount: 5)
        p.maxUnavailablePerRack = amount(maxCount: 3)
        p.maxConcurrent = 1 + pick(20)
        p.order = pick(2) == 0 ? .interleaveSites : .bySite
        p.soakSeconds = Double(pick(2) * 300)
        let local = Set(hosts.map(\.name).filter { _ in pick(5) != 0 })
        let spec = RolloutSpec(id: "P", kind: .convert, stagingBundle: "s", targetBundle: "t", selector: "", hosts: hosts, policy: p)
        return (spec, local)
    }

    @Test func planEqualsAdvanceWhenEveryHostSucceeds() throws {
        var rng = SplitMix64(seed: 0x5EED)
        for trial in 0..<400 {
            let (spec, local) = Self.randomSpec(&rng)
            var f = try Fleet(spec)
            for h in spec.hosts { f.facts[h.name]!.dataLocal = local.contains(h.name) }
            f.runAllSucceeding()
            let plan = RolloutEngine.plan(spec, dataLocal: local)
            #expect(plan.waves == f.r.waves.map { PlannedWave(index: $0.index, hosts: $0.hosts) }, "trial \(trial): \(spec.policy)")
            #expect(plan.waitingForData == spec.hosts.map(\.name).filter { !local.contains($0) }, "trial \(trial)")
            // Every host with data is in exactly one wave, and each wave is within maxConcurrent.
            let planned = plan.waves.flatMap(\.hosts)
            #expect(Set(planned) == local && planned.count == local.count, "trial \(trial)")
            #expect(plan.waves.allSatisfy { $0.hosts.count <= spec.policy.maxConcurrent }, "trial \(trial)")
            #expect(f.r.status == (local.count == spec.hosts.count ? .completed : .running), "trial \(trial)")
        }
    }

    @Test func planNotes() {
        let spec = makeSpec(makeHosts(sites: ["a"], perSite: 3)) { $0.windows = [MaintenanceWindow(start: "01:00", durationMinutes: 60)] }
        let plan = RolloutEngine.plan(spec, dataLocal: ["a1", "a2"])
        #expect(plan.waitingForData == ["a3"])
        #expect(plan.waves.map(\.hosts) == [["a1"], ["a2"]])
        #expect(plan.notes.contains("1 host(s) wait for their data and are not in these waves"))
        #expect(plan.notes.contains("each wave is followed by a soak of 300 s"))
        #expect(plan.notes.contains("waves start only inside the 1 maintenance window(s)"))
        var bad = spec
        bad.policy.waves = []
        #expect(RolloutEngine.plan(bad, dataLocal: []).notes.first?.hasPrefix("invalid rollout policy: waves") == true)
    }

    /// `SHOAL_ROLLOUT_BENCH=1 swift test -c release --filter ShoalRolloutTests.PlanTests/bench`
    @Test(.enabled(if: ProcessInfo.processInfo.environment["SHOAL_ROLLOUT_BENCH"] == "1"))
    func bench() throws {
        let hosts = (0..<100).flatMap { s in
            (0..<1000).map { i in RolloutHost(name: "s\(s)-h\(i)", site: "site\(s)", rack: "r\(i / 40)") }
        }
        let all = Set(hosts.map(\.name))
        let clock = ContinuousClock()
        for (label, configure) in [
            ("default policy", { (_: inout RolloutPolicy) in }),
            ("maxConcurrent 100000", { (p: inout RolloutPolicy) in p.maxConcurrent = 100_000 }),
        ] as [(String, (inout RolloutPolicy) -> Void)] {
            let spec = makeSpec(hosts, configure)
            var plan: RolloutPlan?
            let t = clock.measure { plan = RolloutEngine.plan(spec, dataLocal: all) }
            let waves = plan!.waves
            #expect(waves.flatMap(\.hosts).count == 100_000)
            print("plan of 100,000 hosts (100 sites x 1000, racks of 40), \(label): \(waves.count) waves in \(t)")
        }
        var r = try RolloutEngine.create(makeSpec(hosts), now: 0)
        let facts = Dictionary(uniqueKeysWithValues: hosts.map { ($0.name, HostFacts(dataLocal: true)) })
        _ = RolloutEngine.advance(&r, facts: facts, now: 0)
        var orders: [RolloutOrder] = []
        let t = clock.measure { orders = RolloutEngine.advance(&r, facts: facts, now: 1) }
        print("one advance over 100,000 hosts (50 in flight): \(t), \(orders.count) orders")
    }
}
