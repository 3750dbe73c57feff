import Foundation
import Glibc
import ShoalAgent
import ShoalHostLab
import ShoalHostProfile
import ShoalStorage
import ShoalTestKit
import Testing

@testable import ShoalHostDrivers

/// Full operations on a lab host: real GPT disk images, real ext4, a real GRUB environment block,
/// real Shoal bundles written with BundleApplier, the real agent and its file store.
@Suite(.serialized) struct LabDriverTests {
    @Test func convertsAlphaToBetaKeepingIdentity() async throws {
        let world = try LabWorld.make("driver-convert")
        defer { world.remove() }
        let before = try world.identity()
        #expect(try world.host.bootedOS().osRelease.id == "alpha")

        var boots: [String] = []
        let started = Date()
        let record = try await world.machine().run(world.request("convert-1", .convert)) { boots.append($0.entry) }
        let seconds = Date().timeIntervalSince(started)

        #expect(record.outcome?.result == .succeeded, "\(record.outcome.map { "\($0)" } ?? "no outcome")")
        #expect(record.outcome?.hostLeftIn == .target)
        #expect(boots == ["staging", "target"])
        // The firmware boots the target, by default now, and nothing is armed.
        let booted = try world.host.bootedOS()
        #expect(booted.entry == "target" && booted.osRelease.id == "beta")
        #expect(try world.host.env.value(GrubEnv.savedEntry) == "target")
        #expect(try world.host.env.value(GrubEnv.nextEntry) == nil)
        #expect(try world.host.firmware.nextChoice().entry == "target")
        // Identity carried over byte for byte.
        #expect(try world.identity() == before)
        // The network config in beta's own format (netplan), matched by MAC, with the old address.
        let netplan = String(decoding: try world.running("/etc/netplan/90-shoal.yaml"), as: UTF8.self)
        #expect(netplan.contains(LabWorld.mac) && netplan.contains("\(LabWorld.address)/24"))
        #expect(try world.host.filesystem("target").info("/etc/netplan/90-shoal.yaml")?.permissions == 0o600)
        // beta's own netplan file was moved aside, not left to compete.
        #expect(try world.host.filesystem("target").exists("/etc/netplan/01-shoal-lab.yaml") == false)
        #expect(try world.host.filesystem("target").exists("/var/lib/shoal/network-config-disabled/etc/netplan/01-shoal-lab.yaml"))
        // The staging OS got the profile too, in its own format (ifupdown).
        let stagingIfaces = try world.host.readText("staging", "/etc/network/interfaces")
        #expect(stagingIfaces.contains(LabWorld.address))
        // Both file systems are clean after all the debugfs writes.
        #expect(try world.host.filesystem("target").check() == nil)
        #expect(try world.host.filesystem("staging").check() == nil)
        // One 100 and one 200 per step, every step done.
        #expect(record.steps.allSatisfy { $0.status == .done })
        #expect(record.log.filter { $0.code == StepLogCode.started }.count == record.steps.count)

        // The health check looks at the disks: tampering with the rendered config is noticed.
        #expect(try await world.driver.checkHealth().healthy)
        try world.host.writeText("target", "/etc/netplan/90-shoal.yaml", "network:\n  version: 2\n", mode: 0o600)
        let tampered = try await world.driver.checkHealth()
        #expect(!tampered.healthy && tampered.detail.contains("/etc/netplan/90-shoal.yaml"))

        let timings = stepTimings(record).map { "\($0.0)=\(String(format: "%.3f", $0.1))s" }.joined(separator: " ")
        let writes = world.driver.writeLog()
        #expect(writes.map(\.entry) == ["staging", "original"])
        let w = try #require(writes.last)
        #expect(w.bundle == world.betaBundle && w.imageBytes == 20 * mib && w.partitionBytesWritten > 0)
        print("lab convert: \(String(format: "%.2f", seconds)) s total; steps: \(timings)")
        print("lab convert: target image \(w.imageBytes) B from a \(w.bundleBytes) B bundle; apply wrote \(w.applyBytesWritten) B in \(String(format: "%.3f", w.applySeconds)) s, copy wrote \(w.partitionBytesWritten) B in \(String(format: "%.3f", w.copySeconds)) s")
    }

    /// The same convert with images applied straight onto loop devices of the partitions (root only).
    @Test(.enabled(if: getuid() == 0 && ChildProcess.which("losetup") != nil))
    func convertsWritingThroughLoopDevices() async throws {
        let world = try LabWorld.make("driver-loop", writeMethod: .loopDevice)
        defer { world.remove() }
        let before = try world.identity()
        let record = try await world.machine().run(world.request("convert-loop", .convert))
        #expect(record.outcome?.result == .succeeded, "\(record.outcome.map { "\($0)" } ?? "no outcome")")
        #expect(try world.host.bootedOS().osRelease.id == "beta")
        #expect(try world.identity() == before)
        #expect(try world.host.filesystem("target").check() == nil)
        let writes = world.driver.writeLog()
        #expect(writes.map(\.method) == [.loopDevice, .loopDevice])
        #expect(writes.map(\.entry) == ["staging", "original"])
        // Every loop device was detached again.
        let attached = try ChildProcess.sh("losetup -j \(world.host.disk0.path); losetup -j \(world.host.disk1.path)")
        #expect(attached.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(attached)")
    }

    /// The loop that runs the agent dies right after a reboot request (a killed `shoal host`):
    /// the next loop carries the reboot out, as a real host would have rebooted anyway, and no
    /// trial boot is lost.
    @Test func aPendingRebootIsCarriedOutByTheNextLoop() async throws {
        let world = try LabWorld.make("driver-pending")
        defer { world.remove() }
        let machine = try world.machine()
        _ = try await machine.agent().accept(world.request("convert-r", .convert))
        guard case .rebooting = try await machine.agent().resume() else { Issue.record("expected a reboot"); return }
        #expect(try world.host.bootedOS().entry == "base")  // nobody booted it
        var boots: [String] = []
        let record = try await world.machine().resume { boots.append($0.entry) }
        #expect(boots == ["staging", "target"])
        #expect(record.outcome?.result == .succeeded)
        #expect(record.steps.allSatisfy { $0.attempt == 1 })
    }

    @Test func convertsThenRevertsToAlpha() async throws {
        let world = try LabWorld.make("driver-revert")
        defer { world.remove() }
        let before = try world.identity()
        let machine = try world.machine()
        let converted = try await machine.run(world.request("convert-1", .convert))
        #expect(converted.outcome?.result == .succeeded)
        #expect(try world.host.bootedOS().osRelease.id == "beta")

        let reverted = try await machine.run(world.request("revert-1", .revert))
        #expect(reverted.outcome?.result == .succeeded, "\(reverted.outcome.map { "\($0)" } ?? "no outcome")")
        let booted = try world.host.bootedOS()
        #expect(booted.osRelease.id == "alpha" && booted.entry == "target")
        #expect(try world.identity() == before)
        // Rendered back in alpha's format (ifupdown), from the profile captured in beta.
        let interfaces = try world.host.readText("target", "/etc/network/interfaces")
        #expect(interfaces.contains("address \(LabWorld.address)"))
        #expect(try world.host.filesystem("target").check() == nil)
        #expect(try machine.store.history().map(\.id) == ["convert-1"])
    }

    @Test func corruptTargetBundleIsRefusedAtPreflightWithNothingChanged() async throws {
        let world = try LabWorld.make("driver-corrupt")
        defer { world.remove() }
        let path = world.driver.bundlePath(world.betaBundle)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! UInt64
        try TestBundles.flipBit(in: path, at: size / 3)
        let env = try world.host.env.variables()
        let disk0 = try TestData.read(world.host.disk0.path)
        let bootLog = world.host.bootLog()

        let record = try await world.machine().run(world.request("convert-bad", .convert))
        #expect(record.outcome?.result == .failed)
        #expect(record.outcome?.code == 403)
        #expect(record.outcome?.hostLeftIn == .base)
        #expect(record.failure?.step == .preflight)
        #expect(try world.host.env.variables() == env)
        #expect(try TestData.read(world.host.disk0.path) == disk0)
        #expect(world.host.bootLog() == bootLog)
        #expect(!FileManager.default.fileExists(atPath: world.driver.profilePath))
    }

    @Test(arguments: [
        (InterruptingDriver.StepPoint.wipe, false), (.writeImage, false), (.writeImage, true), (.renderTarget, true),
    ])
    func agentKilledMidWayContinuesAfterPowerCycle(point: InterruptingDriver.StepPoint, afterAction: Bool) async throws {
        let world = try LabWorld.make("driver-killed")
        defer { world.remove() }
        let before = try world.identity()
        let faulty = try world.machine(driver: InterruptingDriver(world.driver, at: point, afterAction: afterAction))
        await #expect(throws: AgentError.self) { _ = try await faulty.run(world.request("convert-k", .convert)) }
        let stopped = try #require(try faulty.store.load())
        #expect(stopped.outcome == nil)

        // Power cycle: the firmware boots the default (staging, made default before the wipe),
        // and a new agent on the same store carries on.
        world.host.powerOff()
        let booted = try world.host.boot()
        #expect(booted.entry == "staging")
        let record = try await world.machine().resume()
        #expect(record.outcome?.result == .succeeded, "\(record.outcome.map { "\($0)" } ?? "no outcome")")
        #expect(try world.host.bootedOS().osRelease.id == "beta")
        #expect(try world.identity() == before)
        #expect(try world.host.filesystem("target").check() == nil)
    }
}

@Suite(.serialized) struct LabDriverFaultTests {
    /// The driver refuses to wipe, write or grow the partition the host runs from.
    @Test func refusesTheRunningSystem() async throws {
        let world = try LabWorld.make("driver-refuse")
        defer { world.remove() }
        #expect(try await world.driver.bootedEntry() == .original)
        let disk0 = try TestData.read(world.host.disk0.path)
        await #expect(throws: LabDriverError.self) { try await world.driver.wipeOriginalDisk() }
        await #expect(throws: LabDriverError.self) {
            try await world.driver.writeImage(bundle: world.betaBundle, to: .original, deadline: .distantFuture)
        }
        await #expect(throws: LabDriverError.self) { try await world.driver.growPartition(.original, toBytes: 80 * mib) }
        #expect(try TestData.read(world.host.disk0.path) == disk0)
        // Booted into staging, the staging partition is the protected one.
        try world.host.env.setOneShot("staging")
        try world.host.boot()
        #expect(throws: LabDriverError.self) { try world.driver.installStagingBundle(world.alphaBundle) }

        // From staging: a write whose deadline has passed gives up (501) and a later call finishes it.
        try await world.driver.wipeOriginalDisk()
        do {
            try await world.driver.writeImage(bundle: world.betaBundle, to: .original, deadline: Date().addingTimeInterval(-1))
            Issue.record("a write past its deadline returned normally")
        } catch let error as AgentError {
            #expect(error.code == 501, "\(error)")
        }
        #expect(throws: HostLabError.self) { try world.host.disk0.filesystem(in: "root").osReleaseText() }  // still wiped
        try await world.driver.writeImage(bundle: world.betaBundle, to: .original, deadline: .distantFuture)
        #expect(try world.host.osRelease("target").id == "beta")
    }

    /// A root partition with free space after it, and a target image larger than the partition:
    /// preflight plans the growth, the staging OS grows the real GPT partition, then writes.
    @Test func growsTheRootPartitionForALargerTarget() async throws {
        var layout = LabHost.Layout()
        layout.rootSize = 24 * mib
        let world = try LabWorld.make("driver-grow", layout: layout, betaSize: 40 * mib)
        defer { world.remove() }
        #expect(try world.host.disk0.partition(named: "root").length == 24 * mib)
        let record = try await world.machine().run(world.request("convert-grow", .convert))
        #expect(record.outcome?.result == .succeeded, "\(record.outcome.map { "\($0)" } ?? "no outcome")")
        #expect(record.growth == PartitionGrowth(entry: .original, toBytes: 40 * mib))
        #expect(try world.host.disk0.partition(named: "root").length >= 40 * mib)
        #expect(try world.host.bootedOS().osRelease.id == "beta")
        #expect(try world.host.filesystem("target").check() == nil)
    }

    @Test func targetTooBigWithoutFreeSpaceIsRefused() async throws {
        var layout = LabHost.Layout()
        layout.rootSize = 24 * mib
        layout.disk0Size = 32 * mib
        let world = try LabWorld.make("driver-toobig", layout: layout, betaSize: 40 * mib)
        defer { world.remove() }
        let disk0 = try TestData.read(world.host.disk0.path)
        let record = try await world.machine().run(world.request("convert-big", .convert))
        #expect(record.outcome?.code == 405)
        #expect(record.outcome?.hostLeftIn == .base)
        #expect(try TestData.read(world.host.disk0.path) == disk0)
        #expect(try world.host.bootedOS().osRelease.id == "alpha")
    }

    /// A target that does not boot (no /etc/os-release): each one-shot into it falls back to the
    /// default (staging, since before the wipe); after three trials the operation fails 503 and
    /// the host stays in staging, with its profile, bootable.
    @Test func targetThatNeverBootsLeavesTheHostInStaging() async throws {
        let world = try LabWorld.make("driver-noboot", betaBoots: false)
        defer { world.remove() }
        let before = try world.identity()
        let record = try await world.machine().run(world.request("convert-noboot", .convert))
        #expect(record.outcome?.result == .failed)
        #expect(record.outcome?.code == 503, "\(record.outcome.map { "\($0)" } ?? "no outcome")")
        #expect(record.outcome?.hostLeftIn == .staging)
        let booted = try world.host.bootedOS()
        #expect(booted.entry == "staging" && booted.osRelease.id == "alpha")
        #expect(try world.host.env.value(GrubEnv.savedEntry) == "staging")
        #expect(try world.host.env.value(GrubEnv.nextEntry) == nil)
        #expect(world.host.bootLog().filter { $0.contains("no /etc/os-release") }.count == 3)
        // The staging OS carries the host's identity meanwhile.
        #expect(try world.identity() == before)
        #expect(try await world.driver.checkProfile(try #require(record.profile)) == .intact)

        // From staging, a reinstall with a good target finishes the job, with the stored profile.
        let good = try LabWorld.osTree(in: world.dir, id: "beta", hostname: "beta-default", stacks: [.netplan], files: [:], size: 20 * mib, tree: "tree-beta-good")
        let goodID = try world.driver.importBundle(from: try LabWorld.bundle(good, name: "beta-good", in: world.dir))
        var request = world.request("reinstall-good", .reinstall)
        request.parameters.targetBundle = goodID
        let reinstalled = try await world.machine().run(request)
        #expect(reinstalled.startedIn == .staging)
        #expect(reinstalled.outcome?.result == .succeeded, "\(reinstalled.outcome.map { "\($0)" } ?? "no outcome")")
        #expect(try world.host.bootedOS().osRelease.id == "beta")
        #expect(try world.identity() == before)
    }
}

@Suite(.serialized) struct LabDriverOtherKindsTests {
    /// capture: from the staging OS, a bundle of the original disk's OS; its image is exactly the
    /// base image (same image digest as alpha's bundle), and the host is back in alpha.
    @Test func capturesTheBaseOSIntoABundle() async throws {
        let world = try LabWorld.make("driver-capture")
        defer { world.remove() }
        let request = OperationRequest(
            id: "capture-1", kind: .capture,
            parameters: OperationParameters(stagingBundle: world.alphaBundle, captureName: "alpha-captured"))
        let record = try await world.machine().run(request)
        #expect(record.outcome?.result == .succeeded, "\(record.outcome.map { "\($0)" } ?? "no outcome")")
        let id = try #require(record.capturedBundle)
        #expect(world.driver.bundleState(id) == .verified(imageBytes: 20 * mib))
        let captured = try BundleFile(path: world.driver.bundlePath(id))
        let original = try BundleFile(path: world.driver.bundlePath(world.alphaBundle))
        #expect(captured.manifest.imageDigest == original.manifest.imageDigest)
        #expect(captured.manifest.name == "alpha-captured")
        let booted = try world.host.bootedOS()
        #expect(booted.entry == "base" && booted.osRelease.id == "alpha")
        #expect(try world.host.env.value(GrubEnv.nextEntry) == nil)
    }

    /// maintenance: the image is written to its partition, booted once, reports success through
    /// its status file, and the original is swapped back.
    @Test func runsAMaintenanceImageAndSwapsTheOriginalBack() async throws {
        var layout = LabHost.Layout()
        layout.maintenanceSize = 24 * mib
        let world = try LabWorld.make("driver-maint", layout: layout)
        defer { world.remove() }
        let image = try LabWorld.osTree(
            in: world.dir, id: "maint", hostname: "maint", stacks: [],
            files: ["/var/lib/shoal/maintenance-status": TreeFile(text: "succeeded\n")], size: 16 * mib, tree: "tree-maint")
        let bundle = try world.driver.importBundle(from: try LabWorld.bundle(image, name: "maint", in: world.dir))
        let request = OperationRequest(
            id: "maint-1", kind: .maintenance,
            parameters: OperationParameters(maintenanceBundle: bundle, monitoring: .active(intervalSeconds: 1), maintenanceTimeoutSeconds: 30))
        var boots: [String] = []
        let record = try await world.machine().run(request) { boots.append($0.entry) }
        #expect(record.outcome?.result == .succeeded, "\(record.outcome.map { "\($0)" } ?? "no outcome")")
        #expect(boots == ["maintenance", "base"])
        #expect(try world.host.bootedOS().osRelease.id == "alpha")
        #expect(try world.host.osRelease("maintenance").id == "maint")
    }
}

/// A power loss at every driver call that changes the host, before and after its action, during a
/// lab conversion; then the power comes back (the firmware boots what it would) and a new agent
/// carries on. Every run must end like the uninterrupted one.
@Suite struct LabPowerLossTests {
    @Test func powerLossAtEveryChangingCallOfAConvert() async throws {
        let base = try LabWorld.make("driver-powerloss")
        defer { base.remove() }
        let before = try base.identity()
        var cuts: [String] = []
        var run = 0
        for afterAction in [false, true] {
            var n = 0
            while true {
                run += 1
                let world = try base.anotherHost("host-\(run)")
                let cutter = PowerCutDriver(world.driver, cutAt: n, afterAction: afterAction)
                let faulty = try world.machine(driver: cutter)
                let label = "cut at change #\(n) \(afterAction ? "after" : "before") the action"
                do {
                    _ = try await faulty.run(world.request("convert-p", .convert))
                } catch let error as AgentError {
                    guard case .interrupted = error else { Issue.record("\(label): \(error)"); break }
                }
                guard let call = cutter.cutCall else {
                    // No n-th change: the whole convert ran; the sweep for this side is complete.
                    try? FileManager.default.removeItem(atPath: world.host.directory)
                    break
                }
                cuts.append("\(call)\(afterAction ? "+" : "-")")
                let machine = try world.machine()
                try machine.powerCycle()
                let record = try await machine.resume()
                #expect(record.outcome?.result == .succeeded, "\(label) (\(call)): \(record.outcome.map { "\($0)" } ?? "no outcome")")
                #expect(try world.host.bootedOS().osRelease.id == "beta", "\(label)")
                #expect(try world.identity() == before, "\(label)")
                #expect(try world.host.env.value(GrubEnv.savedEntry) == "target", "\(label)")
                #expect(try world.host.env.value(GrubEnv.nextEntry) == nil, "\(label)")
                #expect(try world.host.filesystem("target").check() == nil, "\(label)")
                // No reboot step instance was started twice.
                let rebootStarts = record.log.filter { $0.code == StepLogCode.started && "\($0.step)".hasPrefix("reboot") }
                #expect(Set(rebootStarts.map { "\($0.index)" }).count == rebootStarts.count, "\(label)")
                try? FileManager.default.removeItem(atPath: world.host.directory)
                n += 1
            }
        }
        print("lab power loss: \(cuts.count) interrupted converts: \(cuts.joined(separator: " "))")
        #expect(cuts.count >= 20)
    }
}
