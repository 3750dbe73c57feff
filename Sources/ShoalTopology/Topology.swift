/// A datacenter topology: one origin with its seed host(s), the sites behind their WAN links, and
/// the hosts in those sites with their own links.
///
/// Build one with `Topology.parse(yaml:)` (the format is documented in `topology/README.md`) or
/// with `init(origin:sites:hosts:)` followed by `validate()`. Every rate is in bits per second.
/// The model is pure data: it does no I/O.
public struct Topology: Hashable, Sendable {
    /// The origin: where bundles are published, behind its uplink.
    public var origin: Origin
    /// The sites, in file order.
    public var sites: [Site]
    /// Every receiving host, in file order.
    public var hosts: [Host]

    /// A topology from its parts. Call `validate()` before trusting hand-built values;
    /// `parse(yaml:)` always returns a validated topology.
    public init(origin: Origin, sites: [Site], hosts: [Host]) {
        self.origin = origin
        self.sites = sites
        self.hosts = hosts
    }

    /// The site called `name`, if any.
    public func site(named name: String) -> Site? { sites.first { $0.name == name } }

    /// The host called `name`, if any.
    public func host(named name: String) -> Host? { hosts.first { $0.name == name } }

    /// The hosts of the site called `site`, in file order.
    public func hosts(inSite site: String) -> [Host] { hosts.filter { $0.site == site } }
}

/// The origin of every distribution: one or more seed hosts sharing one uplink.
public struct Origin: Hashable, Sendable {
    /// The origin's name (`origin` unless the file says otherwise); must differ from every site name.
    public var name: String
    /// The origin's uplink: everything the seeds send leaves through it (`u₀` in the bound).
    public var uplink: Rate
    /// The seed hosts' names (at least one); they are not receiving hosts.
    public var seeds: [String]
    /// The operator's cap on what Shoal sends through the uplink (all seeds together), if any.
    public var uplinkLimit: Rate?

    /// An origin called `name` with the given uplink and seed hosts.
    public init(name: String = "origin", uplink: Rate, seeds: [String], uplinkLimit: Rate? = nil) {
        self.name = name
        self.uplink = uplink
        self.seeds = seeds
        self.uplinkLimit = uplinkLimit
    }
}

/// A site: a group of hosts that reach every other site and the origin through one WAN link.
public struct Site: Hashable, Sendable {
    /// The site's name, unique in the topology.
    public var name: String
    /// The WAN link's rate out of the site (toward the origin and other sites).
    public var wanUp: Rate
    /// The WAN link's rate into the site (`w_s` in the bound).
    public var wanDown: Rate
    /// The site's racks, if declared; when the list is not empty, a host's rack must be in it.
    public var racks: [String]
    /// The default upload rate of this site's hosts (a host may override it).
    public var hostUp: Rate?
    /// The default download rate of this site's hosts (a host may override it).
    public var hostDown: Rate?
    /// The operator's cap on Shoal's traffic out of the site over its WAN link (all hosts together).
    public var wanLimitUp: Rate?
    /// The operator's cap on Shoal's traffic into the site over its WAN link (all hosts together).
    public var wanLimitDown: Rate?
    /// The default cap on each host's Shoal traffic, each direction (a host may override it).
    public var hostLimit: Rate?

    /// A site with the given WAN link rates and optional racks, host-link defaults and limits.
    public init(name: String, wanUp: Rate, wanDown: Rate, racks: [String] = [], hostUp: Rate? = nil, hostDown: Rate? = nil,
                wanLimitUp: Rate? = nil, wanLimitDown: Rate? = nil, hostLimit: Rate? = nil) {
        self.name = name
        self.wanUp = wanUp
        self.wanDown = wanDown
        self.racks = racks
        self.hostUp = hostUp
        self.hostDown = hostDown
        self.wanLimitUp = wanLimitUp
        self.wanLimitDown = wanLimitDown
        self.hostLimit = hostLimit
    }
}

/// A receiving host: it downloads the bundle and uploads to other hosts.
public struct Host: Hashable, Sendable {
    /// The host's name, unique among hosts and seeds.
    public var name: String
    /// The name of the host's site.
    public var site: String
    /// The host's rack, if any.
    public var rack: String?
    /// Free-form labels (`role: db`), matched by `label=key=value` selectors.
    public var labels: [String: String]
    /// The host link's upload rate (`u_i` in the bound).
    public var up: Rate
    /// The host link's download rate (`d_i` in the bound).
    public var down: Rate
    /// The operator's cap on this host's Shoal traffic, each direction (overrides the site's `hostLimit`).
    public var limit: Rate?

    /// A host in `site` with the given link rates.
    public init(name: String, site: String, rack: String? = nil, labels: [String: String] = [:], up: Rate, down: Rate, limit: Rate? = nil) {
        self.name = name
        self.site = site
        self.rack = rack
        self.labels = labels
        self.up = up
        self.down = down
        self.limit = limit
    }
}

// MARK: - Validation

extension Topology {
    /// Checks the rules every topology must obey, naming the offending place as a YAML path:
    /// names well formed and unique (site names and the origin's name share one namespace, host
    /// names and seed names another), at least one seed, site and host, every host's site
    /// declared, every host's rack declared when its site lists racks, every rate above zero.
    public func validate() throws {
        try Topology.checkName(origin.name, at: "origin.name")
        guard origin.uplink.bitsPerSecond > 0 else { throw TopologyError(path: "origin.uplink", message: "rate must be greater than 0") }
        if let limit = origin.uplinkLimit, limit.bitsPerSecond == 0 {
            throw TopologyError(path: "origin.uplink_limit", message: "rate must be greater than 0")
        }
        guard !origin.seeds.isEmpty else { throw TopologyError(path: "origin.seeds", message: "the origin needs at least one seed host") }
        var machineNames: [String: String] = [:]  // host or seed name -> where it was declared
        for (i, seed) in origin.seeds.enumerated() {
            let path = "origin.seeds[\(i)]"
            try Topology.checkName(seed, at: path)
            if let first = machineNames[seed] { throw TopologyError(path: path, message: "duplicate host name \"\(seed)\" (also \(first))") }
            machineNames[seed] = path
        }

        guard !sites.isEmpty else { throw TopologyError(path: "sites", message: "at least one site is required") }
        var siteNames: [String: String] = [origin.name: "origin.name"]
        for (i, site) in sites.enumerated() {
            let path = "sites[\(i)]"
            try Topology.checkName(site.name, at: path + ".name")
            if let first = siteNames[site.name] {
                throw TopologyError(path: path + ".name", message: "duplicate site name \"\(site.name)\" (also \(first))")
            }
            siteNames[site.name] = path + ".name"
            for (key, rate) in [("wan_up", site.wanUp), ("wan_down", site.wanDown), ("host_up", site.hostUp), ("host_down", site.hostDown),
                                ("wan_limit_up", site.wanLimitUp), ("wan_limit_down", site.wanLimitDown), ("host_limit", site.hostLimit)] {
                if let rate, rate.bitsPerSecond == 0 { throw TopologyError(path: "\(path).\(key)", message: "rate must be greater than 0") }
            }
            var racks: Set<String> = []
            for (r, rack) in site.racks.enumerated() {
                try Topology.checkName(rack, at: "\(path).racks[\(r)]")
                guard racks.insert(rack).inserted else {
                    throw TopologyError(path: "\(path).racks[\(r)]", message: "duplicate rack \"\(rack)\" in site \"\(site.name)\"")
                }
            }
        }

        guard !hosts.isEmpty else { throw TopologyError(path: "hosts", message: "at least one host is required") }
        for (i, host) in hosts.enumerated() {
            let path = "hosts[\(i)]"
            try Topology.checkName(host.name, at: path + ".name")
            if let first = machineNames[host.name] {
                throw TopologyError(path: path + ".name", message: "duplicate host name \"\(host.name)\" (also \(first))")
            }
            machineNames[host.name] = path + ".name"
            guard let site = site(named: host.site) else {
                throw TopologyError(path: path + ".site", message: "unknown site \"\(host.site)\"; sites are \(sites.map(\.name).joined(separator: ", "))")
            }
            if let rack = host.rack {
                try Topology.checkName(rack, at: path + ".rack")
                if !site.racks.isEmpty, !site.racks.contains(rack) {
                    throw TopologyError(path: path + ".rack", message: "rack \"\(rack)\" is not one of site \"\(site.name)\"'s racks (\(site.racks.joined(separator: ", ")))")
                }
            }
            for key in host.labels.keys.sorted() {
                try Topology.checkName(key, at: "\(path).labels", what: "label key")
                if let value = host.labels[key], value.isEmpty || value.contains(",") {
                    throw TopologyError(path: "\(path).labels.\(key)", message: "label values must be non-empty and contain no comma")
                }
            }
            if host.up.bitsPerSecond == 0 { throw TopologyError(path: path + ".up", message: "rate must be greater than 0") }
            if host.down.bitsPerSecond == 0 { throw TopologyError(path: path + ".down", message: "rate must be greater than 0") }
            if let limit = host.limit, limit.bitsPerSecond == 0 { throw TopologyError(path: path + ".limit", message: "rate must be greater than 0") }
        }
    }

    /// The longest name accepted (a DNS label's limit).
    public static let maximumNameLength = 63

    /// Names (of the origin, seeds, sites, racks, hosts and label keys) are 1 to 63 characters of
    /// ASCII letters, digits, `.`, `_` and `-`, starting with a letter or digit, so they are safe
    /// in certificates, file names and selectors.
    static func checkName(_ name: String, at path: String, what: String = "name") throws {
        guard !name.isEmpty else { throw TopologyError(path: path, message: "\(what) must not be empty") }
        guard name.utf8.count <= maximumNameLength else {
            throw TopologyError(path: path, message: "\(what) \"\(name)\" is longer than \(maximumNameLength) characters")
        }
        let ok = name.unicodeScalars.enumerated().allSatisfy { index, c in
            c.isASCIIAlphanumeric || (index > 0 && (c == "." || c == "_" || c == "-"))
        }
        guard ok else {
            throw TopologyError(path: path, message: "\(what) \"\(name)\" may only contain letters, digits, '.', '_' and '-', and must start with a letter or digit")
        }
    }
}

extension Unicode.Scalar {
    var isASCIIAlphanumeric: Bool { isASCIIDigit || ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}
