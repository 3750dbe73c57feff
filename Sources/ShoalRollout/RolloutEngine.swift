/// The rollout engine: pure functions over a ``Rollout`` value.
///
/// The coordinator calls ``advance(_:facts:now:)`` periodically with what it knows about every
/// host, stores the rollout, and places the orders it returns. Operator actions (pause, resume,
/// abort, retry, revert) are separate calls. Nothing here reads a clock or does I/O: the same
/// inputs always give the same rollout and the same orders. The rules are in `docs/ROLLOUTS.md`.
///
/// ```swift
/// var r = try RolloutEngine.create(spec, now: now)
/// let orders = RolloutEngine.advance(&r, facts: facts, now: now)
/// ```
public enum RolloutEngine {
    /// Starts a rollout: every host waits for its data; status is running.
    ///
    /// - Throws: ``RolloutError/invalidSpec(_:)`` or ``RolloutError/invalidPolicy(_:)``.
    public static func create(_ spec: RolloutSpec, now: Double) throws(RolloutError) -> Rollout {
        try spec.validate()
        let hosts = spec.hosts.map { RolloutHostState(host: $0.name, site: $0.site, rack: $0.rack) }
        var r = Rollout(spec: spec, status: .running, hosts: hosts, waves: [], createdAt: now, updatedAt: now)
        let sites = Set(spec.hosts.map(\.site)).count
        r.log(now, "created: \(spec.kind) of \(spec.hosts.count) host(s) in \(sites) site(s)")
        return r
    }

    /// The operation id of a host's convert or maintenance attempt (1-based).
    public static func operationID(rollout: String, host: String, attempt: Int) -> String {
        "\(rollout)-\(host)-\(attempt)"
    }

    /// The operation id of a host's `n`-th revert (1-based).
    public static func revertID(rollout: String, host: String, revert n: Int) -> String {
        "\(rollout)-\(host)-revert-\(n)"
    }

    // MARK: - Dry run

    /// The waves the engine would run if every host succeeded at once, soaks took no time, windows
    /// were open, and the hosts in `dataLocal` stayed eligible. Uses the same selection as
    /// ``advance(_:facts:now:)``.
    ///
    /// - Returns: the waves, the hosts without their data (never drawn), and notes.
    public static func plan(_ spec: RolloutSpec, dataLocal: Set<String>) -> RolloutPlan {
        var notes: [String] = []
        do throws(RolloutError) { try spec.validate() } catch {
            return RolloutPlan(waves: [], waitingForData: [], notes: ["\(error)"])
        }
        var sel = Selection(spec: spec)
        var candidates = Candidates(sel.order.filter { dataLocal.contains(spec.hosts[$0].name) })
        var waves: [PlannedWave] = []
        while !candidates.isEmpty {
            let index = waves.count + 1
            let chosen = sel.chooseWave(index: index, candidates: &candidates)
            if chosen.isEmpty {
                notes.append("no host can be drawn into wave \(index) (caps); this should not happen with nothing in flight")
                break
            }
            waves.append(PlannedWave(index: index, hosts: chosen.map { spec.hosts[$0.host].name }))
            for c in chosen { sel.finishSucceeded(host: c.host) }
        }
        let waiting = spec.hosts.map(\.name).filter { !dataLocal.contains($0) }
        let p = spec.policy
        if !waiting.isEmpty {
            notes.append("\(waiting.count) host(s) wait for their data and are not in these waves")
        }
        if waves.contains(where: { $0.hosts.count == p.maxConcurrent }) {
            notes.append("waves are limited to maxConcurrent = \(p.maxConcurrent) host(s)")
        }
        if p.soakSeconds > 0 && waves.count > 1 {
            notes.append("each wave is followed by a soak of \(formatSeconds(p.soakSeconds))")
        }
        if !p.windows.isEmpty { notes.append("waves start only inside the \(p.windows.count) maintenance window(s)") }
        notes.append("assumes every host succeeds at once; a failure can halt the rollout (budget \(p.failureBudget), judged after \(p.minHostsBeforeJudging) finished)")
        return RolloutPlan(waves: waves, waitingForData: waiting, notes: notes)
    }

    // MARK: - Advance

    /// One step of the rollout at `now`: records outcomes, moves hosts between waiting and ready,
    /// ends the current wave, halts or completes the rollout, and starts the next wave when the
    /// rules allow.
    ///
    /// - Parameters:
    ///   - r: the rollout; updated in place.
    ///   - facts: what the coordinator knows about each host, by name. A host without facts has
    ///     no data, is not alive and has reported nothing.
    ///   - now: seconds since 1970-01-01 UTC.
    /// - Returns: every order that must be outstanding: those of the wave started now and those
    ///   ordered earlier whose host has not reported the operation yet. Placing an order twice is
    ///   harmless: the ids are deterministic.
    public static func advance(_ r: inout Rollout, facts: [String: HostFacts], now: Double) -> [RolloutOrder] {
        let p = r.spec.policy
        r.updatedAt = now

        // 1. Outcomes of the operations out on hosts.
        var failedCanaries: [Int] = []
        for i in r.hosts.indices where r.hosts[i].inFlight {
            let h = r.hosts[i]
            let reported = facts[h.host]?.operation.flatMap { $0.id == h.operationID ? $0 : nil }
            if let op = reported, op.status != .running {
                reconcile(&r, i, op, now: now)
                if h.phase == .running && r.hosts[i].lastOutcome == .failed && h.canary { failedCanaries.append(i) }
            } else if let at = h.orderedAt, now >= at + p.healthDeadlineSeconds {
                let what = h.phase == .reverting ? "revert: " : ""
                r.hosts[i].phase = .failed
                if h.phase == .running { r.hosts[i].lastOutcome = .failed }
                r.hosts[i].finishedAt = now
                r.hosts[i].leftIn = nil
                r.hosts[i].message = "\(what)no outcome within \(formatSeconds(p.healthDeadlineSeconds)) of the order"
                r.log(now, "host \(h.host) failed: \(r.hosts[i].message!)")
                if h.phase == .running && h.canary { failedCanaries.append(i) }
            }
        }

        // 2. Data: waiting ↔ ready, for hosts not ordered yet.
        for i in r.hosts.indices where r.hosts[i].phase == .waitingForData || r.hosts[i].phase == .ready {
            let local = facts[r.hosts[i].host]?.dataLocal ?? false
            r.hosts[i].phase = local ? .ready : .waitingForData
        }

        // 3. The current wave ends when all its hosts have finished.
        if let w = r.currentWave {
            var done = true
            var converted = 0, failed = 0, reverted = 0
            for h in r.hosts where h.wave == w.index {
                switch h.phase {
                case .succeeded: converted += 1
                case .failed: failed += 1
                case .reverted: reverted += 1
                case .waitingForData, .ready, .running, .reverting: done = false
                }
            }
            let k = r.waves.count - 1
            r.waves[k].converted = converted
            r.waves[k].failed = failed
            r.waves[k].reverted = reverted
            if done {
                r.waves[k].endedAt = now
                r.soakUntil = now + p.soakSeconds
                r.log(now, "wave \(w.index) ended: \(converted) succeeded, \(failed) failed, \(reverted) reverted")
            }
        }

        // 4. Halt on a failed canary, or on failures beyond the budget. Failures the operator
        //    accepted by resuming a halted rollout do not halt it again; one more does.
        if r.status == .running || r.status == .paused {
            if let i = failedCanaries.first {
                let h = r.hosts[i]
                halt(&r, now, "canary \(h.host) of site \(h.site) failed: \(h.message ?? "no message")")
            } else {
                let (finished, failures) = tally(r)
                if finished >= p.minHostsBeforeJudging && failures > r.acceptedFailures
                    && exceeds(failures, of: finished, budget: p.failureBudget)
                {
                    halt(&r, now, "failures exceed the budget: \(failures) of \(finished) finished host(s) failed (budget \(p.failureBudget))")
                }
            }
        }

        // 5. Completed when every host has finished.
        if r.status == .running && r.hosts.allSatisfy({ [.succeeded, .failed, .reverted].contains($0.phase) }) {
            var s = 0, f = 0, v = 0
            for h in r.hosts {
                switch h.phase {
                case .succeeded: s += 1
                case .failed: f += 1
                default: v += 1
                }
            }
            r.status = .completed
            r.log(now, f == 0 ? "completed: \(s) succeeded, \(v) reverted" : "completed with failures: \(s) succeeded, \(f) failed, \(v) reverted")
        }

        // 6. The next wave.
        if r.status == .running && r.currentWave == nil && now >= (r.soakUntil ?? -Double.infinity) && p.windowOpen(now) {
            var sel = Selection(spec: r.spec)
            for (i, h) in r.hosts.enumerated() { sel.account(host: i, h) }
            var candidates = Candidates(sel.order.filter {
                r.hosts[$0].phase == .ready && (facts[r.hosts[$0].host]?.alive ?? false)
            })
            let index = r.waves.count + 1
            let chosen = sel.chooseWave(index: index, candidates: &candidates)
            if !chosen.isEmpty {
                for (i, canary) in chosen {
                    let attempt = r.hosts[i].attempt
                    r.hosts[i].phase = .running
                    r.hosts[i].operationID = operationID(rollout: r.spec.id, host: r.hosts[i].host, attempt: attempt)
                    r.hosts[i].wave = index
                    r.hosts[i].orderedAt = now
                    r.hosts[i].finishedAt = nil
                    r.hosts[i].message = nil
                    r.hosts[i].canary = canary
                    r.hosts[i].leftIn = nil
                }
                let names = chosen.map { r.hosts[$0.host].host }
                r.waves.append(Wave(index: index, hosts: names, startedAt: now))
                let shown = names.prefix(5).joined(separator: ", ") + (names.count > 5 ? ", …" : "")
                let canaries = chosen.filter(\.canary).count
                r.log(now, "wave \(index) started: \(names.count) host(s)\(canaries > 0 ? " (\(canaries) canary)" : ""): \(shown)")
            }
        }

        // 7. Orders that must be outstanding.
        var orders: [RolloutOrder] = []
        for h in r.hosts where h.inFlight {
            guard let id = h.operationID, facts[h.host]?.operation?.id != id else { continue }
            orders.append(order(for: h, id: id, spec: r.spec))
        }
        return orders
    }

    private static func reconcile(_ r: inout Rollout, _ i: Int, _ op: ReportedOperation, now: Double) {
        let h = r.hosts[i]
        let p = r.spec.policy
        let detail = op.message.map { ": \($0)" } ?? ""
        r.hosts[i].finishedAt = now
        r.hosts[i].leftIn = op.hostLeftIn
        switch (h.phase, op.status == .succeeded) {
        case (.running, true):
            r.hosts[i].phase = .succeeded
            r.hosts[i].lastOutcome = .succeeded
            r.hosts[i].message = op.message
            r.log(now, "host \(h.host) succeeded")
        case (.running, false):
            r.hosts[i].lastOutcome = .failed
            let why = "\(h.phase == .running ? r.spec.kind.rawValue : "revert") \(op.status)\(detail)"
            if p.onFailure == .revert && r.spec.kind == .convert {
                r.hosts[i].reverts += 1
                r.hosts[i].phase = .reverting
                r.hosts[i].operationID = revertID(rollout: r.spec.id, host: h.host, revert: r.hosts[i].reverts)
                r.hosts[i].orderedAt = now
                r.hosts[i].finishedAt = nil
                r.hosts[i].message = "\(why); reverting"
                r.log(now, "host \(h.host) failed (\(why)); revert ordered")
            } else {
                r.hosts[i].phase = .failed
                r.hosts[i].message = why
                r.log(now, "host \(h.host) failed: \(why)\(op.hostLeftIn.map { "; left in \($0)" } ?? "")")
            }
        case (_, true):
            r.hosts[i].phase = .reverted
            r.hosts[i].message = "reverted"
            r.log(now, "host \(h.host) reverted")
        case (_, false):
            r.hosts[i].phase = .failed
            r.hosts[i].message = "revert failed: \(op.status)\(detail)"
            r.log(now, "host \(h.host) \(r.hosts[i].message!)")
        }
    }

    private static func order(for h: RolloutHostState, id: String, spec: RolloutSpec) -> RolloutOrder {
        let p = spec.policy
        var o = RolloutOrder(
            host: h.host, operationID: id, kind: "revert", stagingBundle: spec.stagingBundle,
            healthTimeoutSeconds: p.agentHealthTimeoutSeconds, healthPollSeconds: p.agentHealthPollSeconds,
            bootAttempts: p.agentBootAttempts
        )
        if h.phase == .running {
            o.kind = spec.kind.rawValue
            switch spec.kind {
            case .convert: o.targetBundle = spec.targetBundle
            case .maintenance: o.maintenanceBundle = spec.maintenanceBundle
            }
        }
        return o
    }

    /// True when `failures` is more than the budget allows (reaching it exactly is allowed).
    static func exceeds(_ failures: Int, of finished: Int, budget: Amount) -> Bool {
        switch budget {
        case .count(let n): return failures > n
        case .percent(let pct): return Double(failures) * 100 > pct * Double(finished) + 1e-9
        }
    }

    /// Hosts finished and hosts failed, as the failure budget counts them.
    static func tally(_ r: Rollout) -> (finished: Int, failures: Int) {
        var finished = 0, failures = 0
        for h in r.hosts {
            if h.countsAsFinished { finished += 1 }
            if h.countsAsFailure { failures += 1 }
        }
        return (finished, failures)
    }

    private static func halt(_ r: inout Rollout, _ now: Double, _ reason: String) {
        r.status = .halted
        r.haltReason = reason
        r.log(now, "halted: \(reason)")
    }

    // MARK: - Operator actions

    /// Stops new waves; operations out on hosts run to their outcome and are still tracked.
    ///
    /// - Throws: ``RolloutError/wrongStatus(action:status:)`` unless the rollout is running.
    public static func pause(_ r: inout Rollout, now: Double) throws(RolloutError) {
        guard r.status == .running else { throw .wrongStatus(action: "pause", status: r.status) }
        r.status = .paused
        r.updatedAt = now
        r.log(now, "paused")
    }

    /// Lets a paused or halted rollout start waves again; clears the halt reason. The failures
    /// that halted it are accepted: the budget is judged again at the next failure.
    ///
    /// - Throws: ``RolloutError/wrongStatus(action:status:)`` unless paused or halted.
    public static func resume(_ r: inout Rollout, now: Double) throws(RolloutError) {
        guard r.status == .paused || r.status == .halted else { throw .wrongStatus(action: "resume", status: r.status) }
        r.log(now, r.status == .halted ? "resumed (halt accepted: \(r.haltReason ?? ""))" : "resumed")
        if r.status == .halted { r.acceptedFailures = tally(r).failures }
        r.status = .running
        r.haltReason = nil
        r.updatedAt = now
    }

    /// Ends the rollout for good: no new waves; operations out on hosts are still tracked.
    ///
    /// - Throws: ``RolloutError/wrongStatus(action:status:)`` when completed or already aborted.
    public static func abort(_ r: inout Rollout, now: Double) throws(RolloutError) {
        guard r.status != .aborted && r.status != .completed else { throw .wrongStatus(action: "abort", status: r.status) }
        r.status = .aborted
        r.updatedAt = now
        r.log(now, "aborted")
    }

    /// Makes failed hosts (all of them, or the named ones) ready again with the next attempt
    /// number. Hosts reverted after a failure count as failed here. A halted or completed rollout
    /// goes back to running.
    ///
    /// - Throws: ``RolloutError/wrongStatus(action:status:)`` when aborted,
    ///   ``RolloutError/unknownHosts(_:)``, ``RolloutError/hostNotEligible(action:host:phase:)``, or
    ///   ``RolloutError/nothingToDo(_:)`` when there is no failed host.
    public static func retry(_ r: inout Rollout, hosts names: [String]?, now: Double) throws(RolloutError) {
        guard r.status != .aborted else { throw .wrongStatus(action: "retry", status: r.status) }
        func retryable(_ h: RolloutHostState) -> Bool {
            h.phase == .failed || (h.phase == .reverted && h.lastOutcome == .failed)
        }
        let targets: [Int]
        if let names {
            targets = try indices(of: names, in: r, action: "retry", eligible: retryable)
        } else {
            targets = r.hosts.indices.filter { retryable(r.hosts[$0]) }
        }
        if targets.isEmpty { throw .nothingToDo("nothing to retry: no host of rollout \(r.spec.id) has failed") }
        for i in targets {
            let h = r.hosts[i]
            r.hosts[i] = RolloutHostState(host: h.host, site: h.site, rack: h.rack, phase: .ready, attempt: h.attempt + 1, reverts: h.reverts)
        }
        r.acceptedFailures = min(r.acceptedFailures, tally(r).failures)
        if r.status == .halted || r.status == .completed {
            r.status = .running
            r.haltReason = nil
        }
        r.updatedAt = now
        r.log(now, "retry: \(targets.count) host(s): \(targets.map { r.hosts[$0].host }.prefix(10).joined(separator: ", "))")
    }

    /// Orders a revert to the base OS for succeeded or failed hosts; the next ``advance(_:facts:now:)``
    /// returns the revert orders. A completed rollout goes back to running until they finish.
    ///
    /// - Throws: ``RolloutError/wrongStatus(action:status:)`` when aborted,
    ///   ``RolloutError/unknownHosts(_:)``, ``RolloutError/hostNotEligible(action:host:phase:)``, or
    ///   ``RolloutError/nothingToDo(_:)`` for an empty list.
    public static func revert(_ r: inout Rollout, hosts names: [String], now: Double) throws(RolloutError) {
        guard r.status != .aborted else { throw .wrongStatus(action: "revert", status: r.status) }
        if names.isEmpty { throw .nothingToDo("nothing to revert: name the hosts to revert") }
        let targets = try indices(of: names, in: r, action: "revert") { $0.phase == .succeeded || $0.phase == .failed }
        for i in targets {
            r.hosts[i].reverts += 1
            r.hosts[i].phase = .reverting
            r.hosts[i].operationID = revertID(rollout: r.spec.id, host: r.hosts[i].host, revert: r.hosts[i].reverts)
            r.hosts[i].orderedAt = now
            r.hosts[i].finishedAt = nil
            r.hosts[i].message = "revert ordered by the operator"
        }
        if r.status == .completed { r.status = .running }
        r.updatedAt = now
        r.log(now, "revert ordered: \(targets.map { r.hosts[$0].host }.prefix(10).joined(separator: ", "))")
    }

    /// Host indices for `names` (duplicates once, in rollout order), all eligible, or an error.
    private static func indices(
        of names: [String], in r: Rollout, action: String, eligible: (RolloutHostState) -> Bool
    ) throws(RolloutError) -> [Int] {
        var index: [String: Int] = [:]
        for (i, h) in r.hosts.enumerated() { index[h.host] = i }
        var unknown: [String] = []
        var seen = Set<String>()
        for n in names where index[n] == nil && seen.insert(n).inserted { unknown.append(n) }
        if !unknown.isEmpty { throw .unknownHosts(unknown) }
        let wanted = Set(names)
        let targets = r.hosts.indices.filter { wanted.contains(r.hosts[$0].host) }
        for i in targets where !eligible(r.hosts[i]) {
            throw .hostNotEligible(action: action, host: r.hosts[i].host, phase: r.hosts[i].phase)
        }
        return targets
    }
}

/// `300 s`, `1.5 s`.
func formatSeconds(_ s: Double) -> String {
    s == s.rounded() && abs(s) < 1e15 ? "\(Int(s)) s" : "\(s) s"
}
