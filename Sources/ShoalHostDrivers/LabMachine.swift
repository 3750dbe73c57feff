import Foundation
import ShoalAgent
import ShoalHostLab

/// The lab's power loop for one emulated host: runs the agent until the operation finishes,
/// playing the firmware at every reboot.
///
/// A reboot on a real host ends the agent's process; the boot loader picks an entry (a one-shot
/// once, else the default); the new system starts a new agent on the same state store (on the
/// staging disk). Here: `agent.resume()` returns `.rebooting` after the driver recorded the
/// request → the lab takes the request, calls `LabHost.boot()` (`LabFirmware`'s GRUB rules), and
/// runs a **new** `Agent` instance on the same `FileOperationStore`.
///
/// ```swift
/// let machine = try LabMachine(host: host)
/// try machine.powerOnIfOff()
/// let record = try await machine.run(request)   // until .finished
/// ```
public struct LabMachine: Sendable {
    public let host: LabHost
    public let driver: any HostDriver
    public let labDriver: LabDriver
    public let store: FileOperationStore
    public let clock: any AgentClock
    /// Boots after which the loop gives up (a host that keeps rebooting is a bug, not a result).
    public var maxBoots = 16
    /// A hardware watchdog (or the BMC): when a boot finds nothing bootable (the one-shot entry
    /// does not boot and neither does the menu's default, so the host would hang), the host is
    /// power-cycled once; the consumed one-shot then gives way to `saved_entry`. This is how
    /// docs/AGENT.md's "hung target" is modelled. Off: the hang is thrown.
    public var watchdog = true

    /// One boot of the host, as the loop saw it.
    public struct Event: Sendable {
        public var boot: BootRecord
        public var agentResult: String
    }

    /// - Parameters:
    ///   - driver: the driver the agents use; `nil` uses `labDriver` (tests wrap it to inject faults).
    public init(
        host: LabHost, labDriver: LabDriver? = nil, driver: (any HostDriver)? = nil, clock: any AgentClock = SystemAgentClock()
    ) throws {
        self.host = host
        let lab = labDriver ?? LabDriver(host: host)
        self.labDriver = lab
        self.driver = driver ?? lab
        try FileManager.default.createDirectory(atPath: lab.stateDirectory, withIntermediateDirectories: true)
        self.store = try FileOperationStore(directory: lab.agentStateDirectory)
        self.clock = clock
    }

    /// Boots the host when it runs nothing (first power-on, or after a power loss).
    @discardableResult
    public func powerOnIfOff() throws -> BootRecord {
        if let record = try? host.bootedOS() { return record }
        return try host.boot()
    }

    /// Cuts the power and turns the host on again: a pending reboot request dies with the
    /// power, the firmware boots what it would (an armed one-shot once, else the default).
    @discardableResult
    public func powerCycle() throws -> BootRecord {
        host.powerOff()
        _ = labDriver.takeRebootRequest()
        return try bootWithWatchdog()
    }

    /// Boots the host; with the watchdog, a boot that finds nothing bootable is followed by one
    /// power cycle.
    public func bootWithWatchdog() throws -> BootRecord {
        do {
            return try host.boot()
        } catch .noBootableEntry where watchdog {
            return try host.boot()
        }
    }

    /// A fresh agent on the host's store, as the next boot would start.
    public func agent() -> Agent { Agent(driver: driver, store: store, clock: clock) }

    /// Accepts `request` and runs it to its outcome.
    public func run(_ request: OperationRequest, onBoot: (BootRecord) -> Void = { _ in }) async throws -> OperationRecord {
        try powerOnIfOff()
        _ = try await agent().accept(request)
        return try await resume(onBoot: onBoot)
    }

    /// Runs the current operation to its outcome, from wherever it stands, rebooting the host
    /// through the lab firmware each time the agent asks for it.
    public func resume(onBoot: (BootRecord) -> Void = { _ in }) async throws -> OperationRecord {
        var boots = 0
        if labDriver.takeRebootRequest() {
            // A reboot was asked for and the loop that should have done it went away (the `shoal
            // host` process was killed): a real host reboots anyway, so the lab does it now.
            boots += 1
            onBoot(try bootWithWatchdog())
        }
        try powerOnIfOff()
        while true {
            switch try await agent().resume() {
            case .idle:
                throw AgentError.noOperation
            case .finished(let record):
                return record
            case .rebooting(let record):
                guard labDriver.takeRebootRequest() else {
                    throw LabDriverError("the agent returned .rebooting at \(record.currentStepName) but no reboot was requested")
                }
                boots += 1
                guard boots <= maxBoots else {
                    throw LabDriverError("the host rebooted \(boots) times in one run; giving up")
                }
                onBoot(try bootWithWatchdog())
            }
        }
    }
}
