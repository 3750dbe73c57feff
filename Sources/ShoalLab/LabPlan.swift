import ShoalTopology

/// The layout of a `NetworkLab`, computed from a topology without touching the system: every
/// namespace, every veth pair with its interface names, addresses and shaped rates, and every
/// route. `NetworkLab.build` carries it out; tests and `docs/LAB.md` describe it.
///
/// Addressing, with `o` the second octet (`NetworkLab.Options.octet`, default 77), site `i`
/// counted from 1 in file order and host `k` counted from 0 within its site:
///
/// | what                          | address                          |
/// |-------------------------------|----------------------------------|
/// | origin ↔ core link (/30)      | core `10.o.0.1`, origin `10.o.0.2` |
/// | site `i` WAN link (/30)       | core `10.o.0.(4i+1)`, site router `10.o.0.(4i+2)` |
/// | site `i` LAN (/24, a bridge)  | router `10.o.i.1`, host `k` `10.o.i.(k+2)` |
///
/// so at most 63 sites and 253 hosts per site. Interface names are short and local to their
/// namespace (veth pairs are created directly inside their namespaces, never in the host's):
/// `eth0` in hosts and the origin, `wan` and `br0` and `p1`, `p2`, … (bridge ports, one per host)
/// in site routers, `orig` and `s1`, `s2`, … (one per site) in the core.
public struct LabPlan: Sendable, Hashable {
    /// The most sites the address plan holds (WAN /30s live in `10.o.0.0/24`, after the origin's).
    public static let maximumSites = 63
    /// The most hosts per site (`.2` … `.254` of the site's /24).
    public static let maximumHostsPerSite = 253
    /// Every namespace name starts with this.
    public static let namespacePrefix = "shoal-lab-"

    /// What a namespace is for.
    public enum Role: Sendable, Hashable {
        /// The backbone router joining the origin and every site's WAN link.
        case core
        /// The origin: its seeds and the coordinator.
        case origin
        /// A site's router, with the bridge of its hosts.
        case router(site: String)
        /// A receiving host.
        case host(String)
    }

    /// One network namespace of the lab.
    public struct Node: Sendable, Hashable {
        /// The namespace's name (`shoal-lab-<runid>-<suffix>`).
        public var namespace: String
        /// What it is.
        public var role: Role
        /// Whether it forwards IPv4 (the core and the site routers).
        public var forwards: Bool
    }

    /// One end of a veth pair.
    public struct End: Sendable, Hashable {
        /// The namespace the interface is in.
        public var namespace: String
        /// The interface's name (at most 15 characters; unique within its namespace).
        public var interface: String
        /// Its address with prefix length (`10.77.0.2/30`), or `nil` for a bridge port.
        public var address: String? = nil
        /// The bridge the interface is a port of, if any (`br0`).
        public var bridge: String? = nil
        /// The HTB rate of traffic leaving through this end.
        public var egress: Rate
    }

    /// What a link connects.
    public enum LinkKind: Sendable, Hashable {
        /// The origin's uplink: `a` is the origin end, `b` the core end.
        case origin
        /// A site's WAN link: `a` is the site router's end (`wan`), `b` the core's.
        case wan(site: String)
        /// A host's link: `a` is the host's end (`eth0`), `b` the bridge port in its site router.
        case host(String)
    }

    /// A veth pair, shaped at both ends.
    public struct Link: Sendable, Hashable {
        public var kind: LinkKind
        public var a: End
        public var b: End
    }

    /// A route to add: `ip -n NAMESPACE route add DESTINATION via GATEWAY`.
    public struct Route: Sendable, Hashable {
        public var namespace: String
        public var destination: String
        public var gateway: String
    }

    /// A bridge in a site router: `ip -n NAMESPACE link add NAME type bridge`, with an address.
    public struct Bridge: Sendable, Hashable {
        public var namespace: String
        public var name: String
        public var address: String
    }

    /// The run ID in every namespace name.
    public var runID: String
    /// The second octet of every address (`10.o.x.y`).
    public var octet: UInt8
    /// Every namespace, in creation order: core, origin, the site routers, the hosts.
    public var nodes: [Node]
    /// The bridges, one per site.
    public var bridges: [Bridge]
    /// The links: the origin's, then each site's WAN link, then each host's link.
    public var links: [Link]
    /// The routes.
    public var routes: [Route]
    /// Host name → address (no prefix length).
    public var hostAddresses: [String: String]
    /// Host name → namespace.
    public var hostNamespaces: [String: String]
    /// Site name → router namespace.
    public var routerNamespaces: [String: String]
    /// Site name → the site router's address on its LAN (the hosts' gateway).
    public var routerAddresses: [String: String]
    /// Site name → the core's interface toward that site.
    public var coreInterfaces: [String: String]
    /// The origin's address.
    public var originAddress: String
    /// The core namespace.
    public var coreNamespace: String
    /// The origin namespace.
    public var originNamespace: String

    /// The IPv6 twin of a lab IPv4 address or prefix, for dual-stack labs: `10.o.x.y/len` becomes
    /// `fd00:o:x::y/len6` (o, x, y in hex; a /30 becomes a /126, a /24 a /64, a /16 a /32), so every
    /// interface, route and gateway has the same place in both plans.
    public static func ipv6(_ v4: String) -> String {
        let parts = v4.split(separator: "/", maxSplits: 1)
        let octets = parts[0].split(separator: ".").compactMap { Int($0) }
        precondition(octets.count == 4 && octets[0] == 10, "not a lab address: \(v4)")
        let hex = { (n: Int) in String(n, radix: 16) }
        let address = "fd00:\(hex(octets[1])):\(hex(octets[2]))::\(hex(octets[3]))"
        guard parts.count == 2 else { return address }
        return address + "/" + (["30": "126", "24": "64", "16": "32"][String(parts[1])] ?? "128")
    }

    /// The namespace name `shoal-lab-<runID>-<suffix>`.
    public static func namespace(runID: String, suffix: String) -> String { namespacePrefix + runID + "-" + suffix }

    /// The plan for `topology` under `runID`.
    /// - Throws: `LabError.topologyTooLarge` beyond 63 sites or 253 hosts in a site.
    public init(topology: Topology, runID: String, octet: UInt8 = 77) throws {
        guard topology.sites.count <= LabPlan.maximumSites else {
            throw LabError.topologyTooLarge("\(topology.sites.count) sites; the lab holds at most \(LabPlan.maximumSites)")
        }
        self.runID = runID
        self.octet = octet
        let net = "10.\(octet)."
        func ns(_ suffix: String) -> String { LabPlan.namespace(runID: runID, suffix: suffix) }
        coreNamespace = ns("core")
        originNamespace = ns("origin")
        originAddress = net + "0.2"
        nodes = [Node(namespace: coreNamespace, role: .core, forwards: true),
                 Node(namespace: originNamespace, role: .origin, forwards: false)]
        bridges = []
        links = [Link(kind: .origin,
                      a: End(namespace: originNamespace, interface: "eth0", address: net + "0.2/30", egress: topology.origin.uplink),
                      // The topology has no origin downlink: the uplink's rate serves both ways.
                      b: End(namespace: coreNamespace, interface: "orig", address: net + "0.1/30", egress: topology.origin.uplink))]
        routes = [Route(namespace: originNamespace, destination: net + "0.0/16", gateway: net + "0.1")]
        hostAddresses = [:]
        hostNamespaces = [:]
        routerNamespaces = [:]
        routerAddresses = [:]
        coreInterfaces = [:]
        var hostLinks: [Link] = []
        var hostNodes: [Node] = []
        for (index, site) in topology.sites.enumerated() {
            let i = index + 1
            let router = ns("site-" + site.name)
            let coreSide = net + "0.\(4 * i + 1)", routerSide = net + "0.\(4 * i + 2)"
            let gateway = net + "\(i).1"
            routerNamespaces[site.name] = router
            routerAddresses[site.name] = gateway
            coreInterfaces[site.name] = "s\(i)"
            nodes.append(Node(namespace: router, role: .router(site: site.name), forwards: true))
            bridges.append(Bridge(namespace: router, name: "br0", address: gateway + "/24"))
            links.append(Link(kind: .wan(site: site.name),
                              a: End(namespace: router, interface: "wan", address: routerSide + "/30", egress: site.wanUp),
                              b: End(namespace: coreNamespace, interface: "s\(i)", address: coreSide + "/30", egress: site.wanDown)))
            routes.append(Route(namespace: coreNamespace, destination: net + "\(i).0/24", gateway: routerSide))
            routes.append(Route(namespace: router, destination: net + "0.0/16", gateway: coreSide))
            let hosts = topology.hosts(inSite: site.name)
            guard hosts.count <= LabPlan.maximumHostsPerSite else {
                throw LabError.topologyTooLarge("site \"\(site.name)\" has \(hosts.count) hosts; the lab holds at most \(LabPlan.maximumHostsPerSite) per site")
            }
            for (k, host) in hosts.enumerated() {
                let namespace = ns("host-" + host.name)
                let address = net + "\(i).\(k + 2)"
                hostAddresses[host.name] = address
                hostNamespaces[host.name] = namespace
                hostNodes.append(Node(namespace: namespace, role: .host(host.name), forwards: false))
                hostLinks.append(Link(kind: .host(host.name),
                                      a: End(namespace: namespace, interface: "eth0", address: address + "/24", egress: host.up),
                                      b: End(namespace: router, interface: "p\(k + 1)", bridge: "br0", egress: host.down)))
                routes.append(Route(namespace: namespace, destination: net + "0.0/16", gateway: gateway))
            }
        }
        nodes += hostNodes
        links += hostLinks
    }

    /// Every namespace name, in creation order.
    public var namespaces: [String] { nodes.map(\.namespace) }
}
