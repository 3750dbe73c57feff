/// The physical lower bound on the time to distribute a bundle to every receiving host.
///
/// For a bundle of `F` bytes (`8F` bits) sent from the origin to `N` receiving hosts, with the
/// origin uplink `u₀`, each site `s` holding `n_s ≥ 1` receivers behind a WAN link of `w_s↓` in and
/// `w_s↑` out, and each host `i` with link rates `u_i` up and `d_i` down (all in bits per second):
///
///     T ≥ max( 8F / u₀,                                  origin uplink
///              max_s 8F / w_s↓,                          site WAN (downlink)
///              8F / min_i d_i,                           slowest host
///              N·8F / (u₀ + Σ_i u_i),                    total upload
///              max_s n_s·8F / (w_s↓ + Σ_{i∈s} u_i),      site capacity
///              S·8F / (u₀ + Σ_s min(w_s↑, Σ_{i∈s} u_i)) ) WAN fan-in (S = sites with receivers)
///
/// Each term is a necessary condition, so their maximum is one too:
/// - origin uplink: every byte starts at the origin, so at least one copy leaves through `u₀`;
/// - site WAN: every site with a receiver needs a whole copy, and it enters over its WAN link;
/// - slowest host: every host downloads a whole copy through its own link;
/// - total upload: `N` copies are received in total, and every received byte is uploaded by the
///   origin or by a host (Kumar & Ross 2006);
/// - site capacity: the `n_s` hosts of site `s` receive `n_s` copies, and each of those bytes
///   comes either over the site's WAN link or from a host of the site;
/// - WAN fan-in: `S` copies cross site WAN links inward in total, and each of those bytes was
///   sent by the origin or came out of another site, through its WAN uplink and from its hosts.
///
/// The last term is not in the brief's formula; it is as sound as the others and only binds
/// when sites must relay to each other because the origin uplink is small (it never binds on
/// `lab-3x4`). Sites without receivers and hosts that are not receivers take no part (they are
/// assumed not to relay). Hosts are assumed to start with nothing. The values are plain
/// `Double` seconds computed with one division per term (numerator and denominator are exact
/// for sizes and rate sums below 2⁵³).
public struct LowerBound: Hashable, Sendable, CustomStringConvertible {
    /// What one term of the bound constrains.
    public enum Constraint: Hashable, Sendable, CustomStringConvertible {
        /// One copy through the origin's uplink: `8F / u₀`.
        case originUplink
        /// One copy into the named site over its WAN downlink: `8F / w_s↓`.
        case siteWAN(String)
        /// One copy through the named host's downlink, the slowest of all: `8F / min_i d_i`.
        case slowestHost(String)
        /// `N` copies from all upload capacity: `N·8F / (u₀ + Σ u_i)`.
        case totalUpload
        /// The named site's `n_s` copies from its WAN downlink and its own hosts' uploads:
        /// `n_s·8F / (w_s↓ + Σ_{i∈s} u_i)`.
        case siteCapacity(String)
        /// One copy into every site, from the origin and sites' WAN uplinks:
        /// `S·8F / (u₀ + Σ_s min(w_s↑, Σ_{i∈s} u_i))`.
        case wanFanIn

        /// A short name for reports: `origin uplink`, `site WAN (a)`, `slowest host (a1)`, ...
        public var description: String {
            switch self {
            case .originUplink: return "origin uplink"
            case .siteWAN(let site): return "site WAN (\(site))"
            case .slowestHost(let host): return "slowest host (\(host))"
            case .totalUpload: return "total upload"
            case .siteCapacity(let site): return "site capacity (\(site))"
            case .wanFanIn: return "WAN fan-in"
            }
        }
    }

    /// One term of the bound and its value.
    public struct Term: Hashable, Sendable {
        /// What the term constrains.
        public var constraint: Constraint
        /// The least time that constraint allows, in seconds.
        public var seconds: Double
    }

    /// The bundle size the bound is for, in bytes.
    public var bundleBytes: UInt64
    /// The bound in seconds: the largest term.
    public var seconds: Double
    /// The binding term: the first of the largest terms in `terms` order.
    public var binding: Constraint
    /// Every term in a fixed order: origin uplink, site WAN per site, slowest host, total
    /// upload, site capacity per site, WAN fan-in (sites in file order, receiving sites only).
    public var terms: [Term]

    /// `12.345 s (site WAN (a))`.
    public var description: String { "\(seconds) s (\(binding))" }

    /// The value of one term, if the bound has it.
    public func seconds(for constraint: Constraint) -> Double? {
        terms.first { $0.constraint == constraint }?.seconds
    }
}

extension Topology {
    /// The lower bound on distributing `bundleBytes` bytes from the origin to the receiving hosts
    /// (see `LowerBound` for the formula and what each term means).
    ///
    /// - Parameter receivers: the names of the receiving hosts; `nil` (the default) means every
    ///   host. Names that are not hosts of this topology are ignored; the others take part in
    ///   file order. With no receiver at all the bound is zero (one `originUplink` term of 0 s).
    public func lowerBound(bundleBytes: UInt64, receivers: Set<String>? = nil) -> LowerBound {
        let receiving = receivers.map { names in hosts.filter { names.contains($0.name) } } ?? hosts
        guard !receiving.isEmpty else {
            return LowerBound(bundleBytes: bundleBytes, seconds: 0, binding: .originUplink, terms: [.init(constraint: .originUplink, seconds: 0)])
        }
        let bits = Double(bundleBytes) * 8
        let u0 = Double(origin.uplink.bitsPerSecond)
        var terms: [LowerBound.Term] = []
        func add(_ constraint: LowerBound.Constraint, _ numerator: Double, _ denominator: Double) {
            terms.append(.init(constraint: constraint, seconds: numerator == 0 ? 0 : numerator / denominator))
        }

        add(.originUplink, bits, u0)
        let receivingSites = sites.compactMap { site -> (site: Site, hosts: [Host])? in
            let members = receiving.filter { $0.site == site.name }
            return members.isEmpty ? nil : (site, members)
        }
        for (site, _) in receivingSites {
            add(.siteWAN(site.name), bits, Double(site.wanDown.bitsPerSecond))
        }
        let slowest = receiving.min { $0.down < $1.down }!
        add(.slowestHost(slowest.name), bits, Double(slowest.down.bitsPerSecond))
        add(.totalUpload, Double(receiving.count) * bits, receiving.reduce(u0) { $0 + Double($1.up.bitsPerSecond) })
        var fanInCapacity = u0
        for (site, members) in receivingSites {
            let upload = members.reduce(0.0) { $0 + Double($1.up.bitsPerSecond) }
            add(.siteCapacity(site.name), Double(members.count) * bits, Double(site.wanDown.bitsPerSecond) + upload)
            fanInCapacity += min(Double(site.wanUp.bitsPerSecond), upload)
        }
        add(.wanFanIn, Double(receivingSites.count) * bits, fanInCapacity)

        var binding = terms[0]
        for term in terms.dropFirst() where term.seconds > binding.seconds { binding = term }
        return LowerBound(bundleBytes: bundleBytes, seconds: binding.seconds, binding: binding.constraint, terms: terms)
    }
}
