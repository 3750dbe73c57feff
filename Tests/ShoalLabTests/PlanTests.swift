import Foundation
import ShoalLab
import ShoalTopology
import Testing

/// The address plan, shaping parameters and the loopback lab: no root needed.
@Suite struct PlanTests {
    @Test func smallTopologyPlan() throws {
        let topology = try LabFixtures.small()
        let plan = try LabPlan(topology: topology, runID: "42x00beef")
        #expect(plan.namespaces == [
            "shoal-lab-42x00beef-core", "shoal-lab-42x00beef-origin",
            "shoal-lab-42x00beef-site-a", "shoal-lab-42x00beef-site-b",
            "shoal-lab-42x00beef-host-a1", "shoal-lab-42x00beef-host-a2",
            "shoal-lab-42x00beef-host-b1", "shoal-lab-42x00beef-host-b2",
        ])
        #expect(plan.originAddress == "10.77.0.2")
        #expect(plan.hostAddresses == ["a1": "10.77.1.2", "a2": "10.77.1.3", "b1": "10.77.2.2", "b2": "10.77.2.3"])
        #expect(plan.routerAddresses == ["a": "10.77.1.1", "b": "10.77.2.1"])
        #expect(plan.links.count == 1 + 2 + 4)

        // Interface names: short, and unique within each namespace.
        var seen: Set<String> = []
        for link in plan.links {
            for end in [link.a, link.b] {
                #expect(end.interface.utf8.count <= 15)
                #expect(seen.insert(end.namespace + "/" + end.interface).inserted)
            }
        }

        // Each end is shaped at the rate of the traffic leaving through it.
        let mbit = { (n: UInt64) in Rate.mbit(n) }
        for link in plan.links {
            switch link.kind {
            case .origin:
                #expect(link.a.namespace == plan.originNamespace && link.a.egress == mbit(200))
                #expect(link.b.namespace == plan.coreNamespace && link.b.egress == mbit(200))
            case .wan(let site):
                #expect(link.a.namespace == plan.routerNamespaces[site] && link.a.interface == "wan")
                #expect(link.a.egress == mbit(100) && link.b.egress == mbit(100))
                #expect(link.b.namespace == plan.coreNamespace && link.b.interface == plan.coreInterfaces[site])
            case .host(let host):
                #expect(link.a.namespace == plan.hostNamespaces[host] && link.a.address == plan.hostAddresses[host]! + "/24")
                #expect(link.b.bridge == "br0" && link.b.address == nil)
                #expect(link.a.egress == mbit(400) && link.b.egress == mbit(400))
            }
        }
    }

    @Test func asymmetricRatesGoToTheRightEnds() throws {
        let topology = try Topology.parse(yaml: """
        origin: { uplink: 1Gbit, seed: s }
        sites: [{ name: east, wan_up: 200Mbit, wan_down: 500Mbit }]
        hosts: [{ name: e1, site: east, up: 50Mbit, down: 300Mbit }]
        """)
        let plan = try LabPlan(topology: topology, runID: "t1", octet: 9)
        let wan = try #require(plan.links.first { $0.kind == .wan(site: "east") })
        #expect(wan.a.egress == .mbit(200))   // site end: out of the site
        #expect(wan.b.egress == .mbit(500))   // core end: into the site
        let host = try #require(plan.links.first { $0.kind == .host("e1") })
        #expect(host.a.egress == .mbit(50))   // host end: the host's upload
        #expect(host.b.egress == .mbit(300))  // bridge port: the host's download
        #expect(plan.hostAddresses["e1"] == "10.9.1.2")
    }

    @Test func tooManySitesIsRefused() throws {
        let sites = (1...64).map { Site(name: "s\($0)", wanUp: .mbit(10), wanDown: .mbit(10)) }
        let hosts = sites.map { Host(name: "h" + $0.name, site: $0.name, up: .mbit(10), down: .mbit(10)) }
        let topology = Topology(origin: Origin(uplink: .mbit(10), seeds: ["seed"]), sites: sites, hosts: hosts)
        #expect(throws: LabError.self) { try LabPlan(topology: topology, runID: "t") }
        #expect(throws: LabError.self) { try LoopbackLab(topology: topology) }
    }

    @Test func shapingParameters() {
        let wan = Shaping(rate: .mbit(20))
        #expect(wan.bytesPerSecond == 2_500_000)
        #expect(wan.burstBytes == 5000)                      // 2 ms at 20 Mbit/s
        #expect(Shaping(rate: Rate(bitsPerSecond: 1_000_000)).burstBytes == 1600)   // floor
        #expect(wan.fifoLimitBytes(maxDelay: 0.1) == 262_144)
        #expect(Shaping(rate: .mbit(400)).fifoLimitBytes(maxDelay: 0.1) == 5_000_000)
        let commands = wan.commands(namespace: "ns", interface: "wan")
        #expect(commands[0] == ["-n", "ns", "qdisc", "add", "dev", "wan", "root", "handle", "1:", "htb", "default", "1"])
        #expect(commands[1].joined(separator: " ").contains("htb rate 20000000bit ceil 20000000bit burst 5000b cburst 5000b"))
        #expect(commands[2].suffix(3) == ["bfifo", "limit", "262144"])
        #expect(Shaping(rate: .mbit(20), leaf: .htbDefault).commands(namespace: "ns", interface: "wan").count == 2)
    }

    @Test func tcOutputIsParsed() {
        #expect(Shaping.parseTCRate("20Mbit") == 20_000_000)
        #expect(Shaping.parseTCRate("1Gbit") == 1_000_000_000)
        #expect(Shaping.parseTCRate("123456Kbit") == 123_456_000)
        #expect(Shaping.parseTCRate("800bit") == 800)
        #expect(Shaping.parseTCRate("2Mibit") == 2 * 1024 * 1024)
        #expect(Shaping.parseTCRate("20Mbps") == nil)
        let line = "class htb 1:1 root leaf 10: prio 0 rate 20Mbit ceil 20Mbit burst 5000b cburst 5000b \n"
        let parsed = Shaping.parseClass(line)
        #expect(parsed?.rate == 20_000_000 && parsed?.ceil == 20_000_000)
        #expect(Shaping.parseClass("class htb 1:2 root rate 1Mbit ceil 1Mbit") == nil)
        // tc drops digits when printing: 123456789 bit/s reads back as 123456Kbit.
        #expect(Shaping(rate: Rate(bitsPerSecond: 123_456_789)).matches(123_456_000))
        #expect(!Shaping(rate: .mbit(20)).matches(21_000_000))
    }

    @Test func loopbackLabAddresses() throws {
        let topology = try LabFixtures.small()
        let lab = try LoopbackLab(topology: topology)
        defer { lab.teardown() }
        #expect(lab.mode == .loopback && lab.mode.rawValue == "loopback")
        #expect(lab.originAddress == "127.77.0.2")
        #expect(lab.address(of: "seed") == lab.originAddress)
        #expect(lab.address(of: "origin") == lab.originAddress)
        #expect(["a1", "a2", "b1", "b2"].map(lab.address(of:)) == ["127.77.1.2", "127.77.1.3", "127.77.2.2", "127.77.2.3"])
        let other = try LoopbackLab(topology: topology, octet: 5)
        #expect(other.address(of: "b2") == "127.5.2.3")
        // Same host parts as the namespace lab.
        let plan = try LabPlan(topology: topology, runID: "x")
        for host in topology.hosts {
            #expect(plan.hostAddresses[host.name]!.dropFirst(3) == lab.address(of: host.name).dropFirst(4))
        }
    }

    @Test func loopbackLabSpawnsAndTearsDown() throws {
        let topology = try LabFixtures.small()
        let lab: any Lab = try LoopbackLab(topology: topology)
        defer { lab.teardown() }
        let dir = try LabFixtures.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("out").path
        let echo = try lab.spawn(in: "a1", executable: "sh", arguments: ["-c", "echo $SHOAL_X at \(lab.address(of: "a1"))"],
                                 environment: ["SHOAL_X": "hello"], stdout: out, stderr: nil)
        #expect(echo.waitUntilExit(timeout: 10))
        #expect(echo.exitStatus == 0)
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "hello at 127.77.1.2\n")

        let sleeper = try lab.spawn(in: "b2", executable: "sleep", arguments: ["30"])
        #expect(sleeper.isRunning && sleeper.pid > 0)
        sleeper.terminate(grace: 2)
        #expect(sleeper.termination == .signaled(SIGTERM))

        // A shell that started a child: teardown stops both (the process group).
        let shell = try lab.spawn(in: "seed", executable: "sh", arguments: ["-c", "sleep 30 & wait"])
        #expect(throws: LabError.self) { try lab.spawn(in: "nobody", executable: "true") }
        lab.teardown()
        #expect(!shell.isRunning)
        #expect(lab.processes.count == 3)
        #expect(throws: LabError.self) { try lab.spawn(in: "a1", executable: "true") }
        lab.teardown()   // idempotent
    }

    @Test func runIDs() throws {
        let id = NetworkLab.makeRunID()
        #expect(id.hasPrefix("\(getpid())x"))
        #expect(throws: LabError.self) {
            try NetworkLab.build(topology: LabFixtures.small(), runID: "has-dash")
        }
    }
}

struct IPv6PlanTests {
    @Test func everyLabAddressHasATwinInTheSamePlace() {
        #expect(LabPlan.ipv6("10.77.0.2") == "fd00:4d:0::2")
        #expect(LabPlan.ipv6("10.77.0.6/30") == "fd00:4d:0::6/126")
        #expect(LabPlan.ipv6("10.77.3.12/24") == "fd00:4d:3::c/64")
        #expect(LabPlan.ipv6("10.77.0.0/16") == "fd00:4d:0::0/32")
        #expect(LabPlan.ipv6("10.77.255.254") == "fd00:4d:ff::fe")
    }

    @Test func twinsAreDistinctAcrossThePlan() throws {
        let plan = try LabPlan(topology: try Topology.parse(yaml: """
            origin: { uplink: 1Gbit, seed: s }
            sites: [{ name: a, wan: 1Gbit, host_link: 1Gbit }, { name: b, wan: 1Gbit, host_link: 1Gbit }]
            hosts: [{ name: a1, site: a }, { name: a2, site: a }, { name: b1, site: b }]
            """), runID: "t")
        let v4 = plan.links.flatMap { [$0.a.address, $0.b.address] }.compactMap { $0 } + plan.bridges.map(\.address)
        #expect(Set(v4.map(LabPlan.ipv6)).count == Set(v4).count)
    }
}
