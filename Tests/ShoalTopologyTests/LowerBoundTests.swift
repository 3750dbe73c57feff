import ShoalTestKit
import ShoalTopology
import Testing

struct LowerBoundTests {
    /// The worked example of `topology/README.md`: lab-3x4, F = 52 MB.
    @Test func lab3x4WithA52MBBundle() throws {
        let topology = try ShippedTopology.load("lab-3x4.yaml")
        let bound = topology.lowerBound(bundleBytes: 52_000_000)
        #expect(bound.seconds == 8.32)
        #expect(bound.binding == .siteWAN("a"))
        #expect(bound.bundleBytes == 52_000_000)
        #expect(bound.seconds(for: .originUplink) == 4.16)
        for site in ["a", "b", "c"] {
            #expect(bound.seconds(for: .siteWAN(site)) == 8.32)
            #expect(bound.seconds(for: .siteCapacity(site)) == 4.0 * 416e6 / 450e6)
        }
        #expect(bound.seconds(for: .slowestHost("a1")) == 4.16)
        #expect(bound.seconds(for: .totalUpload) == 3.84)
        #expect(bound.seconds(for: .wanFanIn) == 4.992)
        #expect(bound.terms.map(\.constraint) == [
            .originUplink, .siteWAN("a"), .siteWAN("b"), .siteWAN("c"), .slowestHost("a1"), .totalUpload,
            .siteCapacity("a"), .siteCapacity("b"), .siteCapacity("c"), .wanFanIn,
        ])
        #expect(bound.description == "8.32 s (site WAN (a))")
    }

    @Test func lab3x4WithTheDebianBundle() throws {
        let bound = try ShippedTopology.load("lab-3x4.yaml").lowerBound(bundleBytes: 222_298_112)
        #expect(bound.seconds == 35.56769792)
        #expect(bound.binding == .siteWAN("a"))
    }

    @Test func small() throws {
        // 4 MB = 32 Mbit: origin 0.16 s, WAN 0.32 s, host 0.08 s.
        let bound = try ShippedTopology.load("small.yaml").lowerBound(bundleBytes: 4_000_000)
        #expect(bound.seconds == 0.32)
        #expect(bound.binding == .siteWAN("a"))
    }

    // Hand-computed cases, one per term. F = 1.25 MB = 10 Mbit throughout.
    static let F: UInt64 = 1_250_000

    static func topology(origin: UInt64, sites: [(name: String, up: UInt64, down: UInt64)], hosts: [(name: String, site: String, up: UInt64, down: UInt64)]) -> Topology {
        let topology = Topology(
            origin: Origin(uplink: .mbit(origin), seeds: ["seed"]),
            sites: sites.map { Site(name: $0.name, wanUp: .mbit($0.up), wanDown: .mbit($0.down)) },
            hosts: hosts.map { Host(name: $0.name, site: $0.site, up: .mbit($0.up), down: .mbit($0.down)) })
        try! topology.validate()
        return topology
    }

    @Test func originUplinkBinds() {
        // origin 10/10 = 1; WAN, host 0.1; total 10/110; site 10/200; fan-in 10/110.
        let t = Self.topology(origin: 10, sites: [("a", 100, 100)], hosts: [("h", "a", 100, 100)])
        let bound = t.lowerBound(bundleBytes: Self.F)
        #expect(bound.binding == .originUplink)
        #expect(bound.seconds == 1.0)
        #expect(bound.seconds(for: .totalUpload) == 10.0 / 110.0)
        #expect(bound.seconds(for: .siteCapacity("a")) == 10.0 / 200.0)
    }

    @Test func siteWANBinds() {
        // Site b's WAN of 4: 10/4 = 2.5 s. Everything else ≤ 0.5 s.
        let t = Self.topology(origin: 100, sites: [("a", 100, 100), ("b", 100, 4)],
                              hosts: [("a1", "a", 100, 100), ("b1", "b", 100, 100), ("b2", "b", 100, 100)])
        let bound = t.lowerBound(bundleBytes: Self.F)
        #expect(bound.binding == .siteWAN("b"))
        #expect(bound.seconds == 2.5)
        #expect(bound.seconds(for: .siteWAN("a")) == 0.1)
        #expect(bound.seconds(for: .siteCapacity("b")) == 20.0 / 204.0)
    }

    @Test func slowestHostBinds() {
        let t = Self.topology(origin: 100, sites: [("a", 100, 100)], hosts: [("h1", "a", 100, 100), ("h2", "a", 100, 10), ("h3", "a", 100, 20)])
        let bound = t.lowerBound(bundleBytes: Self.F)
        #expect(bound.binding == .slowestHost("h2"))
        #expect(bound.seconds == 1.0)
    }

    @Test func totalUploadBinds() {
        // Ten hosts that upload 10 each: 10·10 / (100 + 100) = 0.5 s; site capacity 100/1100,
        // origin 0.1, fan-in 10/(100 + min(1000, 100)) = 0.05.
        let hosts = (1...10).map { (name: "h\($0)", site: "a", up: UInt64(10), down: UInt64(1000)) }
        let t = Self.topology(origin: 100, sites: [("a", 1000, 1000)], hosts: hosts)
        let bound = t.lowerBound(bundleBytes: Self.F)
        #expect(bound.binding == .totalUpload)
        #expect(bound.seconds == 0.5)
        #expect(bound.seconds(for: .siteCapacity("a")) == 100.0 / 1100.0)
        #expect(bound.seconds(for: .wanFanIn) == 0.05)
    }

    @Test func siteCapacityBinds() {
        // Site a: four hosts uploading 1 behind a WAN of 10: 4·10 / (10 + 4) = 2.857 s, more than
        // its WAN term 10/10 = 1 s. Total upload: 5·10 / (1000 + 4 + 1000) is small.
        let t = Self.topology(origin: 1000, sites: [("a", 10, 10), ("b", 1000, 1000)],
                              hosts: [("a1", "a", 1, 1000), ("a2", "a", 1, 1000), ("a3", "a", 1, 1000), ("a4", "a", 1, 1000), ("b1", "b", 1000, 1000)])
        let bound = t.lowerBound(bundleBytes: Self.F)
        #expect(bound.binding == .siteCapacity("a"))
        #expect(bound.seconds == 40.0 / 14.0)
        #expect(bound.seconds(for: .siteWAN("a")) == 1.0)
        #expect(bound.seconds(for: .totalUpload) == 50.0 / 2004.0)
        #expect(bound.seconds(for: .wanFanIn) == 20.0 / (1000.0 + 4 + 1000))
    }

    @Test func wanFanInBinds() {
        // Origin 100, three sites sending out at 10 each: 3·10 / (100 + 30) = 0.2308 s, while the
        // brief's four terms give only 10/100 = 0.1 s.
        let t = Self.topology(origin: 100, sites: [("a", 10, 1000), ("b", 10, 1000), ("c", 10, 1000)],
                              hosts: [("a1", "a", 1000, 1000), ("b1", "b", 1000, 1000), ("c1", "c", 1000, 1000)])
        let bound = t.lowerBound(bundleBytes: Self.F)
        #expect(bound.binding == .wanFanIn)
        #expect(bound.seconds == 30.0 / 130.0)
        #expect(bound.seconds(for: .originUplink) == 0.1)
    }

    @Test func tiesGoToTheFirstTerm() {
        // Origin and every host at 10, WAN at 10: all single-copy terms are 1 s; origin is first.
        let t = Self.topology(origin: 10, sites: [("a", 10, 10)], hosts: [("h", "a", 10, 10)])
        let bound = t.lowerBound(bundleBytes: Self.F)
        #expect(bound.seconds == 1.0)
        #expect(bound.binding == .originUplink)
    }

    @Test func receiversAndEmptyBundles() throws {
        let lab = try ShippedTopology.load("lab-3x4.yaml")
        // Only a1 and a2 receive: one site, two hosts, no other site's WAN term.
        let pair = lab.lowerBound(bundleBytes: 52_000_000, receivers: ["a1", "a2", "not-a-host"])
        #expect(pair.terms.map(\.constraint) == [.originUplink, .siteWAN("a"), .slowestHost("a1"), .totalUpload, .siteCapacity("a"), .wanFanIn])
        #expect(pair.seconds == 8.32)
        #expect(pair.seconds(for: .totalUpload) == 2 * 416e6 / 300e6)
        let none = lab.lowerBound(bundleBytes: 52_000_000, receivers: [])
        #expect(none.seconds == 0 && none.binding == .originUplink && none.terms.count == 1)
        let empty = lab.lowerBound(bundleBytes: 0)
        #expect(empty.seconds == 0 && empty.binding == .originUplink)
        #expect(empty.terms.allSatisfy { $0.seconds == 0 })
    }

    /// Faster links never raise the bound; a bigger bundle never lowers it; the bound is linear in F.
    @Test func monotonicity() {
        var random = SplitMix64(seed: 0x5EED)
        for _ in 0..<300 {
            let base = Self.randomTopology(&random)
            let bytes = random.next() % 1_000_000_000 + 1
            let bound = base.lowerBound(bundleBytes: bytes)
            // One link made faster, at random.
            var faster = base
            let factor = random.next() % 8 + 2
            switch random.next() % 5 {
            case 0: faster.origin.uplink.bitsPerSecond *= factor
            case 1: let s = Int(random.next() % UInt64(faster.sites.count)); faster.sites[s].wanDown.bitsPerSecond *= factor
            case 2: let s = Int(random.next() % UInt64(faster.sites.count)); faster.sites[s].wanUp.bitsPerSecond *= factor
            case 3: let h = Int(random.next() % UInt64(faster.hosts.count)); faster.hosts[h].up.bitsPerSecond *= factor
            default: let h = Int(random.next() % UInt64(faster.hosts.count)); faster.hosts[h].down.bitsPerSecond *= factor
            }
            #expect(faster.lowerBound(bundleBytes: bytes).seconds <= bound.seconds)
            // Every link faster at once.
            var all = base
            all.origin.uplink.bitsPerSecond *= factor
            for i in all.sites.indices { all.sites[i].wanUp.bitsPerSecond *= factor; all.sites[i].wanDown.bitsPerSecond *= factor }
            for i in all.hosts.indices { all.hosts[i].up.bitsPerSecond *= factor; all.hosts[i].down.bitsPerSecond *= factor }
            let scaled = all.lowerBound(bundleBytes: bytes)
            #expect(scaled.seconds <= bound.seconds)
            #expect(abs(scaled.seconds * Double(factor) - bound.seconds) <= 1e-9 * bound.seconds)
            // A bigger bundle.
            #expect(base.lowerBound(bundleBytes: bytes + 1 + random.next() % 1000).seconds >= bound.seconds)
            let doubled = base.lowerBound(bundleBytes: bytes * 2)
            #expect(abs(doubled.seconds - 2 * bound.seconds) <= 1e-9 * bound.seconds)
            #expect(doubled.binding == bound.binding)
            // The bound is the largest term, and the binding term is one of them.
            #expect(bound.terms.allSatisfy { $0.seconds <= bound.seconds })
            #expect(bound.terms.contains { $0.constraint == bound.binding && $0.seconds == bound.seconds })
        }
    }

    static func randomTopology(_ random: inout SplitMix64) -> Topology {
        func rate() -> Rate { Rate(bitsPerSecond: (random.next() % 10_000 + 1) * 100_000) }
        let siteCount = Int(random.next() % 4 + 1)
        let sites = (0..<siteCount).map { Site(name: "s\($0)", wanUp: rate(), wanDown: rate()) }
        let hosts = (0..<Int(random.next() % 12 + 1)).map { i in
            Host(name: "h\(i)", site: "s\(Int(random.next() % UInt64(siteCount)))", up: rate(), down: rate())
        }
        return Topology(origin: Origin(uplink: rate(), seeds: ["seed"]), sites: sites, hosts: hosts)
    }
}

