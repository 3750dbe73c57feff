import Testing

@testable import ShoalRollout

/// Which hosts each wave takes: ramp, scope, order, canaries, caps, maxConcurrent.
struct WaveTests {
    @Test func defaultPolicyThreeSitesOfFour() throws {
        // Site cap 10% of 4 rounds down to 0, raised to 1: one host per site at a time.
        var f = try Fleet(makeSpec(makeHosts(sites: ["a", "b", "c"], perSite: 4)))
        f.runAllSucceeding()
        #expect(f.waves == [["a1", "b1", "c1"], ["a2", "b2", "c2"], ["a3", "b3", "c3"], ["a4", "b4", "c4"]])
        #expect(f.r.status == .completed)
        #expect(f.r.events.last?.hasSuffix("completed: 12 succeeded, 0 reverted") == true)
        #expect(f.r.hosts.filter(\.canary).map(\.host) == ["a1", "b1", "c1"])
        let plan = RolloutEngine.plan(f.r.spec, dataLocal: Set(f.r.spec.hosts.map(\.name)))
        #expect(plan.waves.map(\.hosts) == f.waves)
        #expect(plan.waves.map(\.index) == [1, 2, 3, 4])
    }

    @Test func rampPerSite() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a", "b", "c"], perSite: 10)) { open(&$0); $0.canaryPerSite = true })
        f.runAllSucceeding()
        // 1 per site (canaries), 5 per site, 10% of 10 = 1 per site, 50% = 5 per site but only 3 left.
        func names(_ ns: ClosedRange<Int>) -> [String] { ns.flatMap { n in ["a\(n)", "b\(n)", "c\(n)"] } }
        #expect(f.waves == [names(1...1), names(2...6), names(7...7), names(8...10)])
    }

    @Test func rampFleet() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a", "b", "c"], perSite: 10)) {
            open(&$0)
            $0.canaryPerSite = true
            $0.waveScope = .fleet
        })
        f.runAllSucceeding()
        #expect(f.waves == [
            ["a1"],
            ["b1", "c1", "a2", "a3", "a4"],  // b and c give one canary each; a is past its canary
            ["b2", "c2", "b3"],  // 10% of 30, in interleaved order (a2…a4 are gone)
            ["c3", "b4", "c4", "a5", "b5", "c5", "a6", "b6", "c6", "a7", "b7", "c7", "a8", "b8", "c8"],  // 50% of 30
            ["a9", "b9", "c9", "a10", "b10", "c10"],
        ])
    }

    @Test func bySiteOrder() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a", "b"], perSite: 3)) {
            open(&$0)
            $0.waveScope = .fleet
            $0.waves = [2]
            $0.order = .bySite
        })
        f.runAllSucceeding()
        #expect(f.waves == [["a1", "a2"], ["a3", "b1"], ["b2", "b3"]])
    }

    @Test func interleaveUsesFirstAppearanceOfSites() throws {
        let hosts = [
            RolloutHost(name: "x1", site: "b"), RolloutHost(name: "y1", site: "a"), RolloutHost(name: "x2", site: "b"),
            RolloutHost(name: "x3", site: "b"), RolloutHost(name: "y2", site: "a"),
        ]
        let plan = RolloutEngine.plan(makeSpec(hosts) { open(&$0); $0.waveScope = .fleet; $0.waves = ["100%"] }, dataLocal: Set(hosts.map(\.name)))
        #expect(plan.waves.map(\.hosts) == [["x1", "y1", "x2", "y2", "x3"]])
    }

    @Test func percentRoundsUpAndIsAtLeastOne() throws {
        // 10% of 4 hosts per site rounds up to 1; 30% of 4 rounds up to 2.
        let spec = makeSpec(makeHosts(sites: ["a"], perSite: 4)) { open(&$0); $0.waves = ["10%", "30%"] }
        #expect(RolloutEngine.plan(spec, dataLocal: Set(spec.hosts.map(\.name))).waves.map(\.hosts.count) == [1, 2, 1])
    }

    @Test func canaryHaltsTheRolloutWhenItFails() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a", "b"], perSite: 5)) { open(&$0); $0.canaryPerSite = true })
        #expect(f.advance().map(\.host) == ["a1", "b1"])
        f.report("a1", .failed, leftIn: "staging", message: "target not healthy")
        #expect(f.advance().map(\.host) == ["b1"])  // b1's order is still outstanding
        #expect(f.r.status == .halted)
        #expect(f.r.haltReason == "canary a1 of site a failed: convert failed: target not healthy")
        // In-flight b1 is still tracked; no new wave while halted.
        f.report("b1", .succeeded, leftIn: "target")
        #expect(f.advance(after: 1_000).isEmpty)
        #expect(f.host("b1").phase == .succeeded)
        #expect(f.r.waves.count == 1 && f.r.waves[0].endedAt != nil && f.r.waves[0].failed == 1 && f.r.waves[0].converted == 1)
        // Resuming: site a still has no success, so it gives one new canary (a2); b is past its canary.
        try RolloutEngine.resume(&f.r, now: f.now)
        #expect(f.r.haltReason == nil)
        let next = f.advance(after: 1_000).map(\.host)
        #expect(next == ["a2", "b2", "b3", "b4", "b5"])
        #expect(f.host("a2").canary && !f.host("b2").canary)
    }

    @Test func siteCap() throws {
        let spec = makeSpec(makeHosts(sites: ["a"], perSite: 10)) { open(&$0); $0.waves = ["100%"]; $0.maxUnavailablePerSite = 3 }
        var f = try Fleet(spec)
        f.runAllSucceeding()
        #expect(f.waves.map(\.count) == [3, 3, 3, 1])
        // 25% of 10 rounds down to 2.
        var g = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 10)) { open(&$0); $0.waves = ["100%"]; $0.maxUnavailablePerSite = "25%" })
        g.runAllSucceeding()
        #expect(g.waves.map(\.count) == [2, 2, 2, 2, 2])
    }

    @Test func rackCap() throws {
        let hosts = makeHosts(sites: ["a"], perSite: 6, rackSize: 3)  // a1-a3 in r1, a4-a6 in r2
        var f = try Fleet(makeSpec(hosts) { open(&$0); $0.waves = ["100%"]; $0.maxUnavailablePerRack = 1 })
        f.runAllSucceeding()
        #expect(f.waves == [["a1", "a4"], ["a2", "a5"], ["a3", "a6"]])
        var g = try Fleet(makeSpec(hosts) { open(&$0); $0.waves = ["100%"]; $0.maxUnavailablePerRack = 2 })
        g.runAllSucceeding()
        #expect(g.waves == [["a1", "a2", "a4", "a5"], ["a3", "a6"]])
    }

    @Test func racksArePerSiteAndHostsWithoutRackAreNotCapped() throws {
        var hosts = makeHosts(sites: ["a", "b"], perSite: 2, rackSize: 2)  // rack r1 in a and r1 in b
        hosts += [RolloutHost(name: "n1", site: "a"), RolloutHost(name: "n2", site: "a")]
        let spec = makeSpec(hosts) { open(&$0); $0.waves = ["100%"]; $0.order = .bySite; $0.maxUnavailablePerRack = 1 }
        #expect(RolloutEngine.plan(spec, dataLocal: Set(hosts.map(\.name))).waves.map(\.hosts) == [["a1", "n1", "n2", "b1"], ["a2", "b2"]])
    }

    @Test func failedHostsLeftOutOfBaseHoldTheCaps() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 4)) {
            open(&$0)
            $0.waves = [1]
            $0.maxUnavailablePerSite = 1
            $0.minHostsBeforeJudging = 100
        })
        #expect(f.advance().map(\.host) == ["a1"])
        f.report("a1", .failed, leftIn: "staging")
        #expect(f.advance().isEmpty)  // a1 is down in staging: the site's one slot is taken
        #expect(f.r.currentWave == nil && f.r.status == .running)
        // A failure that left the host in base does not hold the slot.
        var g = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 4)) {
            open(&$0)
            $0.waves = [1]
            $0.maxUnavailablePerSite = 1
            $0.minHostsBeforeJudging = 100
        })
        g.advance()
        g.report("a1", .refused, leftIn: "base", message: "bundle missing")
        #expect(g.advance().map(\.host) == ["a2"])
        #expect(g.host("a1").message == "convert refused: bundle missing")
    }

    @Test func maxConcurrent() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a", "b"], perSite: 5)) { open(&$0); $0.waves = ["100%"]; $0.maxConcurrent = 4 })
        f.runAllSucceeding()
        #expect(f.waves == [["a1", "b1", "a2", "b2"], ["a3", "b3", "a4", "b4"], ["a5", "b5"]])
    }

    @Test func operatorRevertsCountAgainstMaxConcurrent() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 4)) {
            open(&$0)
            $0.waves = ["100%"]
            $0.maxConcurrent = 2
            $0.soakSeconds = 100
        })
        #expect(f.advance().map(\.host) == ["a1", "a2"])
        f.succeedAll()
        #expect(f.advance().isEmpty)  // wave 1 ends; soak
        try RolloutEngine.revert(&f.r, hosts: ["a1"], now: f.now)
        let orders = f.advance(after: 100)  // a1 reverting takes one of the two slots
        #expect(orders.map(\.host) == ["a1", "a3"])
        #expect(orders[0].kind == "revert" && orders[0].operationID == "R-a1-revert-1")
        #expect(f.r.waves.last?.hosts == ["a3"])
    }

    @Test func soakBetweenWaves() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 3)) { open(&$0); $0.waves = [1]; $0.soakSeconds = 300 })
        f.advance()
        f.succeedAll()
        #expect(f.advance(after: 10).isEmpty)
        #expect(f.r.waves[0].endedAt == f.now && f.r.soakUntil == f.now + 300)
        #expect(f.advance(after: 299).isEmpty)
        #expect(f.advance(after: 1).map(\.host) == ["a2"])
    }

    @Test func deadHostsAreNotDrawn() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 3)) { open(&$0); $0.waves = ["100%"] })
        f.facts["a2"]!.alive = false
        #expect(f.advance().map(\.host) == ["a1", "a3"])
        #expect(f.host("a2").phase == .ready)
    }
}
