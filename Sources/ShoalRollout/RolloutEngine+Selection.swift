/// The wave selection shared by ``RolloutEngine/advance(_:facts:now:)`` and
/// ``RolloutEngine/plan(_:dataLocal:)``: one implementation, so a dry run shows what a real
/// rollout does.
///
/// Sites and racks get small integer ids once per call, so a wave costs one walk over the
/// candidates (stopping early when the wave or the in-flight limit is full), not a pass over the
/// fleet per host.
struct Selection {
    let policy: RolloutPolicy
    let totalHosts: Int
    /// Site id of each host (spec order).
    let siteOf: [Int]
    /// Rack id of each host, -1 without a rack. Racks are per site: `r1` in two sites is two racks.
    let rackOf: [Int]
    let siteTotal: [Int]
    let siteCap: [Int]
    let rackCap: [Int]
    /// Every host index in the policy's order.
    let order: [Int]

    var siteUnavailable: [Int]
    var rackUnavailable: [Int]
    var siteSucceeded: [Bool]
    var inFlight = 0

    // Per-wave scratch, reset through `touched` so a wave costs what it walks.
    private var takenInSite: [Int]
    private var touched: [Int] = []

    init(spec: RolloutSpec) {
        let policy = spec.policy
        self.policy = policy
        totalHosts = spec.hosts.count
        var siteIDs: [String: Int] = [:]
        var rackIDs: [RackKey: Int] = [:]
        var siteOf = [Int](), rackOf = [Int]()
        var siteTotal = [Int](), rackTotal = [Int]()
        siteOf.reserveCapacity(spec.hosts.count)
        rackOf.reserveCapacity(spec.hosts.count)
        for h in spec.hosts {
            let s: Int
            if let id = siteIDs[h.site] {
                s = id
            } else {
                s = siteTotal.count
                siteIDs[h.site] = s
                siteTotal.append(0)
            }
            siteTotal[s] += 1
            siteOf.append(s)
            if let rack = h.rack {
                let key = RackKey(site: s, rack: rack)
                let r: Int
                if let id = rackIDs[key] {
                    r = id
                } else {
                    r = rackTotal.count
                    rackIDs[key] = r
                    rackTotal.append(0)
                }
                rackTotal[r] += 1
                rackOf.append(r)
            } else {
                rackOf.append(-1)
            }
        }
        self.siteOf = siteOf
        self.rackOf = rackOf
        self.siteTotal = siteTotal
        siteCap = siteTotal.map { policy.maxUnavailablePerSite.resolve(of: $0, rounding: .down, atLeast: 1) }
        rackCap = rackTotal.map { policy.maxUnavailablePerRack.resolve(of: $0, rounding: .down, atLeast: 1) }
        siteUnavailable = Array(repeating: 0, count: siteTotal.count)
        rackUnavailable = Array(repeating: 0, count: rackTotal.count)
        siteSucceeded = Array(repeating: false, count: siteTotal.count)
        takenInSite = Array(repeating: 0, count: siteTotal.count)
        order = Self.order(siteOf: siteOf, sites: siteTotal.count, policy.order)
    }

    private struct RackKey: Hashable {
        var site: Int
        var rack: String
    }

    /// Host indices in the policy's order: by site (sites in first-appearance order), or
    /// round-robin over the sites (`a1, b1, c1, a2, …`).
    static func order(siteOf: [Int], sites: Int, _ order: HostOrder) -> [Int] {
        var buckets = Array(repeating: [Int](), count: sites)
        for (i, s) in siteOf.enumerated() { buckets[s].append(i) }
        switch order {
        case .bySite:
            return buckets.flatMap { $0 }
        case .interleaveSites:
            var out = [Int]()
            out.reserveCapacity(siteOf.count)
            var active = Array(0..<sites)
            var round = 0
            while !active.isEmpty {
                var next = [Int]()
                for s in active where round < buckets[s].count {
                    out.append(buckets[s][round])
                    if round + 1 < buckets[s].count { next.append(s) }
                }
                active = next
                round += 1
            }
            return out
        }
    }

    /// Records a host of the rollout as it stands (for `advance`).
    mutating func account(host i: Int, _ state: RolloutHostState) {
        if state.unavailable { markUnavailable(i, +1) }
        if state.inFlight { inFlight += 1 }
        if state.lastOutcome == .succeeded || state.phase == .succeeded { siteSucceeded[siteOf[i]] = true }
    }

    private mutating func markUnavailable(_ i: Int, _ delta: Int) {
        siteUnavailable[siteOf[i]] += delta
        if rackOf[i] >= 0 { rackUnavailable[rackOf[i]] += delta }
    }

    /// A chosen host finishing successfully at once (the dry run's assumption).
    mutating func finishSucceeded(host i: Int) {
        markUnavailable(i, -1)
        inFlight -= 1
        siteSucceeded[siteOf[i]] = true
    }

    /// Chooses the hosts of wave `index` (1-based) from `candidates` (ready hosts in policy
    /// order) and counts them as in flight and unavailable. Chosen hosts leave `candidates`.
    ///
    /// A host is taken when its site's quota for this wave (per-site scope) or the wave's quota
    /// (fleet scope) is not used up, the canary rule allows it, its site and rack stay within
    /// their unavailable caps, and the fleet's in-flight count stays within `maxConcurrent`.
    ///
    /// - Returns: the chosen host indices in policy order, each with whether it is its site's canary.
    mutating func chooseWave(index: Int, candidates: inout Candidates) -> [(host: Int, canary: Bool)] {
        var chosen: [(host: Int, canary: Bool)] = []
        let size = policy.waveSize(index)
        let fleetQuota = size.resolve(of: totalHosts, rounding: .up, atLeast: 1)
        var pos = candidates.head
        while pos < candidates.list.count {
            if inFlight >= policy.maxConcurrent { break }
            if policy.waveScope == .fleet && chosen.count >= fleetQuota { break }
            defer { pos += 1 }
            if candidates.removed[pos] { continue }
            let i = candidates.list[pos]
            let s = siteOf[i]
            let canary = policy.canaryPerSite && !siteSucceeded[s]
            var quota = policy.waveScope == .perSite ? size.resolve(of: siteTotal[s], rounding: .up, atLeast: 1) : fleetQuota
            if canary { quota = min(quota, 1) }
            if takenInSite[s] >= quota { continue }
            if siteUnavailable[s] >= siteCap[s] { continue }
            let r = rackOf[i]
            if r >= 0 && rackUnavailable[r] >= rackCap[r] { continue }
            if takenInSite[s] == 0 { touched.append(s) }
            takenInSite[s] += 1
            markUnavailable(i, +1)
            inFlight += 1
            candidates.remove(at: pos)
            chosen.append((i, canary))
        }
        for s in touched { takenInSite[s] = 0 }
        touched.removeAll(keepingCapacity: true)
        candidates.compact()
        return chosen
    }
}

/// Ready hosts in policy order, with cheap removal: chosen entries are marked, the walk starts
/// past the removed prefix, and the list is compacted when half of it is removed.
struct Candidates {
    private(set) var list: [Int]
    private(set) var removed: [Bool]
    private(set) var head = 0
    private var removedCount = 0

    init(_ list: [Int]) {
        self.list = list
        removed = Array(repeating: false, count: list.count)
    }

    var isEmpty: Bool { removedCount == list.count }
    var remaining: [Int] { list.indices.filter { !removed[$0] }.map { list[$0] } }

    mutating func remove(at pos: Int) {
        removed[pos] = true
        removedCount += 1
    }

    mutating func compact() {
        while head < list.count && removed[head] { head += 1 }
        if removedCount > 64 && removedCount * 2 > list.count {
            list = remaining
            removed = Array(repeating: false, count: list.count)
            head = 0
            removedCount = 0
        }
    }
}
