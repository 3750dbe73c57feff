import ShoalTopology
import Testing

/// Operator caps: parsed from the topology, handed to each machine as its share, and lowering the
/// bound of a capped distribution.
struct LimitsTests {
    static let yaml = """
        origin: { uplink: 1Gbit/s, seeds: [s1, s2], uplink_limit: 400Mbit/s }
        sites:
          - { name: east, wan: 200Mbit/s, wan_limit: 100Mbit/s, host_link: 1Gbit/s, host_limit: 300Mbit/s }
          - { name: west, wan_up: 100Mbit/s, wan_down: 400Mbit/s, wan_limit_down: 40Mbit/s, host_link: 1Gbit/s }
        hosts:
          - { name: e1, site: east }
          - { name: e2, site: east, limit: 50Mbit/s }
          - { name: w1, site: west }
          - { name: w2, site: west }
        """

    @Test func parsesEveryCap() throws {
        let t = try Topology.parse(yaml: Self.yaml)
        #expect(t.origin.uplinkLimit == .mbit(400))
        #expect(t.site(named: "east")?.wanLimitUp == .mbit(100) && t.site(named: "east")?.wanLimitDown == .mbit(100))
        #expect(t.site(named: "east")?.hostLimit == .mbit(300))
        #expect(t.site(named: "west")?.wanLimitUp == nil && t.site(named: "west")?.wanLimitDown == .mbit(40))
        #expect(t.host(named: "e2")?.limit == .mbit(50) && t.host(named: "e1")?.limit == nil)
        #expect(t.hasLimits)
        #expect(try !Topology.parse(yaml: ShippedTopology.text("lab-3x4.yaml")).hasLimits)
    }

    @Test func sharesAndOverrides() throws {
        let t = try Topology.parse(yaml: Self.yaml)
        // Seeds share the uplink cap.
        #expect(t.limits(for: "s1") == HostLimits(up: 200_000_000))
        // The site's WAN cap is split over its two hosts; the host cap falls back to the site's.
        #expect(t.limits(for: "e1") == HostLimits(up: 300_000_000, down: 300_000_000, wanUp: 50_000_000, wanDown: 50_000_000))
        #expect(t.limits(for: "e2") == HostLimits(up: 50_000_000, down: 50_000_000, wanUp: 50_000_000, wanDown: 50_000_000))
        #expect(t.limits(for: "w1") == HostLimits(wanDown: 20_000_000))
        #expect(t.limits(for: "nobody") == nil)
    }

    @Test func linkRatesWhenTheApplicationEnforcesThem() throws {
        let t = try Topology.parse(yaml: Self.yaml)
        // The tighter of the cap and the link (share).
        #expect(t.limits(for: "s2", enforceLinkRates: true) == HostLimits(up: 200_000_000))
        #expect(t.limits(for: "w1", enforceLinkRates: true)
            == HostLimits(up: 1_000_000_000, down: 1_000_000_000, wanUp: 50_000_000, wanDown: 20_000_000))
        let lab = try ShippedTopology.load("lab-3x4.yaml")
        #expect(lab.limits(for: "seed", enforceLinkRates: true) == HostLimits(up: 100_000_000))
        #expect(lab.limits(for: "a1", enforceLinkRates: true)
            == HostLimits(up: 100_000_000, down: 100_000_000, wanUp: 12_500_000, wanDown: 12_500_000))
        #expect(lab.limits(for: "a1")?.isUnlimited == true)
    }

    @Test func theBoundOfACappedDistribution() throws {
        let t = try Topology.parse(yaml: Self.yaml)
        let capped = t.limited()
        #expect(capped.origin.uplink == .mbit(400))
        #expect(capped.site(named: "east")?.wanDown == .mbit(100) && capped.site(named: "west")?.wanDown == .mbit(40))
        #expect(capped.site(named: "west")?.wanUp == .mbit(100))
        #expect(capped.host(named: "e2")?.down == .mbit(50) && capped.host(named: "w1")?.down == .mbit(1000))
        let size: UInt64 = 1 << 30
        #expect(capped.lowerBound(bundleBytes: size).seconds > t.lowerBound(bundleBytes: size).seconds)
    }

    @Test func refusesBadCaps() {
        #expect(throws: TopologyError.self) {
            try Topology.parse(yaml: "origin: { uplink: 1Gbit, seed: s }\nsites: [{ name: a, wan: 1Gbit, wan_limit: 1Mbit, wan_limit_up: 1Mbit }]\nhosts: [{ name: h, site: a, link: 1Gbit }]")
        }
        #expect(throws: TopologyError.self) {
            try Topology.parse(yaml: "origin: { uplink: 1Gbit, seed: s }\nsites: [{ name: a, wan: 1Gbit }]\nhosts: [{ name: h, site: a, link: 1Gbit, limit: fast }]")
        }
    }
}
