import Foundation
import ShoalRollout
import ShoalTopology
import ShoalWire

/// Rollouts in the tracker: creating them from an operator's request, feeding the engine the
/// facts it needs (is the data local, is the host alive, what did its agent report), and placing
/// the orders it returns. Pure like the rest of `Tracker`: `CoordinatorServer` calls
/// `advanceRollouts(now:)` on a timer and after every rollout request, then saves.
extension Tracker {
    /// The rollout's hosts from its selector, with what the policy needs of each.
    func rolloutHosts(selector: String) throws -> [RolloutHost] {
        try topology.hosts(matching: selector).map { h in
            RolloutHost(name: h.name, site: h.site, rack: h.rack, labels: h.labels)
        }
    }

    /// The spec of a request, checked against what the coordinator knows: the bundles must be
    /// published for every host of the rollout (otherwise their data never becomes local).
    func rolloutSpec(_ request: RolloutRequest) throws -> RolloutSpec {
        let hosts = try rolloutHosts(selector: request.selector)
        guard !hosts.isEmpty else { throw RolloutRequestError("the selector \(request.selector) matches no host") }
        let spec = RolloutSpec(
            id: request.id, kind: request.kind, stagingBundle: request.stagingBundle, targetBundle: request.targetBundle,
            maintenanceBundle: request.maintenanceBundle, selector: request.selector, hosts: hosts, policy: request.policy)
        try spec.validate()
        for bundle in Self.bundles(of: spec) {
            guard let published = state.bundles[bundle] else {
                throw RolloutRequestError("bundle \(bundle.prefix(12)) is not published: distribute it to the rollout's hosts first")
            }
            let targets = Set(published.targets)
            let missing = hosts.map(\.name).filter { !targets.contains($0) }
            if !missing.isEmpty {
                throw RolloutRequestError("bundle \(bundle.prefix(12)) is not distributed to \(missing.count) of the rollout's hosts (\(missing.prefix(5).joined(separator: ", "))\(missing.count > 5 ? ", …" : ""))")
            }
        }
        return spec
    }

    static func bundles(of spec: RolloutSpec) -> [String] {
        [spec.stagingBundle] + [spec.targetBundle, spec.maintenanceBundle].compactMap { $0 }
    }

    /// What the engine needs to know about each host of `spec`.
    func rolloutFacts(_ spec: RolloutSpec, now: Double) -> [String: HostFacts] {
        let bundles = Self.bundles(of: spec)
        var out: [String: HostFacts] = [:]
        out.reserveCapacity(spec.hosts.count)
        for h in spec.hosts {
            let record = state.hosts[h.name]
            let local = bundles.allSatisfy { record?.progress[$0]?.complete == true }
            let reported = record?.operation.map { p in
                ReportedOperation(id: p.id, status: ReportedOperation.Status(p.status), hostLeftIn: p.hostLeftIn, message: p.message)
            }
            out[h.name] = HostFacts(dataLocal: local, alive: isAlive(h.name, now: now), operation: reported)
        }
        return out
    }

    /// Handles a rollout request from an operator.
    mutating func handleRollout(_ request: ControlRequest, now: Double) -> ControlResponse {
        switch request {
        case .rolloutCreate(let r):
            do {
                let spec = try rolloutSpec(r)
                if let existing = rollouts[r.id] {
                    // Creating the same rollout again is harmless (a retried command).
                    if existing.spec == spec { return .rollouts([existing]) }
                    return .refused("rollout \(r.id) exists with another spec; choose a new id")
                }
                let busy = Set(spec.hosts.map(\.name))
                for other in rollouts.values where other.isActive {
                    if let clash = other.spec.hosts.first(where: { busy.contains($0.name) }) {
                        return .refused("host \(clash.name) is in rollout \(other.spec.id), which is \(other.status.rawValue); abort it or wait for it")
                    }
                }
                var rollout = try RolloutEngine.create(spec, now: now)
                placeOrders(RolloutEngine.advance(&rollout, facts: rolloutFacts(spec, now: now), now: now), now: now)
                store(rollout)
                return .rollouts([rollout])
            } catch {
                return .refused("\(error)")
            }
        case .rolloutPlan(let r):
            do {
                let spec = try rolloutSpec(r)
                let facts = rolloutFacts(spec, now: now)
                let local = Set(facts.filter(\.value.dataLocal).keys)
                return .rolloutPlan(RolloutEngine.plan(spec, dataLocal: local))
            } catch {
                return .refused("\(error)")
            }
        case .rolloutStatus(let id):
            if let id {
                guard let r = rollouts[id] else { return .refused("no rollout \(id)") }
                return .rollouts([r])
            }
            return .rollouts(rollouts.values.sorted { $0.createdAt < $1.createdAt })
        case .rolloutControl(let id, let action, let hosts):
            guard var rollout = rollouts[id] else { return .refused("no rollout \(id)") }
            do {
                switch action {
                case .pause: try RolloutEngine.pause(&rollout, now: now)
                case .resume: try RolloutEngine.resume(&rollout, now: now)
                case .abort: try RolloutEngine.abort(&rollout, now: now)
                case .retry: try RolloutEngine.retry(&rollout, hosts: hosts, now: now)
                case .revert:
                    guard let hosts, !hosts.isEmpty else { return .refused("name the hosts to revert") }
                    try RolloutEngine.revert(&rollout, hosts: hosts, now: now)
                }
            } catch {
                return .refused("\(error)")
            }
            placeOrders(RolloutEngine.advance(&rollout, facts: rolloutFacts(rollout.spec, now: now), now: now), now: now)
            store(rollout)
            return .rollouts([rollout])
        default:
            return .refused("not a rollout request")
        }
    }

    /// One engine step for every rollout that still has something to do. Returns whether
    /// anything changed (then the caller saves and rechecks held announces).
    public mutating func advanceRollouts(now: Double) -> Bool {
        guard !rollouts.isEmpty else { return false }
        var changed = false
        for id in rollouts.keys.sorted() {
            guard var rollout = rollouts[id], rollout.needsAdvancing else { continue }
            let before = rollout
            let orders = RolloutEngine.advance(&rollout, facts: rolloutFacts(rollout.spec, now: now), now: now)
            if placeOrders(orders, now: now) { changed = true }
            // `updatedAt` alone is not a change worth a write.
            var a = rollout, b = before
            a.updatedAt = 0
            b.updatedAt = 0
            if a != b {
                store(rollout)
                changed = true
            }
        }
        return changed
    }

    /// Places the engine's orders as operator orders are placed. An identical order is a no-op;
    /// a host still busy with an unfinished order of someone else's keeps it (the engine re-emits
    /// its order until the host reports it, and its health deadline bounds the wait).
    @discardableResult
    mutating func placeOrders(_ orders: [RolloutOrder], now: Double) -> Bool {
        var changed = false
        for o in orders {
            let order = OperationOrder(
                id: o.operationID, kind: o.kind, stagingBundle: o.stagingBundle, targetBundle: o.targetBundle,
                maintenanceBundle: o.maintenanceBundle, healthTimeoutSeconds: o.healthTimeoutSeconds,
                healthPollSeconds: o.healthPollSeconds, bootAttempts: o.bootAttempts)
            if let existing = state.orders?[o.host] {
                if existing.order == order { continue }
                let progress = state.hosts[o.host]?.operation
                let finished = progress?.id == existing.order.id && progress?.isFinished == true
                if !finished { continue }
            }
            if state.hosts[o.host]?.operation?.id == order.id { continue }
            var all = state.orders ?? [:]
            all[o.host] = OrderRecord(order: order, orderedBy: "rollout", orderedAt: now)
            state.orders = all
            changes.orders.insert(o.host)
            changed = true
        }
        return changed
    }
}

extension Tracker {
    /// Keeps `rollout` and records it for the store (as its JSON document).
    mutating func store(_ rollout: Rollout) {
        rollouts[rollout.spec.id] = rollout
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        guard let body = try? encoder.encode(rollout) else { return }
        saveDocument(kind: Self.rolloutDocumentKind, id: rollout.spec.id, body: body)
    }
}

struct RolloutRequestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ReportedOperation.Status {
    init(_ status: OperationProgress.Status) {
        switch status {
        case .running: self = .running
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .refused: self = .refused
        }
    }
}

extension Rollout {
    /// Running, paused or halted, or aborted with operations still in flight.
    public var isActive: Bool {
        switch status {
        case .running, .paused, .halted: return true
        case .aborted, .completed: return hosts.contains { $0.phase == .running || $0.phase == .reverting }
        }
    }

    /// Nothing more will happen without an operator: completed, aborted or halted, and no
    /// operation in flight.
    public var isSettled: Bool {
        switch status {
        case .running, .paused: return false
        case .halted, .aborted, .completed: return !hosts.contains(where: \.inFlight)
        }
    }

    /// Whether the engine can still change it (new orders, or outcomes to reconcile).
    var needsAdvancing: Bool { isActive || hosts.contains { $0.phase == .reverting } }
}
