import Foundation
import ShoalTopology

/// The datacenter of a topology on loopback addresses, for machines without root or network
/// namespaces: every host gets its own `127.o.x.y` address, with the same last three octets as
/// in a `NetworkLab` (origin `127.o.0.2`, host `k` of site `i` `127.o.i.(k+2)`). Linux routes all
/// of `127.0.0.0/8` to `lo`, so nothing needs configuring, and nothing is shaped: the
/// application must enforce the topology's rates itself. Processes run directly (no namespace).
public final class LoopbackLab: Lab, @unchecked Sendable {
    /// `.loopback`.
    public let mode: LabMode = .loopback
    /// The topology.
    public let topology: Topology
    /// The second octet of every address (`127.<octet>.x.y`).
    public let octet: UInt8
    /// The address of the origin, its seeds and the coordinator.
    public let originAddress: String
    private let addresses: [String: String]
    private let tracker = ProcessTracker()
    private let lock = NSLock()
    private var isTornDown = false

    /// The loopback lab of `topology`, with addresses `127.<octet>.x.y`.
    /// - Throws: `LabError.topologyTooLarge` beyond 63 sites or 253 hosts in a site (the same
    ///   limits as `NetworkLab`, so both labs accept the same topologies).
    public init(topology: Topology, octet: UInt8 = 77) throws {
        let plan = try LabPlan(topology: topology, runID: "loopback", octet: octet)
        self.topology = topology
        self.octet = octet
        func loopback(_ address: String) -> String { "127." + address.split(separator: ".").dropFirst().joined(separator: ".") }
        originAddress = loopback(plan.originAddress)
        addresses = plan.hostAddresses.mapValues(loopback)
    }

    deinit { teardown() }

    /// The address of a host; for a seed or the origin's name, `originAddress`. Traps on a name
    /// that is not in the topology.
    public func address(of name: String) -> String {
        if let address = addresses[name] { return address }
        if name == topology.origin.name || topology.origin.seeds.contains(name) { return originAddress }
        preconditionFailure("no host, seed or origin named \"\(name)\" in the lab's topology")
    }

    /// Starts `executable arguments…` directly (see `Lab.spawn`); `target` only labels it, but
    /// must be a host, a seed or the origin.
    public func spawn(in target: String, executable: String, arguments: [String] = [], environment: [String: String]? = nil,
                      stdout: String? = nil, stderr: String? = nil) throws -> LabProcess {
        guard addresses[target] != nil || target == topology.origin.name || topology.origin.seeds.contains(target) else {
            throw LabError.unknownTarget(target)
        }
        guard let path = Command.find(executable) else { throw LabError.executableNotFound(executable) }
        lock.lock(); defer { lock.unlock() }
        guard !isTornDown else { throw LabError.tornDown }
        let process = try LabProcess.launch(target: target, executable: path, arguments: arguments,
                                            environment: environment, stdout: stdout, stderr: stderr)
        tracker.add(process)
        return process
    }

    /// Every process started with `spawn`.
    public var processes: [LabProcess] { tracker.all }

    /// Stops every spawned process (SIGTERM, SIGKILL after a second). Idempotent.
    public func teardown() {
        lock.withLock { isTornDown = true }
        tracker.stopAll(grace: 1)
    }
}
