import ShoalTopology
import Testing

struct SelectorTests {
    static let topology: Topology = try! Topology.parse(yaml: """
        origin: { uplink: 1Gbit, seed: seed }
        sites:
          - { name: a, wan: 1Gbit, host_link: 1Gbit, racks: [r1, r2, r9] }
          - { name: b, wan: 1Gbit, host_link: 1Gbit }
        hosts:
          - { name: host-a1, site: a, rack: r1, labels: { role: db, tier: 1 } }
          - { name: host-a2, site: a, rack: r2, labels: { role: web } }
          - { name: host-a3, site: a, rack: r1 }
          - { name: host-b1, site: b, rack: r1, labels: { role: db } }
          - { name: gw-b2, site: b, labels: { role: web, tier: 2 } }
        """)

    func names(_ selector: String) throws -> [String] { try Self.topology.hosts(matching: selector).map(\.name) }

    @Test(arguments: [
        ("all", ["host-a1", "host-a2", "host-a3", "host-b1", "gw-b2"]),
        ("site=a", ["host-a1", "host-a2", "host-a3"]),
        ("site=b", ["host-b1", "gw-b2"]),
        ("rack=r1", ["host-a1", "host-a3", "host-b1"]),
        ("rack=r2", ["host-a2"]),
        ("site=a,rack=r1", ["host-a1", "host-a3"]),
        (" site = a , rack = r1 ", ["host-a1", "host-a3"]),
        ("name=host-*", ["host-a1", "host-a2", "host-a3", "host-b1"]),
        ("name=*", ["host-a1", "host-a2", "host-a3", "host-b1", "gw-b2"]),
        ("name=*1", ["host-a1", "host-b1"]),
        ("name=*-a*", ["host-a1", "host-a2", "host-a3"]),
        ("name=h*a*3", ["host-a3"]),
        ("name=host-?1", ["host-a1", "host-b1"]),
        ("name=gw-b2", ["gw-b2"]),
        ("name=**b*", ["host-b1", "gw-b2"]),
        ("label=role=db", ["host-a1", "host-b1"]),
        ("label=role=web,site=b", ["gw-b2"]),
        ("label=tier", ["host-a1", "gw-b2"]),
        ("label=tier=1", ["host-a1"]),
        ("all,site=b", ["host-b1", "gw-b2"]),
        ("site=a,name=*2", ["host-a2"]),
        ("site=b,rack=r1,label=role=db,name=host-*", ["host-b1"]),
    ])
    func selects(selector: String, expected: [String]) throws {
        #expect(try names(selector) == expected)
    }

    @Test(arguments: [
        ("", "empty host selector"),
        ("  ", "empty host selector"),
        ("site=a,", "empty condition between commas"),
        (",site=a", "empty condition between commas"),
        ("site", "condition \"site\" has no \"=\""),
        ("everything", "has no \"=\""),
        ("site=", "condition \"site=\" has no value"),
        ("zone=a", "unknown key \"zone\""),
        ("Site=a", "unknown key \"Site\""),
        ("label==db", "has no label key"),
        ("label=role=", "has no label value"),
        ("site=zz", "unknown site \"zz\"; sites are a, b"),
        ("rack=r7", "unknown rack \"r7\""),
        ("name=host-a9", "unknown host \"host-a9\""),
        ("name=nothing*", "matches no host"),
        ("site=b,rack=r2", "matches no host"),
        ("rack=r9", "matches no host"),
        ("label=role=cache", "matches no host"),
        ("label=color", "matches no host"),
    ])
    func refuses(selector: String, message: String) {
        do {
            let chosen = try names(selector)
            Issue.record("\"\(selector)\" chose \(chosen)")
        } catch let error as TopologyError {
            #expect(error.message.contains(message), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func parsesToConditionsAndPrintsBack() throws {
        let selector = try HostSelector.parse(" site=a , rack=r1,name=h*,label=k=v=w,label=x,all ")
        #expect(selector.conditions == [.site("a"), .rack("r1"), .name("h*"), .label(key: "k", value: "v=w"), .label(key: "x", value: nil), .all])
        #expect(selector.description == "site=a,rack=r1,name=h*,label=k=v=w,label=x,all")
        #expect(try HostSelector.parse(selector.description) == selector)
    }

    @Test func matchesSingleHosts() {
        let host = Host(name: "web-7", site: "s", rack: "r", labels: ["a": "b"], up: .mbit(1), down: .mbit(1))
        #expect(HostSelector(conditions: []).matches(host))
        #expect(HostSelector(conditions: [.name("web-?")]).matches(host))
        #expect(!HostSelector(conditions: [.name("web-??")]).matches(host))
        #expect(!HostSelector(conditions: [.name("web")]).matches(host))
        #expect(HostSelector(conditions: [.name("*7")]).matches(host))
        #expect(!HostSelector(conditions: [.name("*8")]).matches(host))
        #expect(HostSelector(conditions: [.name("w*b*-*")]).matches(host))
        #expect(!HostSelector(conditions: [.label(key: "a", value: "c")]).matches(host))
        #expect(!HostSelector(conditions: [.rack("r"), .site("t")]).matches(host))
        var noRack = host
        noRack.rack = nil
        #expect(!HostSelector(conditions: [.rack("r")]).matches(noRack))
    }
}
