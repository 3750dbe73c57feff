import Foundation
import ShoalTopology
import Testing

/// The shipped topology files, read from the package's `topology/` folder.
enum ShippedTopology {
    static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("topology")

    static func text(_ name: String) throws -> String {
        try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
    }

    static func load(_ name: String) throws -> Topology { try Topology.parse(yaml: text(name)) }
}

struct ShippedFileTests {
    @Test func lab3x4() throws {
        let topology = try ShippedTopology.load("lab-3x4.yaml")
        #expect(topology.origin == Origin(name: "origin", uplink: .mbit(100), seeds: ["seed"]))
        #expect(topology.sites.map(\.name) == ["a", "b", "c"])
        for site in topology.sites {
            #expect(site.wanUp == .mbit(50) && site.wanDown == .mbit(50))
            #expect(topology.hosts(inSite: site.name).map(\.name) == (1...4).map { "\(site.name)\($0)" })
        }
        #expect(topology.hosts.count == 12)
        for host in topology.hosts {
            #expect(host.up == .mbit(100) && host.down == .mbit(100) && host.rack == nil && host.labels.isEmpty)
        }
    }

    @Test func small() throws {
        let topology = try ShippedTopology.load("small.yaml")
        #expect(topology.origin.uplink == .mbit(200))
        #expect(topology.origin.seeds == ["seed"])
        #expect(topology.sites.map(\.name) == ["a", "b"])
        #expect(topology.sites.allSatisfy { $0.wanUp == .mbit(100) && $0.wanDown == .mbit(100) })
        #expect(topology.hosts.map(\.name) == ["a1", "a2", "b1", "b2"])
        #expect(topology.hosts.map(\.site) == ["a", "a", "b", "b"])
        #expect(topology.hosts.allSatisfy { $0.up == .mbit(400) && $0.down == .mbit(400) })
    }

    /// The README's full example parses to what the README says.
    @Test func readmeExample() throws {
        let readme = try ShippedTopology.text("README.md")
        let start = try #require(readme.range(of: "```yaml\n"))
        let end = try #require(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let topology = try Topology.parse(yaml: String(readme[start.upperBound..<end.lowerBound]))
        #expect(topology.origin == Origin(name: "hq", uplink: .mbit(1000), seeds: ["seed1", "seed2"]))
        let east = try #require(topology.site(named: "east"))
        #expect(east == Site(name: "east", wanUp: .mbit(200), wanDown: .mbit(500), racks: ["r1", "r2"], hostUp: .mbit(1000), hostDown: .mbit(1000)))
        let west = try #require(topology.site(named: "west"))
        #expect(west == Site(name: "west", wanUp: Rate(bitsPerSecond: 100_000_000), wanDown: Rate(bitsPerSecond: 100_000_000)))
        #expect(topology.hosts == [
            Host(name: "e1", site: "east", rack: "r1", labels: ["role": "db"], up: .mbit(1000), down: .mbit(1000)),
            Host(name: "e2", site: "east", rack: "r2", up: .mbit(250), down: .mbit(1000)),
            Host(name: "w1", site: "west", labels: ["role": "web", "tier": "1"], up: .mbit(100), down: .mbit(100)),
            Host(name: "w2", site: "west", up: .mbit(50), down: .mbit(200)),
        ])
    }
}

struct ParseTests {
    static let minimal = """
        origin: { uplink: 100Mbit, seed: s0 }
        sites: [{ name: a, wan: 50Mbit }]
        hosts: [{ name: h1, site: a, link: 1Gbit }]
        """

    @Test func minimalDocumentAndDefaults() throws {
        let topology = try Topology.parse(yaml: Self.minimal)
        #expect(topology.origin.name == "origin")
        #expect(topology.origin.seeds == ["s0"])
        #expect(topology.sites == [Site(name: "a", wanUp: .mbit(50), wanDown: .mbit(50))])
        #expect(topology.hosts == [Host(name: "h1", site: "a", up: .mbit(1000), down: .mbit(1000))])
    }

    @Test func asymmetricLinksAndOverrides() throws {
        let topology = try Topology.parse(yaml: """
            origin: { name: o, uplink: 10MB/s, seeds: [s1, s2] }
            sites:
              - { name: a, wan_up: 20Mbit, wan_down: 80Mbit, host_up: 30Mbit, host_down: 60Mbit }
            hosts:
              - { name: h1, site: a }
              - { name: h2, site: a, up: 5Mbit }
              - { name: h3, site: a, down: 7Mbit }
              - { name: h4, site: a, up: 1Mbit, down: 2Mbit }
            """)
        #expect(topology.origin == Origin(name: "o", uplink: .mbit(80), seeds: ["s1", "s2"]))
        #expect(topology.sites[0] == Site(name: "a", wanUp: .mbit(20), wanDown: .mbit(80), hostUp: .mbit(30), hostDown: .mbit(60)))
        #expect(topology.hosts.map(\.up) == [.mbit(30), .mbit(5), .mbit(30), .mbit(1)])
        #expect(topology.hosts.map(\.down) == [.mbit(60), .mbit(60), .mbit(7), .mbit(2)])
    }

    @Test func racksAndLabels() throws {
        let topology = try Topology.parse(yaml: """
            origin: { uplink: 1Gbit, seed: seed }
            sites:
              - { name: a, wan: 1Gbit, host_link: 1Gbit, racks: [r1, r2] }
              - { name: b, wan: 1Gbit, host_link: 1Gbit }
            hosts:
              - { name: a1, site: a, rack: r2, labels: { role: db, tier: 1, on: true } }
              - { name: b1, site: b, rack: anything, labels: }
            """)
        #expect(topology.sites[0].racks == ["r1", "r2"])
        #expect(topology.hosts[0].rack == "r2")
        #expect(topology.hosts[0].labels == ["role": "db", "tier": "1", "on": "true"])
        #expect(topology.hosts[1].rack == "anything")
        #expect(topology.hosts[1].labels.isEmpty)
        #expect(topology.host(named: "b1")?.site == "b")
        #expect(topology.host(named: "zz") == nil)
        #expect(topology.site(named: "zz") == nil)
    }

    /// Every validation and syntax error: the document, the path and a part of the message.
    @Test(arguments: [
        // The document itself.
        ("", nil, "empty document"),
        ("- a\n- b", nil, "expected a mapping with keys origin, sites, hosts, found a list"),
        ("origin: [", nil, "invalid YAML"),
        ("origin: {uplink: 1Mbit, seed: s}\norigin: {uplink: 1Mbit, seed: s}\nsites: []\nhosts: []", nil, "duplicate key \"origin\""),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit}]\nextra: 1", "extra", "unknown key; expected one of origin, sites, hosts"),
        ("sites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit}]", "origin", "required key is missing"),
        ("origin: {uplink: 1Mbit, seed: s}\nhosts: [{name: h, site: a, link: 1Mbit}]", "sites", "required key is missing"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]", "hosts", "required key is missing"),
        // The origin.
        ("origin: 5\nsites: []\nhosts: []", "origin", "expected a mapping"),
        ("origin: {seed: s}\nsites: []\nhosts: []", "origin.uplink", "required key is missing"),
        ("origin: {uplink: 100Mbps, seed: s}\nsites: []\nhosts: []", "origin.uplink", "unknown unit \"Mbps\""),
        ("origin: {uplink: 0Mbit, seed: s}\nsites: []\nhosts: []", "origin.uplink", "must be greater than 0"),
        ("origin: {uplink: 100, seed: s}\nsites: []\nhosts: []", "origin.uplink", "has no unit"),
        ("origin: {uplink: , seed: s}\nsites: []\nhosts: []", "origin.uplink", "value is missing"),
        ("origin: {uplink: [1Mbit], seed: s}\nsites: []\nhosts: []", "origin.uplink", "expected a value, found a list"),
        ("origin: {uplink: 1Mbit}\nsites: []\nhosts: []", "origin.seeds", "required key is missing"),
        ("origin: {uplink: 1Mbit, seed: a, seeds: [b]}\nsites: []\nhosts: []", "origin.seeds", "give either seed or seeds, not both"),
        ("origin: {uplink: 1Mbit, seeds: []}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit}]", "origin.seeds", "at least one seed"),
        ("origin: {uplink: 1Mbit, seeds: s}\nsites: []\nhosts: []", "origin.seeds", "expected a list, found a value"),
        ("origin: {uplink: 1Mbit, seeds: [s, s]}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit}]", "origin.seeds[1]", "duplicate host name \"s\" (also origin.seeds[0])"),
        ("origin: {uplink: 1Mbit, seed: 'bad name'}\nsites: []\nhosts: []", "origin.seed", "seed name \"bad name\" may only contain"),
        ("origin: {name: a, uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit}]", "sites[0].name", "duplicate site name \"a\" (also origin.name)"),
        ("origin: {uplink: 1Mbit, seed: s, port: 1}\nsites: []\nhosts: []", "origin.port", "unknown key; expected one of name, uplink, uplink_limit, seed, seeds"),
        // Sites.
        ("origin: {uplink: 1Mbit, seed: s}\nsites: []\nhosts: [{name: h, site: a, link: 1Mbit}]", "sites", "at least one site"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites:\nhosts: []", "sites", "at least one site"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: {a: 1}\nhosts: []", "sites", "expected a list, found a mapping"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [a]\nhosts: []", "sites[0]", "expected a mapping"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{wan: 1Mbit}]\nhosts: []", "sites[0].name", "required key is missing"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: '', wan: 1Mbit}]\nhosts: []", "sites[0].name", "site name must not be empty"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: -a, wan: 1Mbit}]\nhosts: []", "sites[0].name", "must start with a letter or digit"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: \(String(repeating: "x", count: 64)), wan: 1Mbit}]\nhosts: []", "sites[0].name", "longer than 63 characters"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a}]\nhosts: []", "sites[0].wan", "required key is missing (give wan, or wan_up and wan_down)"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}, {name: b, wan: 50Mbps}]\nhosts: []", "sites[1].wan", "unknown unit \"Mbps\""),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, wan_up: 1Mbit}]\nhosts: []", "sites[0].wan_up", "give either wan or wan_up/wan_down, not both"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan_up: 1Mbit}]\nhosts: []", "sites[0].wan_down", "required key is missing"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan_down: 1Mbit}]\nhosts: []", "sites[0].wan_up", "required key is missing"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan_up: 0bit, wan_down: 1Mbit}]\nhosts: []", "sites[0].wan_up", "must be greater than 0"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, host_link: 1Mbit, host_up: 1Mbit}]\nhosts: []", "sites[0].host_up", "give either host_link or host_up/host_down, not both"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, host_down: 1Mbps}]\nhosts: []", "sites[0].host_down", "unknown unit \"Mbps\""),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, racks: [r1, r1]}]\nhosts: [{name: h, site: a, link: 1Mbit}]", "sites[0].racks[1]", "duplicate rack \"r1\""),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, racks: [r/1]}]\nhosts: []", "sites[0].racks[0]", "rack name \"r/1\" may only contain"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}, {name: a, wan: 2Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit}]", "sites[1].name", "duplicate site name \"a\" (also sites[0].name)"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, uplink: 1Mbit}]\nhosts: []", "sites[0].uplink", "unknown key; expected one of name, wan, wan_up, wan_down, racks, host_link, host_up, host_down"),
        // Hosts.
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: []", "hosts", "at least one host"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{site: a, link: 1Mbit}]", "hosts[0].name", "required key is missing"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, link: 1Mbit}]", "hosts[0].site", "required key is missing"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: b, link: 1Mbit}]", "hosts[0].site", "unknown site \"b\"; sites are a"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit}, {name: h, site: a, link: 1Mbit}]", "hosts[1].name", "duplicate host name \"h\" (also hosts[0].name)"),
        ("origin: {uplink: 1Mbit, seed: h}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit}]", "hosts[0].name", "duplicate host name \"h\" (also origin.seed)"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: 'h*', site: a, link: 1Mbit}]", "hosts[0].name", "host name \"h*\" may only contain"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a}]", "hosts[0]", "no upload rate: set link or up on the host, or host_link or host_up on site \"a\""),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, host_up: 1Mbit}]\nhosts: [{name: h, site: a}]", "hosts[0]", "no download rate"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit, down: 2Mbit}]", "hosts[0].down", "give either link or up/down, not both"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Gbps}]", "hosts[0].link", "unknown unit \"Gbps\""),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, up: 0kbit, down: 1Mbit}]", "hosts[0].up", "must be greater than 0"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, host_link: 1Mbit}]\nhosts: [{name: h, site: a, down: 1.5bit}]", "hosts[0].down", "not a whole number"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit, racks: [r1]}]\nhosts: [{name: h, site: a, rack: r2, link: 1Mbit}]", "hosts[0].rack", "rack \"r2\" is not one of site \"a\"'s racks (r1)"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, rack: 'r 1', link: 1Mbit}]", "hosts[0].rack", "rack name \"r 1\" may only contain"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit, labels: [a]}]", "hosts[0].labels", "expected a mapping of label keys to values"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit, labels: {'a=b': c}}]", "hosts[0].labels", "label key \"a=b\" may only contain"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit, labels: {role: 'a,b'}}]", "hosts[0].labels.role", "label values must be non-empty and contain no comma"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit, labels: {role: ''}}]", "hosts[0].labels.role", "label values must be non-empty"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit, labels: {role: }}]", "hosts[0].labels.role", "value is missing"),
        ("origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts: [{name: h, site: a, link: 1Mbit, speed: 1}]", "hosts[0].speed", "unknown key; expected one of name, site, rack, labels, link, up, down"),
    ] as [(String, String?, String)])
    func refusesInvalidDocuments(yaml: String, path: String?, message: String) {
        do {
            let topology = try Topology.parse(yaml: yaml)
            Issue.record("parsed: \(topology)")
        } catch let error as TopologyError {
            #expect(error.path == path, "\(error)")
            #expect(error.message.contains(message), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func errorsNameThePathAndLine() {
        let yaml = """
            origin:
              uplink: 100Mbit
              seed: seed
            sites:
              - name: a
                wan: 50Mbit
              - name: b
                wan: 50Mbps
            hosts:
              - { name: a1, site: a, link: 1Gbit }
            """
        let error = #expect(throws: TopologyError.self) { try Topology.parse(yaml: yaml) }
        #expect(error?.path == "sites[1].wan")
        #expect(error?.line == 8)
        #expect(error?.description.hasPrefix("sites[1].wan: unknown unit \"Mbps\"") == true)
        #expect(error?.description.hasSuffix("(line 8)") == true)
    }

    /// Errors found after reading (duplicates) still carry the line and the key as the file spelled it.
    @Test func validationErrorsCarryLines() {
        let yaml = """
            origin: { uplink: 100Mbit, seed: dup }
            sites:
              - { name: a, wan: 50Mbit, host_link: 1Gbit }
            hosts:
              - { name: a1, site: a }
              - { name: dup, site: a }
            """
        let error = #expect(throws: TopologyError.self) { try Topology.parse(yaml: yaml) }
        #expect(error?.path == "hosts[1].name")
        #expect(error?.line == 6)
        let seedError = #expect(throws: TopologyError.self) {
            try Topology.parse(yaml: "origin: {uplink: 1Mbit, seed: s}\nsites: [{name: a, wan: 1Mbit}]\nhosts:\n  - {name: s, site: a, link: 1Mbit}")
        }
        #expect(seedError?.description == "hosts[0].name: duplicate host name \"s\" (also origin.seed) (line 4)")
        let syntax = #expect(throws: TopologyError.self) { try Topology.parse(yaml: "origin:\n  uplink: [1Mbit\nsites: []") }
        #expect(syntax?.line != nil)
        #expect(syntax?.path == nil)
    }

    /// Hand-built topologies go through the same rules.
    @Test func validateHandBuilt() throws {
        let site = Site(name: "a", wanUp: .mbit(1), wanDown: .mbit(1))
        let host = Host(name: "h", site: "a", up: .mbit(1), down: .mbit(1))
        try Topology(origin: Origin(uplink: .mbit(1), seeds: ["s"]), sites: [site], hosts: [host]).validate()
        func path(_ topology: Topology) -> String? {
            do { try topology.validate(); return nil } catch let error as TopologyError { return error.path } catch { return "?" }
        }
        var zero = host
        zero.down = Rate(bitsPerSecond: 0)
        #expect(path(Topology(origin: Origin(uplink: .mbit(1), seeds: ["s"]), sites: [site], hosts: [zero])) == "hosts[0].down")
        #expect(path(Topology(origin: Origin(uplink: Rate(bitsPerSecond: 0), seeds: ["s"]), sites: [site], hosts: [host])) == "origin.uplink")
        var zeroWAN = site
        zeroWAN.wanDown = Rate(bitsPerSecond: 0)
        #expect(path(Topology(origin: Origin(uplink: .mbit(1), seeds: ["s"]), sites: [zeroWAN], hosts: [host])) == "sites[0].wan_down")
        #expect(path(Topology(origin: Origin(name: "", uplink: .mbit(1), seeds: ["s"]), sites: [site], hosts: [host])) == "origin.name")
    }
}
