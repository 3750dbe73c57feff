import ArgumentParser
import Foundation
import NIOPosix
import ShoalRollout
import ShoalWire

/// `shoal rollout create|plan|status|pause|resume|abort|retry|revert` and `shoal hosts`: the
/// operator's side of rollouts (docs/ROLLOUTS.md). Every command talks to the coordinator over
/// the control protocol with an operator certificate and prints a table, or JSON with `--json`.
struct RolloutCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout",
        abstract: "Convert hosts in waves once their bundles are local (create, plan, status, pause, resume, abort, retry, revert).",
        subcommands: [RolloutCreate.self, RolloutPlanCommand.self, RolloutStatusCommand.self, RolloutPause.self, RolloutResume.self,
                      RolloutAbort.self, RolloutRetry.self, RolloutRevert.self]
    )
}

struct CoordinatorOptions: ParsableArguments {
    @Option(help: "Coordinator address HOST:PORT.") var coordinator: String
    @Option(help: "TLS directory (an operator certificate; status takes any fleet certificate).") var tls: String
    @Flag(help: "Print JSON.") var json = false

    func send(_ request: ControlRequest) throws -> ControlResponse {
        let context = try loadTLS(tls)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let answer = try controlRequest(request, coordinator: coordinator, tls: context, group: group)
        if case .refused(let why) = answer { throw CLIError(message: "refused by the coordinator: \(why)", code: 2) }
        return answer
    }

    func rollouts(_ request: ControlRequest) throws -> [Rollout] {
        guard case .rollouts(let list) = try send(request) else { throw CLIError(message: "unexpected answer from the coordinator") }
        return list
    }
}

/// What `create` and `plan` share: the bundles, the hosts and the policy.
struct RolloutSpecOptions: ParsableArguments {
    @Argument(help: "The rollout's id (1–64 of A–Z a–z 0–9 . _ -).") var id: String
    @Option(help: "convert or maintenance.") var kind: String = "convert"
    @Option(name: .customLong("staging-bundle"), help: ArgumentHelp("The staging bundle (the base-OS copy): a .shoal file or a bundle id.", valueName: "BUNDLE"))
    var stagingBundle: String
    @Option(name: .customLong("target-bundle"), help: ArgumentHelp("The target OS (convert): a .shoal file or a bundle id.", valueName: "BUNDLE"))
    var targetBundle: String?
    @Option(name: .customLong("maintenance-bundle"), help: ArgumentHelp("The maintenance image (maintenance): a .shoal file or a bundle id.", valueName: "BUNDLE"))
    var maintenanceBundle: String?
    @Option(help: "Which hosts (see `shoal distribute --help`: all, site=a, rack=r1, name=web-*, label=k=v).") var hosts: String = "all"
    @Option(help: ArgumentHelp("A policy file (JSON; absent keys take the defaults, see docs/ROLLOUTS.md).", valueName: "FILE"))
    var policy: String?
    @Option(name: .customLong("set"), help: ArgumentHelp("Override one policy key, as JSON: --set soakSeconds=60 --set 'waves=[1,\"50%\"]' (repeatable).", valueName: "KEY=VALUE"))
    var overrides: [String] = []

    func request() throws -> RolloutRequest {
        guard let kind = RolloutKind(rawValue: kind) else { throw CLIError(message: "--kind must be convert or maintenance", code: 64) }
        var object: [String: Any] = [:]
        if let policy {
            guard let data = FileManager.default.contents(atPath: policy) else { throw CLIError(message: "cannot read \(policy)", code: 64) }
            guard let o = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw CLIError(message: "\(policy): not a JSON object", code: 64)
            }
            object = o
        }
        for item in overrides {
            guard let eq = item.firstIndex(of: "=") else { throw CLIError(message: "--set \(item): want KEY=VALUE", code: 64) }
            let key = String(item[..<eq]), raw = String(item[item.index(after: eq)...])
            let value = (try? JSONSerialization.jsonObject(with: Data(raw.utf8), options: [.fragmentsAllowed])) ?? raw
            object[key] = value
        }
        let decoded: RolloutPolicy
        do {
            decoded = try JSONDecoder().decode(RolloutPolicy.self, from: try JSONSerialization.data(withJSONObject: object))
            try decoded.validate()
        } catch {
            throw CLIError(message: "policy: \(error)", code: 64)
        }
        return RolloutRequest(
            id: id, kind: kind, stagingBundle: try bundleID(ofArgument: stagingBundle), targetBundle: try targetBundle.map(bundleID(ofArgument:)),
            maintenanceBundle: try maintenanceBundle.map(bundleID(ofArgument:)), selector: hosts, policy: decoded)
    }
}

struct RolloutCreate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Start a rollout (with --dry-run: print its wave plan and change nothing).",
        discussion: """
            The bundles must already be distributed to the rollout's hosts (`shoal distribute`): a \
            host becomes eligible for a wave once its bundles are complete and verified on it. Waves \
            follow the policy's ramp, per site or fleet-wide, a canary first in each site, never more \
            than maxUnavailable of a site or rack at once, and the rollout halts when failures exceed \
            the failure budget. Creating the same rollout again is harmless.
            """)
    @OptionGroup var spec: RolloutSpecOptions
    @OptionGroup var remote: CoordinatorOptions
    @Flag(help: "Print the wave plan only.") var dryRun = false

    func run() throws {
        try reportingErrors {
            let request = try spec.request()
            if dryRun {
                try printPlan(request, remote)
                return
            }
            let list = try remote.rollouts(.rolloutCreate(request))
            try printRollouts(list, json: remote.json)
        }
    }
}

struct RolloutPlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "Print the wave plan a rollout would follow now (a dry run).")
    @OptionGroup var spec: RolloutSpecOptions
    @OptionGroup var remote: CoordinatorOptions

    func run() throws {
        try reportingErrors { try printPlan(try spec.request(), remote) }
    }
}

func printPlan(_ request: RolloutRequest, _ remote: CoordinatorOptions) throws {
    guard case .rolloutPlan(let plan) = try remote.send(.rolloutPlan(request)) else {
        throw CLIError(message: "unexpected answer from the coordinator")
    }
    if remote.json {
        print(try prettyJSON(plan))
        return
    }
    print("rollout \(request.id) (\(request.kind.rawValue), hosts \(request.selector)): \(plan.waves.count) waves")
    for w in plan.waves {
        let names = w.hosts.count <= 12 ? w.hosts.joined(separator: " ") : w.hosts.prefix(12).joined(separator: " ") + " … (+\(w.hosts.count - 12))"
        print("  wave \(w.index): \(w.hosts.count) host\(w.hosts.count == 1 ? "" : "s"): \(names)")
    }
    if !plan.waitingForData.isEmpty {
        print("  waiting for data (not yet eligible): \(plan.waitingForData.count): \(plan.waitingForData.prefix(12).joined(separator: " "))")
    }
    for n in plan.notes { print("  note: \(n)") }
}

struct RolloutStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Where a rollout (or every rollout) stands: waves, hosts, failures with their step logs.")
    @Argument(help: "The rollout's id (default: every rollout).") var id: String?
    @OptionGroup var remote: CoordinatorOptions
    @Flag(help: "Follow until the rollout is completed, halted or aborted (a line per change).") var watch = false

    func run() throws {
        try reportingErrors {
            var list = try remote.rollouts(.rolloutStatus(id: id))
            if watch {
                guard id != nil else { throw CLIError(message: "--watch needs a rollout id", code: 64) }
                var last = ""
                while let r = list.first {
                    let line = rolloutSummary(r)
                    if line != last { Terminal.note(line); last = line }
                    if r.isSettled { break }
                    Thread.sleep(forTimeInterval: 1)
                    list = try remote.rollouts(.rolloutStatus(id: id))
                }
            }
            try printRollouts(list, json: remote.json)
        }
    }
}

/// `pause`, `resume`, `abort`: one action on one rollout.
struct RolloutPause: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pause", abstract: "Order no new hosts (operations in flight run to their outcome).")
    @Argument(help: "The rollout's id.") var id: String
    @OptionGroup var remote: CoordinatorOptions
    func run() throws { try reportingErrors { try printRollouts(try remote.rollouts(.rolloutControl(id: id, action: .pause, hosts: nil)), json: remote.json) } }
}

struct RolloutResume: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Resume a paused or halted rollout.")
    @Argument(help: "The rollout's id.") var id: String
    @OptionGroup var remote: CoordinatorOptions
    func run() throws { try reportingErrors { try printRollouts(try remote.rollouts(.rolloutControl(id: id, action: .resume, hosts: nil)), json: remote.json) } }
}

struct RolloutAbort: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "abort", abstract: "Stop a rollout for good (operations in flight run to their outcome).")
    @Argument(help: "The rollout's id.") var id: String
    @OptionGroup var remote: CoordinatorOptions
    func run() throws { try reportingErrors { try printRollouts(try remote.rollouts(.rolloutControl(id: id, action: .abort, hosts: nil)), json: remote.json) } }
}

struct RolloutRetry: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "retry", abstract: "Make failed hosts eligible again (a halted rollout runs again).")
    @Argument(help: "The rollout's id.") var id: String
    @Option(help: "Only these hosts (comma-separated; default: every failed host).") var hosts: String?
    @OptionGroup var remote: CoordinatorOptions
    func run() throws {
        try reportingErrors {
            let names = hosts.map { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }
            try printRollouts(try remote.rollouts(.rolloutControl(id: id, action: .retry, hosts: names)), json: remote.json)
        }
    }
}

struct RolloutRevert: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revert", abstract: "Revert hosts of a rollout to their base OS.")
    @Argument(help: "The rollout's id.") var id: String
    @Option(help: "The hosts to revert (comma-separated).") var hosts: String
    @OptionGroup var remote: CoordinatorOptions
    func run() throws {
        try reportingErrors {
            let names = hosts.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
            try printRollouts(try remote.rollouts(.rolloutControl(id: id, action: .revert, hosts: names)), json: remote.json)
        }
    }
}

func prettyJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

func rolloutSummary(_ r: Rollout) -> String {
    var counts: [HostPhase: Int] = [:]
    for h in r.hosts { counts[h.phase, default: 0] += 1 }
    let phases = HostPhase.allCases.compactMap { p in counts[p].map { "\($0) \(p.rawValue)" } }.joined(separator: ", ")
    return "rollout \(r.spec.id): \(r.status.rawValue), wave \(r.waves.count), \(phases)\(r.haltReason.map { " — \($0)" } ?? "")"
}

func printRollouts(_ list: [Rollout], json: Bool) throws {
    if json {
        print(try prettyJSON(list))
        return
    }
    if list.isEmpty { print("no rollouts") }
    for r in list {
        print(rolloutSummary(r))
        for w in r.waves {
            let span = w.endedAt.map { String(format: "%.1f s", $0 - w.startedAt) } ?? "running"
            print("  wave \(w.index): \(w.hosts.count) hosts (\(span)): \(w.converted) converted, \(w.failed) failed, \(w.reverted) reverted")
        }
        for h in r.hosts where h.phase == .failed || h.phase == .reverting || h.phase == .reverted {
            print("  \(h.host) (\(h.site)) \(h.phase.rawValue): \(h.message ?? "")")
        }
        for e in r.events.suffix(5) { print("  · \(e)") }
    }
}


/// `shoal hosts`: every host the coordinator knows, with its bundles and its operation.
struct HostsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "hosts", abstract: "Every host the coordinator knows: site, liveness, bundles, operation.")
    @Option(help: "Only the hosts of this site.") var site: String?
    @OptionGroup var remote: CoordinatorOptions

    func run() throws {
        try reportingErrors {
            guard case .status(let report) = try remote.send(.status) else { throw CLIError(message: "unexpected answer from the coordinator") }
            let hosts = report.hosts.filter { site == nil || $0.site == site }
            if remote.json {
                print(try prettyJSON(hosts))
                return
            }
            func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
            print(pad("host", 12) + pad("site", 10) + pad("alive", 6) + pad("bundles", 26) + "operation")
            for h in hosts {
                let bundles = h.bundles.map { "\($0.bundleID.prefix(6)) \($0.complete ? "done" : "\($0.have)/\($0.total)")" }.joined(separator: ", ")
                print(pad(h.host, 12) + pad(h.site, 10) + pad(h.alive ? "yes" : "no", 6) + pad(bundles.isEmpty ? "-" : bundles, 26)
                      + (h.operation.map(operationSummary) ?? "-"))
            }
        }
    }
}
