import ArgumentParser
import Foundation
import ShoalLoadGen

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure parts of Shoal under load.",
        subcommands: [BenchCoordinatorCommand.self]
    )
}

struct BenchCoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Load a real `shoal coordinator` with simulated hosts over real TLS connections on loopback.",
        discussion: """
            Makes a topology of --sites sites holding --hosts hosts in a temp dir, a fleet CA and one \
            certificate per host (in memory), starts `shoal coordinator` (this binary; SQLite state in \
            the temp dir) on 127.0.0.1, and connects every host with its own mutually authenticated \
            TLS control connection. Phases: every host announces once (join); with --bundle-targets \
            all an operator publishes a bundle for every host (then every answer lists the live \
            peers); held announces (announceAndWait, 1 s, as peers send them) for --duration s while an \
            operator asks for the status back to back; then plain announces back to back on every \
            idle connection for --duration s (the most the coordinator answers). Reports announces per \
            second (median of per-second counts), latency p50/p99, status requests per second, the \
            coordinator's peak RSS (VmHWM) and its database size. Everything runs on this machine: \
            the generator competes with the coordinator for the CPUs.
            """
    )
    @Option(help: "Simulated hosts.") var hosts = 10_000
    @Option(help: "Sites the hosts are spread over.") var sites = 100
    @Option(help: "Hosts that connect and announce (the first ones; default: all).") var connections: Int?
    @Option(help: "Seconds of each measured phase.") var duration: Double = 20
    @Option(help: ArgumentHelp("Publish a bundle targeting every host (all) or none.", valueName: "all|none"))
    var bundleTargets = "none"
    @Option(help: ArgumentHelp("The measured phases, in order, comma-separated: held (announceAndWait with status requests), plain (announce back to back).", valueName: "held,plain"))
    var phases = "held,plain"
    @Option(help: "Event loop threads of the load generator.") var eventLoops = 2
    @Flag(help: "Print the report as JSON.") var json = false

    func run() throws {
        try reportingErrors {
            guard bundleTargets == "all" || bundleTargets == "none" else { throw CLIError(message: "--bundle-targets is all or none", code: 64) }
            guard hosts > 0, sites > 0, sites <= hosts, duration > 0 else { throw CLIError(message: "need hosts ≥ sites > 0 and a positive duration", code: 64) }
            var options = CoordinatorBench.Options(executable: Self.ownExecutable())
            options.hosts = hosts
            options.sites = sites
            options.connections = connections
            options.duration = duration
            options.bundleTargetsAll = bundleTargets == "all"
            options.eventLoops = eventLoops
            options.phases = try phases.split(separator: ",").map {
                guard let p = CoordinatorBench.Phase(rawValue: String($0)) else { throw CLIError(message: "unknown phase \($0) (held, plain)", code: 64) }
                return p
            }
            let report: CoordinatorBench.Report
            do { report = try CoordinatorBench.run(options, log: { Terminal.note($0) }) } catch { throw CLIError(message: "\(error)") }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(report), as: UTF8.self))
            } else {
                print(Self.table(report))
            }
        }
    }

    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return n > 0 ? String(cString: Array(buffer[0..<n]) + [0]) : CommandLine.arguments[0]
    }

    static func table(_ r: CoordinatorBench.Report) -> String {
        func ms(_ s: Double) -> String { String(format: "%.1f ms", s * 1e3) }
        func row(_ name: String, _ value: String) -> String { name.padding(toLength: 44, withPad: " ", startingAt: 0) + value }
        var lines = [
            "coordinator capacity: \(r.hosts) hosts in \(r.sites) sites, \(r.connections) connected, bundle targets \(r.bundleTargets), \(Int(r.duration)) s phases",
            row("certificates (key + cert + TLS context)", String(format: "%.2f s (%.0f µs each)", r.certificateSeconds, r.certificateSeconds / Double(r.hosts) * 1e6)),
            row("connect (TLS handshakes)", String(format: "%.2f s, %d failed", r.connectSeconds, r.connectFailed)),
            row("join: first announce of every host", String(format: "%.2f s, %.0f/s", r.join.seconds, r.join.medianPerSecond)),
            row("announce: per second (median)", String(format: "%.0f", r.plain.medianPerSecond)),
            row("announce: latency p50 / p99", "\(ms(r.plain.latencyP50)) / \(ms(r.plain.latencyP99))"),
            row("announceAndWait 1 s: per second (median)", String(format: "%.0f (%@; needs ≥ %.0f)", r.held.medianPerSecond,
                                                                  r.heldSustained ? "sustained" : "NOT sustained", 0.9 * Double(r.connections) / 1.02)),
            row("announceAndWait: latency p50 / p99", "\(ms(r.held.latencyP50)) / \(ms(r.held.latencyP99))"),
            row("announceAndWait: hosts answered", "\(r.held.hostsAnswered) of \(r.held.hosts), \(r.held.unanswered) unanswered"),
            row("status requests per second (during held)", String(format: "%.1f (p50 %@)", r.held.statusPerSecond, ms(r.held.statusLatencyP50))),
            row("status at the end: hosts alive", "\(r.statusHostsAlive) of \(r.statusHostsListed)"),
            row("coordinator peak RSS (VmHWM)", String(format: "%.1f MiB", Double(r.coordinatorPeakRSSKiB) / 1024)),
            row("state database", String(format: "%.2f MiB (+ WAL %.2f MiB)", Double(r.stateDBBytes) / 1048576, Double(r.stateWALBytes) / 1048576)),
        ]
        for (name, p) in [("join", r.join), ("announce", r.plain), ("announceAndWait", r.held)] where p.failed + p.refused + p.otherAnswers > 0 {
            lines.append(row("\(name): problems", "\(p.failed) failed, \(p.refused) refused, \(p.otherAnswers) other: \(p.firstProblem ?? "")"))
        }
        return lines.joined(separator: "\n")
    }
}
