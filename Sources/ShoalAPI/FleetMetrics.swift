import CoreMetrics
import Metrics
import Foundation
import Prometheus
import ShoalRollout
import ShoalWire

/// The fleet's numbers for Prometheus, refreshed from the tracker at every scrape.
///
/// Metrics are made through swift-metrics (`Counter`, `Gauge` with an explicit factory, so no
/// global `MetricsSystem.bootstrap` is needed and several coordinators can live in one process)
/// over a `PrometheusMetricsFactory` with its own `PrometheusCollectorRegistry`.
///
/// The `_total` counters follow the sums the hosts report: each scrape adds the growth since
/// the last one. A sum that shrinks (a host restarted and reports from zero) adds nothing, so
/// the counters only ever grow and `rate()` works across host restarts.
final class FleetMetrics: @unchecked Sendable {
    // Invariant: every member is touched only with `lock` held (scrapes may overlap).
    private let lock = NSLock()
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private var timers: [String: CoreMetrics.Timer] = [:]
    /// Step starts seen in hosts' step logs (host, operation, step and attempt → time), and the
    /// steps already recorded in the histogram; both bounded.
    private var stepStarts: [String: Double] = [:]
    private var stepsRecorded: Set<String> = []
    static let maxRemembered = 100_000
    static let stepMetric = "shoal_operation_step_seconds"
    private var counters: [String: CoreMetrics.Counter] = [:]
    private var gauges: [String: CoreMetrics.Gauge] = [:]
    /// The last sums seen, by counter key.
    private var lastSums: [String: UInt64] = [:]

    init() {
        var f = PrometheusMetricsFactory(registry: registry)
        // Steps take from milliseconds (a state write) to an hour (a health wait after boot).
        f.durationHistogramBuckets[Self.stepMetric] = [0.1, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600].map { Duration.milliseconds(Int64($0 * 1000)) }
        factory = f
    }

    /// Updates every metric from `status` and `rollouts` and renders the registry as
    /// Prometheus text.
    func scrape(_ status: StatusReport, _ rollouts: [Rollout]) -> String {
        lock.withLock {
            // Bytes across sites' WAN, by site and direction.
            var wanIn: [String: UInt64] = [:], wanOut: [String: UInt64] = [:], served: [String: UInt64] = [:]
            var verified: UInt64 = 0
            var alive = 0, dead = 0
            for h in status.hosts {
                if h.alive { alive += 1 } else { dead += 1 }
                wanIn[h.site, default: 0] += 0
                wanOut[h.site, default: 0] += 0
                served[h.site, default: 0] += 0
                for b in h.bundles {
                    wanIn[h.site]! += b.wanInBytes ?? 0
                    wanOut[h.site]! += b.wanOutBytes ?? 0
                    served[h.site]! += b.servedBytes ?? 0
                    verified += UInt64(max(b.have, 0))
                }
            }
            for site in wanIn.keys.sorted() {
                count("shoal_site_bytes_total", [("site", site), ("direction", "in")], wanIn[site]!)
                count("shoal_site_bytes_total", [("site", site), ("direction", "out")], wanOut[site]!)
                count("shoal_site_served_bytes_total", [("site", site)], served[site]!)
            }
            count("shoal_chunks_verified_total", [], verified)
            count("shoal_chunks_rejected_total", [], UInt64(status.badPeerReports.count))

            // Hosts: alive/dead, and by the phase in the newest rollout that holds them.
            gauge("shoal_hosts", [("state", "alive")], Double(alive))
            gauge("shoal_hosts", [("state", "dead")], Double(dead))
            var phaseOf: [String: HostPhase] = [:]
            for r in rollouts.sorted(by: { $0.createdAt < $1.createdAt }) {
                for h in r.hosts { phaseOf[h.host] = h.phase }
            }
            for phase in HostPhase.allCases {
                gauge("shoal_hosts", [("state", phase.rawValue)], Double(phaseOf.values.filter { $0 == phase }.count))
            }

            // Rollouts: the current wave and the hosts in each phase.
            for r in rollouts {
                let id = r.spec.id
                gauge("shoal_rollout_wave", [("rollout", id)], Double(r.waves.last?.index ?? 0))
                for phase in HostPhase.allCases {
                    gauge("shoal_rollout_hosts", [("rollout", id), ("phase", phase.rawValue)], Double(r.hosts.filter { $0.phase == phase }.count))
                }
                for s in RolloutStatus.allCases {
                    gauge("shoal_rollout_status", [("rollout", id), ("status", s.rawValue)], r.status == s ? 1 : 0)
                }
            }
            recordSteps(status)
            return registry.emitToString()
        }
    }

    /// Step durations from the hosts' step-log lines (`TIME CODE STEP[ #ATTEMPT] STATUS: MESSAGE`,
    /// the last few of each operation, docs/AGENT.md): a `started` line, then a `done` or
    /// `failed` line of the same step and attempt — seen in this scrape or an earlier one — is one
    /// observation, labelled with the operation kind, the step and how it ended. A step whose
    /// start scrolled out of the reported lines between two scrapes is not counted.
    private func recordSteps(_ status: StatusReport) {
        if stepStarts.count > Self.maxRemembered { stepStarts.removeAll() }
        if stepsRecorded.count > Self.maxRemembered { stepsRecorded.removeAll() }
        for h in status.hosts {
            guard let p = h.operation?.progress else { continue }
            for line in p.log {
                guard let entry = Self.parseStepLine(line) else { continue }
                let key = "\(h.host)\u{1F}\(p.id)\u{1F}\(entry.step)\u{1F}\(entry.attempt)"
                switch entry.status {
                case "started":
                    if stepStarts[key] == nil { stepStarts[key] = entry.time }
                case "done", "failed":
                    guard let start = stepStarts[key], !stepsRecorded.contains(key), entry.time >= start else { continue }
                    stepsRecorded.insert(key)
                    stepStarts[key] = nil
                    let labels = [("kind", p.kind), ("step", entry.step), ("status", entry.status)]
                    let k = Self.key(Self.stepMetric, labels)
                    let timer = timers[k] ?? {
                        let t = CoreMetrics.Timer(label: Self.stepMetric, dimensions: labels, factory: factory)
                        timers[k] = t
                        return t
                    }()
                    timer.recordSeconds(entry.time - start)
                default:
                    continue
                }
            }
        }
    }

    struct StepLine: Equatable {
        var time: Double
        var step: String
        var attempt: Int
        var status: String
    }

    /// `2026-11-22T06:00:07Z 0 write-staging #2 done: message` → its parts (nil: not a step line).
    static func parseStepLine(_ line: String) -> StepLine? {
        guard let colon = line.range(of: ": ")?.lowerBound else { return nil }
        let head = line[..<colon].split(separator: " ").map(String.init)
        guard head.count == 4 || head.count == 5, let time = parseISO8601(head[0]), Int(head[1]) != nil else { return nil }
        var attempt = 1
        if head.count == 5 {
            guard head[3].hasPrefix("#"), let n = Int(head[3].dropFirst()) else { return nil }
            attempt = n
        }
        return StepLine(time: time, step: head[2], attempt: attempt, status: head[head.count - 1])
    }

    static func parseISO8601(_ text: String) -> Double? {
        let f = ISO8601DateFormatter()
        if let d = f.date(from: text) { return d.timeIntervalSince1970 }
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.date(from: text)?.timeIntervalSince1970
    }

    private static func key(_ name: String, _ labels: [(String, String)]) -> String {
        ([name] + labels.map { "\($0.0)=\($0.1)" }).joined(separator: "\u{1F}")
    }

    private func count(_ name: String, _ labels: [(String, String)], _ sum: UInt64) {
        let k = Self.key(name, labels)
        let counter = counters[k] ?? { () -> CoreMetrics.Counter in
            let c = CoreMetrics.Counter(label: name, dimensions: labels, factory: factory)
            counters[k] = c
            return c
        }()
        let last = lastSums[k] ?? 0
        if sum > last { counter.increment(by: Int64(clamping: sum - last)) }
        // A shrinking sum (a host restarted) restarts the baseline without going backwards.
        lastSums[k] = sum
    }

    private func gauge(_ name: String, _ labels: [(String, String)], _ value: Double) {
        let k = Self.key(name, labels)
        let g = gauges[k] ?? { () -> CoreMetrics.Gauge in
            let g = CoreMetrics.Gauge(label: name, dimensions: labels, factory: factory)
            gauges[k] = g
            return g
        }()
        g.record(value)
    }
}
