/// The rates one machine must keep its Shoal traffic under, in bits per second (`nil`: no cap).
///
/// Operators set caps in the topology (`uplink_limit`, `wan_limit…`, `host_limit`, `limit`) so
/// production traffic is not starved; the coordinator hands each host its caps with its jobs and
/// the peer enforces them with token buckets. A site's WAN cap is shared: each host of the site
/// gets an equal share (the WAN plan spreads the site's WAN chunks evenly over its hosts, so equal
/// shares add up to the cap without idling it). The seeds share the origin's uplink cap likewise.
public struct HostLimits: Codable, Hashable, Sendable {
    /// Everything the machine sends.
    public var up: UInt64?
    /// Everything the machine receives.
    public var down: UInt64?
    /// What it sends to machines outside its site.
    public var wanUp: UInt64?
    /// What it receives from machines outside its site.
    public var wanDown: UInt64?

    public init(up: UInt64? = nil, down: UInt64? = nil, wanUp: UInt64? = nil, wanDown: UInt64? = nil) {
        self.up = up
        self.down = down
        self.wanUp = wanUp
        self.wanDown = wanDown
    }

    public var isUnlimited: Bool { up == nil && down == nil && wanUp == nil && wanDown == nil }

    /// The tighter of two caps.
    static func min(_ a: UInt64?, _ b: UInt64?) -> UInt64? {
        switch (a, b) {
        case let (a?, b?): return Swift.min(a, b)
        case let (a?, nil): return a
        case let (nil, b): return b
        }
    }
}

extension Topology {
    /// The caps of `machine` (a host or a seed); `nil` when the topology does not know it.
    ///
    /// - Parameter enforceLinkRates: also cap at the links' own rates. The loopback lab uses this to
    ///   make the application stand in for the shaping that network namespaces would do.
    public func limits(for machine: String, enforceLinkRates: Bool = false) -> HostLimits? {
        if origin.seeds.contains(machine) {
            let seeds = UInt64(origin.seeds.count)
            var up = origin.uplinkLimit.map { $0.bitsPerSecond / seeds }
            if enforceLinkRates { up = HostLimits.min(up, origin.uplink.bitsPerSecond / seeds) }
            return HostLimits(up: up)
        }
        guard let host = host(named: machine), let site = site(named: host.site) else { return nil }
        let count = UInt64(max(1, hosts(inSite: site.name).count))
        let cap = (host.limit ?? site.hostLimit)?.bitsPerSecond
        var limits = HostLimits(up: cap, down: cap, wanUp: site.wanLimitUp.map { $0.bitsPerSecond / count },
                                wanDown: site.wanLimitDown.map { $0.bitsPerSecond / count })
        if enforceLinkRates {
            limits.up = HostLimits.min(limits.up, host.up.bitsPerSecond)
            limits.down = HostLimits.min(limits.down, host.down.bitsPerSecond)
            limits.wanUp = HostLimits.min(limits.wanUp, site.wanUp.bitsPerSecond / count)
            limits.wanDown = HostLimits.min(limits.wanDown, site.wanDown.bitsPerSecond / count)
        }
        return limits
    }

    /// This topology with every link rate lowered to the operator's cap on it: the datacenter a
    /// capped distribution really runs on, and so the one its lower bound is computed for.
    public func limited() -> Topology {
        var t = self
        if let cap = origin.uplinkLimit { t.origin.uplink = Rate(bitsPerSecond: min(cap.bitsPerSecond, origin.uplink.bitsPerSecond)) }
        for i in t.sites.indices {
            let s = t.sites[i]
            if let cap = s.wanLimitUp { t.sites[i].wanUp = Rate(bitsPerSecond: min(cap.bitsPerSecond, s.wanUp.bitsPerSecond)) }
            if let cap = s.wanLimitDown { t.sites[i].wanDown = Rate(bitsPerSecond: min(cap.bitsPerSecond, s.wanDown.bitsPerSecond)) }
        }
        for i in t.hosts.indices {
            let h = t.hosts[i]
            guard let cap = h.limit ?? site(named: h.site)?.hostLimit else { continue }
            t.hosts[i].up = Rate(bitsPerSecond: min(cap.bitsPerSecond, h.up.bitsPerSecond))
            t.hosts[i].down = Rate(bitsPerSecond: min(cap.bitsPerSecond, h.down.bitsPerSecond))
        }
        return t
    }

    /// Whether any operator cap is set.
    public var hasLimits: Bool {
        origin.uplinkLimit != nil || sites.contains { $0.wanLimitUp != nil || $0.wanLimitDown != nil || $0.hostLimit != nil }
            || hosts.contains { $0.limit != nil }
    }
}
