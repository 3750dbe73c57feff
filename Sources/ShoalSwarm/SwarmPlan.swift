/// Where the one WAN copy of a chunk comes from, for one destination site.
public enum WANSource: Hashable, Sendable, CustomStringConvertible {
    /// From the origin seed (the site is the chunk's home site).
    case origin
    /// Relayed from this site (the chunk's home site), from any of its peers that holds the chunk.
    case site(String)

    public var description: String {
        switch self {
        case .origin: return "origin"
        case .site(let site): return "site \(site)"
        }
    }
}

/// The hard WAN rule of a swarm, as a pure, deterministic function that every peer computes alike.
///
/// For every chunk `c` and every destination site `s` the plan names exactly one **ingress host**
/// (the only host of `s` allowed to fetch `c` from outside `s`) and one **WAN source** (where that
/// host fetches it from). Every other host of `s` gets `c` inside the site. So each chunk crosses
/// each site's WAN link once, and the origin sends each chunk about once:
///
/// - **Home site.** `homeSite(c)` brings `c` in from the origin; every other site relays `c` from
///   the home site. With `k` roster sites sorted by name, the home of `c` is `sites[c % k]`.
/// - **Ingress host.** Within site `s` (index `i` among the roster sites, hosts sorted by name,
///   `n` of them) the ingress host of `c` is `hosts[(c / k + i) % n]`. The home chunks of a site
///   (`c ≡ i mod k`, so `c / k` runs 0, 1, 2, …) go round-robin over its hosts, and so do all
///   chunks, so no single uplink carries the site's WAN traffic.
///
/// **Roster and liveness.** The roster (every site and host that takes part in this distribution)
/// is fixed for the life of a distribution; hosts the coordinator considers dead are passed in
/// `down`. A dead host's chunks move to the live hosts of its site by rendezvous hashing, and the
/// home chunks of a site whose hosts are all down move to the live sites the same way. Everything
/// else stays where it was. That is the **stability property**: marking a host down changes only
/// the assignments that named that host, so no live host that is fetching a chunk over the WAN
/// ever sees that chunk handed to another host of its site (which would bring it in twice).
/// A plan built from the live hosts alone could not have this property together with the exact
/// round-robin spread: a pure function of the live set cannot tell "four hosts, one died" from
/// "three hosts".
///
/// **Epoch.** Every peer must use the same plan. The coordinator hands out `(roster, down, epoch)`;
/// a peer keeps the plan with the highest epoch (``PiecePicker/updatePlan(_:)``).
///
/// ```swift
/// let plan = SwarmPlan(chunkCount: 64, origin: "origin",
///                      sites: ["fra": ["f1", "f2"], "ams": ["a1", "a2", "a3"]])
/// plan.homeSite(0)                        // "ams" (sites sorted: ams, fra)
/// plan.ingressHost(site: "fra", chunk: 0) // "f2": (0 / 2 + 1) % 2 = 1
/// plan.wanSource(site: "fra", chunk: 0)   // .site("ams")
/// let later = plan.removing(hosts: ["a2"]) // epoch 1; only a2's chunks move
/// ```
public struct SwarmPlan: Hashable, Sendable {
    /// Increases with every change; peers keep the newest plan they were given.
    public let epoch: UInt64
    /// Number of chunks in the bundle.
    public let chunkCount: Int
    /// The origin's name (the seed's site). It is never a destination site.
    public let origin: String
    /// The roster's destination sites, sorted by name (sites without hosts are left out).
    public let sites: [String]
    /// The roster's hosts of each destination site, sorted by name.
    public let hosts: [String: [String]]
    /// Hosts the coordinator considers dead.
    public let down: Set<String>
    /// The sites with at least one live host, sorted by name.
    public let liveSites: [String]

    private let liveHostsBySite: [String: [String]]
    private let siteIndex: [String: Int]

    /// A plan for one distribution.
    ///
    /// - Parameters:
    ///   - chunkCount: Number of chunks in the bundle, ≥ 0.
    ///   - origin: The origin's name; an entry for it in `sites` is ignored.
    ///   - sites: The roster: each destination site and its hosts, in any order (duplicates are
    ///     ignored). Host names must be unique across sites.
    ///   - down: Hosts of the roster that are dead; names not in the roster are ignored.
    ///   - epoch: The plan's version number.
    public init(chunkCount: Int, origin: String, sites: [String: [String]], down: Set<String> = [], epoch: UInt64 = 0) {
        precondition(chunkCount >= 0, "negative chunk count")
        var roster: [String: [String]] = [:]
        for (site, names) in sites where site != origin && !names.isEmpty {
            roster[site] = Set(names).sorted()
        }
        let sortedSites = roster.keys.sorted()
        let rosterHosts = Set(roster.values.joined())
        self.epoch = epoch
        self.chunkCount = chunkCount
        self.origin = origin
        self.sites = sortedSites
        self.hosts = roster
        self.down = down.intersection(rosterHosts)
        let live = roster.mapValues { $0.filter { !down.contains($0) } }
        self.liveHostsBySite = live
        self.liveSites = sortedSites.filter { !(live[$0] ?? []).isEmpty }
        self.siteIndex = Dictionary(uniqueKeysWithValues: sortedSites.enumerated().map { ($1, $0) })
    }

    /// The same roster with `hosts` also marked down, and the next epoch.
    public func removing(hosts dead: some Sequence<String>) -> SwarmPlan {
        SwarmPlan(chunkCount: chunkCount, origin: origin, sites: hosts, down: down.union(dead), epoch: epoch + 1)
    }

    /// The live hosts of `site`, sorted by name (empty for an unknown or dead site).
    public func liveHosts(of site: String) -> [String] {
        liveHostsBySite[site] ?? []
    }

    /// The site that brings `chunk` in from the origin: `sites[chunk % sites.count]` if that site
    /// is live, else the rendezvous choice among the live sites; `nil` when no site is live.
    public func homeSite(_ chunk: Int) -> String? {
        precondition(chunk >= 0 && chunk < chunkCount, "chunk \(chunk) out of range 0..<\(chunkCount)")
        guard !sites.isEmpty else { return nil }
        let nominal = sites[chunk % sites.count]
        if !(liveHostsBySite[nominal] ?? []).isEmpty { return nominal }
        return StableHash.rendezvous(liveSites, chunk: chunk, salt: Self.homeSalt)
    }

    /// The one host of `site` allowed to fetch `chunk` from outside the site:
    /// `hosts[(chunk / sites.count + siteIndex) % hosts.count]` if that host is live, else the
    /// rendezvous choice among the site's live hosts; `nil` for an unknown or dead site.
    public func ingressHost(site: String, chunk: Int) -> String? {
        precondition(chunk >= 0 && chunk < chunkCount, "chunk \(chunk) out of range 0..<\(chunkCount)")
        guard let roster = hosts[site], let index = siteIndex[site] else { return nil }
        let nominal = roster[(chunk / sites.count + index) % roster.count]
        if !down.contains(nominal) { return nominal }
        return StableHash.rendezvous(liveHosts(of: site), chunk: chunk, salt: StableHash.fnv1a(site))
    }

    /// Where the ingress host of `site` fetches `chunk`: the origin if `site` is the chunk's home
    /// site, else the home site. `nil` when no site is live.
    public func wanSource(site: String, chunk: Int) -> WANSource? {
        guard let home = homeSite(chunk) else { return nil }
        return home == site ? .origin : .site(home)
    }

    private static let homeSalt = StableHash.fnv1a("shoal.home-site")
}
