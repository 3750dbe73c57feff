import ArgumentParser
import Dispatch
import Foundation
import ShoalAgent
import ShoalHostDrivers
import ShoalHostLab
import ShoalStorage

/// `shoal host …`: one host's conversion, without a coordinator.
struct HostCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "host",
        abstract: "Convert, reinstall or revert one host's OS through its staging OS, run a maintenance image, capture its OS; show the operation's state.",
        discussion: """
            The host agent's state machine (docs/AGENT.md) runs the operation step by step: preflight \
            (bundles verified, disks as expected, the image fits), capture of the host profile (network \
            configuration and keys), a one-shot boot into the staging OS, wipe and write of the original \
            disk, the profile rendered into the new OS in its own network-config format, a one-shot boot \
            into it, a health check, and only then the new OS as the default. Every step is persisted \
            with a status code and a timestamp (`shoal host status`), so an interrupted operation \
            continues where it stopped when the command is run again with the same --id.

            Drivers: `--lab HOSTDIR` drives an emulated lab host (disk-image files with real GPT and \
            ext4, a real GRUB environment block; see docs/HOSTLAB.md and docs/AGENT.md, "The lab \
            driver"). There the command also plays the firmware: at each reboot it boots the host with \
            the lab's GRUB rules and starts a new agent, until the operation has its outcome. \
            `--driver linux` drives the real host this runs on (docs/AGENT.md, "The linux driver"): \
            `--disk` and `--root-partition` name the original disk and its OS partition, `--staging` the \
            staging partition (`--staging-disk` its disk, by default the partition's parent), `--state` \
            the driver's and the agent's directory on the staging disk, and the boot loader is GRUB \
            (`grub-reboot`/`grub-set-default`, menu entries `--entry-base`, `--entry-target`, \
            `--entry-staging`), a GRUB environment file (`--grub-env FILE`) or UEFI (`--efi`, entries \
            by label). There the command runs the agent until the host reboots (`systemctl reboot`) \
            and exits 0 saying so; after the boot, run the same command with the same --id again to \
            continue (nothing starts it at boot by itself yet: a systemd unit is still to be written). \
            `shoal host lab-create` makes a lab host from bundles.

            Exit codes: 0 the operation succeeded; 1 it failed (the outcome and step log say where the \
            host was left); 2 refused before anything changed (4xx); 64 usage.
            """,
        subcommands: [
            HostConvertCommand.self, HostReinstallCommand.self, HostRevertCommand.self, HostMaintenanceCommand.self,
            HostCaptureCommand.self, HostStatusCommand.self,
            HostLabCreateCommand.self,
        ]
    )
}

/// Options every `shoal host` operation takes.
struct HostTargetOptions: ParsableArguments {
    @Option(name: .customLong("lab"), help: ArgumentHelp("Drive the emulated lab host in this directory (made by ShoalHostLab.LabHost.create).", valueName: "HOSTDIR"))
    var lab: String?

    @Option(help: ArgumentHelp(
        "The staging disk's data directory: the agent's state (DIR/agent) and the stored profile. Default: HOSTDIR/state.",
        valueName: "DIR"))
    var state: String?

    @Option(name: .customLong("lab-write"), help: ArgumentHelp(
        "How the lab driver writes images: imageFile (apply into a file, then copy into the partition; no root needed) or loopDevice (apply onto a loop device of the partition; root).",
        valueName: "METHOD"))
    var labWrite: LabDriver.WriteMethod = .imageFile

    @Option(help: ArgumentHelp("Order the operation through the coordinator at HOST:PORT instead of running it here (with --tls and --host).", valueName: "ADDR"))
    var coordinator: String?

    @Option(help: ArgumentHelp("With --coordinator: TLS directory with an operator certificate.", valueName: "OPS_TLS_DIR"))
    var tls: String?

    @Option(name: .customLong("host"), help: ArgumentHelp("With --coordinator: the host (as named in the topology) to run the operation on.", valueName: "NAME"))
    var hostName: String?

    /// `--coordinator ADDR --tls DIR --host NAME`, or nil for the local mode.
    func remote() throws -> (coordinator: String, tls: String, host: String)? {
        guard let coordinator else {
            if tls != nil || hostName != nil { throw CLIError(message: "--tls and --host go with --coordinator", code: 64) }
            return nil
        }
        guard lab == nil, state == nil, driver == nil else { throw CLIError(message: "--coordinator orders the host's own agent; --lab and --state are for the local mode", code: 64) }
        guard let tls, let hostName else { throw CLIError(message: "--coordinator needs --tls OPS_TLS_DIR and --host NAME", code: 64) }
        return (coordinator, tls, hostName)
    }

    @Option(help: ArgumentHelp("`linux`: drive the real host this runs on (needs --disk, --root-partition, --staging, --state).", valueName: "DRIVER"))
    var driver: String?

    @Option(help: ArgumentHelp("linux: the original disk (wiped and written).", valueName: "DEVICE"))
    var disk: String?

    @Option(name: .customLong("root-partition"), help: ArgumentHelp("linux: the original disk's OS partition.", valueName: "DEVICE"))
    var rootPartition: String?

    @Option(help: ArgumentHelp("linux: the staging partition (holding the base-OS copy).", valueName: "DEVICE"))
    var staging: String?

    @Option(name: .customLong("staging-disk"), help: ArgumentHelp("linux: the staging partition's disk (default: its parent, e.g. /dev/sdb for /dev/sdb1).", valueName: "DEVICE"))
    var stagingDisk: String?

    @Option(name: .customLong("grub-env"), help: ArgumentHelp("linux: edit this GRUB environment block with grub-editenv instead of grub-reboot/grub-set-default.", valueName: "FILE"))
    var grubEnv: String?

    @Option(name: .customLong("boot-directory"), help: ArgumentHelp("linux: --boot-directory for grub-reboot/grub-set-default (default /boot).", valueName: "DIR"))
    var bootDirectory: String?

    @Flag(help: "linux: UEFI boot entries (efibootmgr --bootnext/--bootorder) instead of GRUB.")
    var efi = false

    @Option(name: .customLong("entry-base"), help: ArgumentHelp("linux: boot entry (GRUB menu entry or UEFI label) of the original disk's OS before a write.", valueName: "NAME"))
    var entryBase = "base"

    @Option(name: .customLong("entry-target"), help: ArgumentHelp("linux: boot entry of the original disk's OS after the driver wrote it.", valueName: "NAME"))
    var entryTarget = "target"

    @Option(name: .customLong("entry-staging"), help: ArgumentHelp("linux: boot entry of the staging OS.", valueName: "NAME"))
    var entryStaging = "staging"

    var isLinux: Bool { driver == "linux" }

    func linuxDriver() throws -> LinuxDriver {
        guard driver == "linux" else { throw CLIError(message: "unknown driver '\(driver ?? "")' (known: linux; or --lab HOSTDIR)", code: 64) }
        guard lab == nil else { throw CLIError(message: "--driver linux and --lab exclude each other", code: 64) }
        guard let disk, let rootPartition, let staging, let state else {
            throw CLIError(message: "--driver linux needs --disk, --root-partition, --staging and --state", code: 64)
        }
        let bootLoader: LinuxBootLoader
        if efi {
            bootLoader = .efi
        } else if let grubEnv {
            bootLoader = .grubEnvFile(path: grubEnv, flavor: .grub)
        } else {
            bootLoader = .grub(bootDirectory: bootDirectory, flavor: .grub)
        }
        return LinuxDriver(configuration: LinuxDriverConfiguration(
            originalDisk: disk, originalPartition: rootPartition, stagingDisk: stagingDisk ?? Self.parentDisk(of: staging),
            stagingPartition: staging, bootLoader: bootLoader,
            entries: LinuxBootEntryNames(base: entryBase, target: entryTarget, staging: entryStaging), stateDirectory: state))
    }

    /// `/dev/sdb1` → `/dev/sdb`, `/dev/nvme0n1p3` → `/dev/nvme0n1`, `/dev/loop1p1` → `/dev/loop1`.
    static func parentDisk(of partition: String) -> String {
        var s = Substring(partition)
        while let last = s.last, last.isNumber { s = s.dropLast() }
        if s.last == "p", let before = s.dropLast().last, before.isNumber { s = s.dropLast() }
        return String(s)
    }

    func labDriver() throws -> LabDriver {
        guard let lab else {
            throw CLIError(
                message: "no driver: use --lab HOSTDIR for an emulated lab host, or the linux driver (--driver linux --disk … --root-partition … --staging … --state …) for this host",
                code: 64)
        }
        guard FileManager.default.fileExists(atPath: lab + "/grubenv"), FileManager.default.fileExists(atPath: lab + "/bootmenu") else {
            throw CLIError(message: "\(lab) is not a lab host directory (no grubenv or bootmenu)", code: 64)
        }
        return LabDriver(host: LabHost(directory: lab), stateDirectory: state, writeMethod: labWrite)
    }

    /// The agent's state directory without a driver (for `status`).
    func agentStateDirectory() throws -> String {
        if lab != nil { return try labDriver().agentStateDirectory }
        guard let state else {
            throw CLIError(message: "give --lab HOSTDIR or --state DIR", code: 64)
        }
        return state + "/agent"
    }
}

/// The options of convert, reinstall and revert.
struct HostOperationOptions: ParsableArguments {
    @OptionGroup var target: HostTargetOptions

    @Option(name: .customLong("staging-bundle"), help: ArgumentHelp(
        "The base-OS copy on the staging partition: a .shoal file (imported into the host's packed store) or a bundle id already there.",
        valueName: "BUNDLE"))
    var stagingBundle: String

    @Option(help: ArgumentHelp("The operation id (a re-run with the same id continues that operation). Default: KIND-<time>.", valueName: "ID"))
    var id: String?

    @Option(name: .customLong("health-timeout"), help: "Seconds the new OS has to report healthy.")
    var healthTimeout: Double = 600

    @Flag(help: "Print the final record as JSON instead of the step log.")
    var json = false

    @Flag(help: "With --coordinator: wait until the host reports the outcome (default: return once the coordinator holds the order).")
    var wait = false
}

/// Resolves a bundle argument: an existing file is imported into the packed store; otherwise
/// it must be the id of a bundle there.
func resolveBundle(_ argument: String, _ driver: LabDriver) throws -> String {
    try resolveBundle(argument, into: driver.packedStore)
}

func resolveBundle(_ argument: String, _ driver: LinuxDriver) throws -> String {
    try resolveBundle(argument, into: driver.packedStore)
}

func resolveBundle(_ argument: String, into store: PackedBundleStore) throws -> String {
    guard FileManager.default.fileExists(atPath: argument) else { return argument }
    do { return try store.importBundle(from: argument) } catch { throw CLIError(message: "\(argument): \(error)", code: 2) }
}

func runHostOperation(kind: OperationKind, options: HostOperationOptions, targetBundle: String?) throws {
    if let remote = try options.target.remote() {
        return try orderHostOperation(kind: kind, options: options, targetBundle: targetBundle, remote: remote)
    }
    if options.target.isLinux { return try runLinuxHostOperation(kind: kind, options: options, targetBundle: targetBundle) }
    let driver = try options.target.labDriver()
    let staging = try resolveBundle(options.stagingBundle, driver)
    let target = try targetBundle.map { try resolveBundle($0, driver) }
    let id = options.id ?? "\(kind)-\(ISO8601DateFormatter().string(from: Date()))"
    let request = OperationRequest(
        id: id, kind: kind,
        parameters: OperationParameters(stagingBundle: staging, targetBundle: target, healthTimeoutSeconds: options.healthTimeout))
    try runLabOperation(request, driver: driver, json: options.json)
}

/// Runs `request` on a lab host: accept it (or find the same id again), then play the firmware at
/// every reboot until the outcome.
func runLabOperation(_ request: OperationRequest, driver: LabDriver, json: Bool) throws {
    let record: OperationRecord = try cliErrors { try runBlocking {
        let machine = try LabMachine(host: driver.host, labDriver: driver)
        let first = try machine.powerOnIfOff()
        if !json { Terminal.note("lab host \(driver.host.directory) runs \(first.entry): \(first.osRelease)") }
        do {
            _ = try await machine.agent().accept(request)
        } catch let error as AgentError {
            throw CLIError(message: error.description, code: error.isRefusal ? 2 : 1)
        }
        return try await machine.resume { boot in
            if !json { Terminal.note("reboot: the firmware booted \(boot.entry) (\(boot.source)): \(boot.osRelease)") }
        }
    } }
    if json {
        print(try recordJSON(record))
    } else {
        printRecord(record)
    }
    guard let outcome = record.outcome, outcome.result == .succeeded else {
        let code = record.outcome?.code ?? 0
        throw ExitCode((400..<500).contains(code) ? 2 : 1)
    }
}

/// The same with the `linux` driver on this host: accept (or find the same id again), run the
/// agent until the outcome or a reboot.
func runLinuxHostOperation(kind: OperationKind, options: HostOperationOptions, targetBundle: String?) throws {
    let driver = try options.target.linuxDriver()
    let staging = try resolveBundle(options.stagingBundle, driver)
    let target = try targetBundle.map { try resolveBundle($0, driver) }
    let id = options.id ?? "\(kind)-\(ISO8601DateFormatter().string(from: Date()))"
    let request = OperationRequest(
        id: id, kind: kind,
        parameters: OperationParameters(stagingBundle: staging, targetBundle: target, healthTimeoutSeconds: options.healthTimeout))
    try runLinuxOperation(request, driver: driver, json: options.json)
}

/// Runs `request` on this host with the linux driver, until the outcome or a reboot.
func runLinuxOperation(_ request: OperationRequest, driver: LinuxDriver, json: Bool) throws {
    try FileManager.default.createDirectory(atPath: driver.agentStateDirectory, withIntermediateDirectories: true)
    let result: AgentRunResult = try cliErrors { try runBlocking {
        let store = try FileOperationStore(directory: driver.agentStateDirectory)
        let agent = Agent(driver: driver, store: store)
        do {
            _ = try await agent.accept(request)
            return try await agent.resume()
        } catch let error as AgentError {
            throw CLIError(message: error.description, code: error.isRefusal ? 2 : 1)
        }
    } }
    switch result {
    case .idle:
        print("no operation to run")
    case .rebooting(let record):
        if json { print(try recordJSON(record)) } else {
            printRecord(record)
            print("the host is rebooting (`systemctl reboot`); after the boot, run this command again with --id \(record.id) to continue")
        }
    case .finished(let record):
        if json { print(try recordJSON(record)) } else { printRecord(record) }
        guard let outcome = record.outcome, outcome.result == .succeeded else {
            let code = record.outcome?.code ?? 0
            throw ExitCode((400..<500).contains(code) ? 2 : 1)
        }
    }
}

struct HostConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Replace the host's OS with the target OS, keeping its address and keys.",
        discussion: """
            Starts in the base OS (on the original disk). Needs the staging bundle (the base-OS copy \
            already written onto the staging partition) and the target bundle, both verified in the \
            host's packed store. Ends with the target as the default boot, or, on failure, with the \
            host bootable in the base or staging OS and the reason in the step log.
            """)
    @OptionGroup var options: HostOperationOptions
    @Option(name: .customLong("target-bundle"), help: ArgumentHelp("The OS to write onto the original disk (.shoal file or bundle id).", valueName: "BUNDLE"))
    var targetBundle: String

    func run() throws {
        try reportingErrors { try runHostOperation(kind: .convert, options: options, targetBundle: targetBundle) }
    }
}

struct HostReinstallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reinstall",
        abstract: "Write the target OS onto the original disk again, through the staging OS.",
        discussion: "From the target OS, or from the staging OS after a failed conversion (then the stored profile is used).")
    @OptionGroup var options: HostOperationOptions
    @Option(name: .customLong("target-bundle"), help: ArgumentHelp("The OS to write (.shoal file or bundle id).", valueName: "BUNDLE"))
    var targetBundle: String

    func run() throws {
        try reportingErrors { try runHostOperation(kind: .reinstall, options: options, targetBundle: targetBundle) }
    }
}

struct HostRevertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revert",
        abstract: "Reclaim the host with the base OS: write the staging bundle (the base-OS copy) onto the original disk.",
        discussion: "The host keeps its address and keys; the network configuration is rendered in the base OS's format.")
    @OptionGroup var options: HostOperationOptions

    func run() throws {
        try reportingErrors { try runHostOperation(kind: .revert, options: options, targetBundle: nil) }
    }
}

struct HostStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the host's current (or last) operation: its state and the step log.",
        discussion: """
            Each log line: time, status code, step (and attempt), status, message. Codes: 100 started, \
            200 done, 201 done (already reached after a power loss), 204 skipped after a failure, 300 \
            re-queued after a power loss, 4xx refused with nothing changed, 5xx failed, 6xx state store \
            (docs/AGENT.md, "The step log").
            """)
    @OptionGroup var target: HostTargetOptions
    @Option(help: "Show this operation (current or in the history) instead of the current one.")
    var id: String?
    @Flag(help: "Print the record as JSON.")
    var json = false

    func run() throws {
        try reportingErrors {
            if let remote = try target.remote() {
                let status = try remoteOperationStatus(remote)
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try encoder.encode(status), as: UTF8.self))
                } else {
                    printOperationStatus(status)
                }
                return
            }
            let directory = try target.agentStateDirectory()
            let record: OperationRecord?
            do {
                let store = try FileOperationStore(directory: directory)
                record = try id.map { try store.record(id: $0) } ?? store.load()
            } catch let error as AgentError {
                throw CLIError(message: error.description, code: 1)
            }
            guard let record else {
                if json { print("null") } else { print("no operation on this host (\(directory))") }
                return
            }
            if json { print(try recordJSON(record)) } else { printRecord(record) }
        }
    }
}

// MARK: Output

func recordJSON(_ record: OperationRecord) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.dateEncodingStrategy = .custom { date, encoder in
        var c = encoder.singleValueContainer()
        try c.encode(isoTime(date))
    }
    return String(decoding: try encoder.encode(record), as: UTF8.self)
}

func isoTime(_ date: Date) -> String {
    let f = ISO8601DateFormatter()
    f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return f.string(from: date)
}

func printRecord(_ record: OperationRecord) {
    let state: String
    if let o = record.outcome {
        state = "\(o.result.rawValue) (code \(o.code)) — host left in \(o.hostLeftIn): \(o.message)"
    } else {
        state = "running, at \(record.currentStepName)"
    }
    print("operation \(record.id) (\(record.kind)), started in \(record.startedIn) at \(isoTime(record.createdAt))")
    print("state: \(state)")
    print("log:")
    for entry in record.log {
        let attempt = entry.attempt > 1 ? " #\(entry.attempt)" : ""
        print("  \(isoTime(entry.at))  \(entry.code)  \(entry.step)\(attempt) \(entry.status.rawValue): \(entry.message)")
    }
    let timed = record.steps.compactMap { s -> String? in
        guard let a = s.startedAt, let b = s.finishedAt else { return nil }
        return "\(s.step.id) \(String(format: "%.3f", b.timeIntervalSince(a)))s"
    }
    if !timed.isEmpty { print("step times: " + timed.joined(separator: ", ")) }
}

/// Runs async work from a synchronous command (the root command is not async).
func runBlocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = BlockingBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

/// The result slot of `runBlocking` (written by the task before it signals, read after the wait).
final class BlockingBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

extension LabDriver.WriteMethod: ExpressibleByArgument {}

/// Turns the agent's, the lab's and the drivers' errors into one-line CLI errors (exit 2 for a
/// refusal with nothing changed, 1 otherwise).
func cliErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as CLIError {
        throw error
    } catch let error as AgentError {
        throw CLIError(message: error.description, code: error.isRefusal ? 2 : 1)
    } catch let error as HostLabError {
        throw CLIError(message: "lab host: \(error)", code: 1)
    } catch let error as LabDriverError {
        throw CLIError(message: "lab driver: \(error)", code: 1)
    } catch let error as LinuxHostDriverError {
        throw CLIError(message: "linux driver: \(error)", code: 1)
    } catch let error as LinuxDriverError {
        throw CLIError(message: "linux driver: \(error)", code: 1)
    } catch let error as LinuxCommandError {
        throw CLIError(message: "linux driver: \(error)", code: 1)
    }
}

struct HostLabCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lab-create",
        abstract: "Make an emulated lab host from bundles: the base OS on its original disk, the staging bundle on its staging partition.",
        discussion: """
            HOSTDIR gets disk0.img (GPT: esp + root holding the base OS), disk1.img (GPT: staging, \
            holding the staging bundle's image, written with the same apply path the agent uses), a \
            GRUB environment block, the boot menu, the packed store (bundles/) and, with --ip-address \
            and --ip-route, what `ip -j address show` / `ip -j route show` would print on the host (a lab \
            host has no NIC; without them the profile carries files, hostname and keys only). The \
            bundles must hold ext4 images of an OS (an /etc/os-release). The host is powered on.
            """)

    @Option(name: .customLong("lab"), help: ArgumentHelp("The host directory to create.", valueName: "HOSTDIR"))
    var lab: String
    @Option(name: .customLong("base-bundle"), help: ArgumentHelp("The OS on the original disk (a .shoal file).", valueName: "FILE"))
    var baseBundle: String
    @Option(name: .customLong("staging-bundle"), help: ArgumentHelp("The base-OS copy for the staging partition (a .shoal file). Default: the base bundle.", valueName: "FILE"))
    var stagingBundle: String?
    @Option(name: .customLong("bundle"), help: ArgumentHelp("Also import this bundle into the packed store (e.g. a target OS); repeatable.", valueName: "FILE"))
    var extraBundles: [String] = []
    @Option(name: .customLong("disk-size"), help: ArgumentHelp("Size of each disk in MiB.", valueName: "MIB"))
    var diskSizeMiB: UInt64 = 64
    @Option(name: .customLong("root-size"), help: ArgumentHelp("Size of the root partition in MiB (default: the rest of disk0; smaller leaves room to grow).", valueName: "MIB"))
    var rootSizeMiB: UInt64?
    @Option(name: .customLong("ip-address"), help: ArgumentHelp("A file with `ip -j address show` output for the host.", valueName: "FILE"))
    var ipAddress: String?
    @Option(name: .customLong("ip-route"), help: ArgumentHelp("A file with `ip -j route show` output for the host.", valueName: "FILE"))
    var ipRoute: String?

    func run() throws {
        try reportingErrors {
            try cliErrors {
                guard !FileManager.default.fileExists(atPath: lab + "/disk0.img") else {
                    throw CLIError(message: "\(lab) already holds a lab host", code: 64)
                }
                // The base OS goes onto disk0 as a bundle unpacks to: apply it into an image file first.
                try FileManager.default.createDirectory(atPath: lab, withIntermediateDirectories: true)
                let baseImage = lab + "/.base-image"
                defer { unlink(baseImage); unlink(baseImage + ".shoal-resume") }
                var options = BundleApplier.Options()
                options.resumePath = baseImage + ".shoal-resume"
                _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: baseBundle), to: baseImage)
                var layout = LabHost.Layout()
                layout.disk0Size = diskSizeMiB << 20
                layout.disk1Size = diskSizeMiB << 20
                layout.rootSize = rootSizeMiB.map { $0 << 20 }
                let host = try LabHost.create(at: lab, baseImage: baseImage, stagingImage: nil, layout: layout)
                let driver = LabDriver(host: host)
                let stagingID = try driver.importBundle(from: stagingBundle ?? baseBundle)
                if stagingBundle != nil { try driver.importBundle(from: baseBundle) }
                for extra in extraBundles { print("imported \(try driver.importBundle(from: extra)) from \(extra)") }
                try driver.installStagingBundle(stagingID)
                for (source, name) in [(ipAddress, "ip-address.json"), (ipRoute, "ip-route.json")] {
                    guard let source else { continue }
                    try FileManager.default.createDirectory(atPath: lab + "/net", withIntermediateDirectories: true)
                    try FileManager.default.copyItem(atPath: source, toPath: lab + "/net/" + name)
                }
                let booted = try host.boot()
                print("lab host \(lab): runs \(booted.entry): \(booted.osRelease)")
                print("staging bundle \(stagingID) on the staging partition; packed store \(driver.bundleDirectory)")
            }
        }
    }
}

/// Options of `maintenance` and `capture`: where, which id, how to print.
struct HostSimpleOperationOptions: ParsableArguments {
    @OptionGroup var target: HostTargetOptions

    @Option(help: ArgumentHelp("The operation id (a re-run with the same id continues that operation). Default: KIND-<time>.", valueName: "ID"))
    var id: String?

    @Flag(help: "Print the final record as JSON instead of the step log.")
    var json = false

    func run(_ kind: OperationKind, _ parameters: (_ resolve: (String) throws -> String) throws -> OperationParameters) throws {
        guard target.coordinator == nil else {
            throw CLIError(message: "\(kind) is not ordered through the coordinator yet; run it on the host (--lab HOSTDIR or --driver linux)", code: 64)
        }
        let id = self.id ?? "\(kind)-\(ISO8601DateFormatter().string(from: Date()))"
        if target.isLinux {
            let driver = try target.linuxDriver()
            let params = try parameters { try resolveBundle($0, driver) }
            return try runLinuxOperation(OperationRequest(id: id, kind: kind, parameters: params), driver: driver, json: json)
        }
        let driver = try target.labDriver()
        let params = try parameters { try resolveBundle($0, driver) }
        try runLabOperation(OperationRequest(id: id, kind: kind, parameters: params), driver: driver, json: json)
    }
}

struct HostMaintenanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maintenance",
        abstract: "Boot a maintenance image once, watch it until it is done, then boot the original OS again.",
        discussion: """
            The maintenance bundle is written to the maintenance partition and booted once (a \
            one-shot boot). The agent in the image watches its job: --monitor active polls its status \
            (running, succeeded, failed in /var/lib/shoal/maintenance-status), --monitor passive waits \
            for the completion signal, both until --timeout. Then the original OS is made the boot \
            again and the host reboots into it; a maintenance image that fails or never finishes \
            still ends with the original OS booted and the reason in the step log.
            """)
    @OptionGroup var options: HostSimpleOperationOptions
    @Option(name: .customLong("maintenance-bundle"), help: ArgumentHelp("The maintenance image (.shoal file or bundle id).", valueName: "BUNDLE"))
    var maintenanceBundle: String
    @Option(help: "active (poll the image's status) or passive (wait for its completion signal).")
    var monitor = "passive"
    @Option(help: "Seconds between two looks at the image's status.")
    var interval: Double = 10
    @Option(help: "Seconds the maintenance image has to finish.")
    var timeout: Double = 3600

    func run() throws {
        try reportingErrors {
            let monitoring: MaintenanceMonitoring
            switch monitor {
            case "active": monitoring = .active(intervalSeconds: interval)
            case "passive": monitoring = .passive(intervalSeconds: interval)
            default: throw CLIError(message: "--monitor is active or passive, not \(monitor)", code: 64)
            }
            try options.run(.maintenance) { resolve in
                OperationParameters(maintenanceBundle: try resolve(maintenanceBundle), monitoring: monitoring, maintenanceTimeoutSeconds: timeout)
            }
        }
    }
}

struct HostCaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Make a bundle of the host's current OS, from its staging OS, and boot the OS again.",
        discussion: """
            Boots the staging OS once, packs the original disk's OS partition into a bundle named \
            --name in the host's packed store (the record names its bundle id), publishes it, and \
            boots the original OS again. The staging bundle must be the base-OS copy on the staging \
            partition, as for convert.
            """)
    @OptionGroup var options: HostSimpleOperationOptions
    @Option(name: .customLong("staging-bundle"), help: ArgumentHelp("The base-OS copy on the staging partition (.shoal file or bundle id).", valueName: "BUNDLE"))
    var stagingBundle: String
    @Option(help: "Name of the bundle to make.") var name: String

    func run() throws {
        try reportingErrors {
            try options.run(.capture) { resolve in
                OperationParameters(stagingBundle: try resolve(stagingBundle), captureName: name)
            }
        }
    }
}
