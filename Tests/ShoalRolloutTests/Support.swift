import ShoalTestKit
import ShoalRollout

/// `count` hosts per site named `<site><n>` (1-based), racks of `rackSize` (`r1`, `r2`, …) when given.
func makeHosts(sites: [String], perSite: Int, rackSize: Int? = nil) -> [RolloutHost] {
    sites.flatMap { s in
        (1...perSite).map { n in
            RolloutHost(name: "\(s)\(n)", site: s, rack: rackSize.map { "r\((n - 1) / $0 + 1)" })
        }
    }
}

func makeSpec(_ hosts: [RolloutHost], _ configure: (inout RolloutPolicy) -> Void = { _ in }) -> RolloutSpec {
    var p = RolloutPolicy()
    configure(&p)
    return RolloutSpec(id: "R", kind: .convert, stagingBundle: "staging-1", targetBundle: "debian-12", selector: "all", hosts: hosts, policy: p)
}

/// A policy with no caps in the way, no soak and no canaries: only the ramp shapes the waves.
func open(_ p: inout RolloutPolicy) {
    p.maxUnavailablePerSite = "100%"
    p.maxUnavailablePerRack = "100%"
    p.canaryPerSite = false
    p.soakSeconds = 0
}

/// A coordinator in a test: the facts it would pass, a clock, and the rollout it stores.
struct Fleet {
    var r: Rollout
    var facts: [String: HostFacts] = [:]
    var now: Double = 1_000_000
    var lastOrders: [RolloutOrder] = []

    init(_ spec: RolloutSpec, dataLocal: Bool = true) throws {
        r = try RolloutEngine.create(spec, now: now)
        for h in spec.hosts { facts[h.name] = HostFacts(dataLocal: dataLocal, alive: true) }
    }

    @discardableResult
    mutating func advance(after seconds: Double = 0) -> [RolloutOrder] {
        now += seconds
        lastOrders = RolloutEngine.advance(&r, facts: facts, now: now)
        return lastOrders
    }

    /// The host reports its current operation (the one the rollout waits for) with `status`.
    mutating func report(_ host: String, _ status: ReportedOperation.Status, leftIn: String? = nil, message: String? = nil) {
        let id = r.hosts.first { $0.host == host }!.operationID!
        facts[host]!.operation = ReportedOperation(id: id, status: status, hostLeftIn: leftIn, message: message)
    }

    /// Every host with an outstanding order reports success.
    mutating func succeedAll() {
        for h in r.hosts where h.inFlight { report(h.host, .succeeded, leftIn: "target") }
    }

    func host(_ name: String) -> RolloutHostState { r.hosts.first { $0.host == name }! }
    var waves: [[String]] { r.waves.map(\.hosts) }

    /// Runs to the end with every operation succeeding at once, soaks skipped.
    mutating func runAllSucceeding(maxSteps: Int = 10_000) {
        for _ in 0..<maxSteps {
            let orders = advance(after: max(0, (r.soakUntil ?? 0) - now))
            if orders.isEmpty && r.currentWave == nil && (r.soakUntil ?? 0) <= now { return }
            succeedAll()
        }
    }
}

