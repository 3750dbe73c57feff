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
    private var counters: [String: CoreMetrics.Counter] = [:]
    private var gauges: [String: CoreMetrics.Gauge] = [:]
    /// The last sums seen, by counter key.
    private var lastSums: [String: UInt64] = [:]

    init() {
        factory = PrometheusMetricsFactory(registry: registry)
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
            return registry.emitToString()
        }
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
