import Foundation
import Testing

@testable import ShoalAgent

/// The faults of issue 4: each ends with the host bootable, the profile intact and a log that
/// says what happened.
struct FaultTests {
    let convert = Scenario.all[0]

    // MARK: Boots

    @Test func stagingBootNotTaking() async throws {
        let (record, host, _) = try await run(convert) { $0.firmwareIgnoresOneShot = [.staging] }
        let s = host.snapshot
        #expect(record.outcome?.result == .failed)
        #expect(record.outcome?.code == AgentError.stagingBootFailed(attempts: 3).code)
        #expect(record.outcome?.message == AgentError.stagingBootFailed(attempts: 3).description)
        #expect(record.outcome?.hostLeftIn == .base)
        // Still in OS A, untouched, profile intact, nothing armed.
        #expect(s.booted == .original && s.content[.original] == .os("osA") && s.defaultEntry == .original)
        #expect(s.oneShot == nil && s.storedProfile != nil && !s.storedProfileCorrupt)
        #expect(host.isBootable)
        #expect(!s.mutations.contains("wipeOriginalDisk"))
        // Three trials, each one reboot; the last failure ends it.
        #expect(record.steps.filter { $0.step.id == .rebootIntoStaging }.map(\.attempt) == [1, 2, 3])
        #expect(s.rebootCalls == 3)
        #expect(record.steps.last?.step.id == .disarmBoot && record.steps.last?.status == .done)
    }

    @Test func targetNeverHealthyFallsBackToStaging() async throws {
        let (record, host, _) = try await run(convert) { $0.health = .never }
        let s = host.snapshot
        #expect(record.outcome?.result == .failed)
        #expect(record.outcome?.code == 503)
        #expect(record.outcome?.hostLeftIn == .staging)
        #expect(s.booted == .staging && s.defaultEntry == .staging && s.oneShot == nil)
        #expect(s.storedProfile != nil && !s.storedProfileCorrupt && s.rendered[.staging] == s.identity)
        #expect(!s.mutations.contains("setDefaultBoot(original)"))
        #expect(host.isBootable)
        let health = try #require(record.steps.first { $0.step.id == .healthCheck })
        #expect(health.status == .failed)
        // The health check polled for its whole deadline (120 s).
        #expect(health.finishedAt!.timeIntervalSince(health.startedAt!) >= 120)
        // The failure was recorded in the target, the outcome by the agent in the staging OS.
        #expect(record.steps.last?.step.id == .returnReboot && record.steps.last?.status == .done)
    }

    @Test func targetThatHangsIsRetriedThenAbandoned() async throws {
        let (record, host, _) = try await run(convert) { $0.hangingOS = ["osB"] }
        let s = host.snapshot
        #expect(record.outcome?.code == AgentError.targetNotHealthy(attempts: 3, detail: "").code)
        #expect(record.outcome?.hostLeftIn == .staging)
        #expect(record.steps.filter { $0.step.id == .rebootIntoTarget }.count == 3)
        #expect(s.booted == .staging && s.defaultEntry == .staging && s.oneShot == nil)
        #expect(host.isBootable)
    }

    @Test func targetEntryThatDoesNotBootFallsBackToStaging() async throws {
        let (record, host, _) = try await run(convert) { $0.firmwareIgnoresOneShot = [.original] }
        #expect(record.outcome?.code == 503)
        #expect(record.outcome?.hostLeftIn == .staging)
        #expect(host.snapshot.defaultEntry == .staging)
        #expect(host.isBootable)
    }

    @Test func profileCorruptInStagingReturnsToTheBaseOS() async throws {
        let (record, host, _) = try await run(convert) { $0.profileCorruptsOnBooting = .staging }
        let s = host.snapshot
        #expect(record.outcome?.code == AgentError.profileCorrupt("").code)
        #expect(record.outcome?.hostLeftIn == .base)
        #expect(s.booted == .original && s.content[.original] == .os("osA") && s.defaultEntry == .original)
        #expect(!s.mutations.contains("wipeOriginalDisk"))
    }

    // MARK: Failing actions

    @Test func writeFailureLeavesTheHostInStaging() async throws {
        let (record, host, _) = try await run(convert) { $0.failOn["writeImage(original)"] = "I/O error on sda" }
        let s = host.snapshot
        #expect(record.outcome?.code == 500)
        #expect(record.outcome?.message.contains("I/O error on sda") == true)
        #expect(record.outcome?.hostLeftIn == .staging)
        #expect(s.booted == .staging && s.defaultEntry == .staging && s.oneShot == nil)
        #expect(host.isBootable)
    }

    @Test func stepReturningAfterItsTimeoutFails() async throws {
        let (record, host, _) = try await run(convert) { $0.slow["writeImage(original)"] = 8000 }
        #expect(record.outcome?.code == AgentError.stepTimedOut(step: .writeImage, seconds: 0).code)
        #expect(record.outcome?.hostLeftIn == .staging)
        #expect(host.isBootable)
    }

    @Test func maintenanceFailureSwapsTheOriginalBack() async throws {
        let maintenance = Scenario.all.first { $0.request.kind == .maintenance }!
        let (record, host, _) = try await run(maintenance) { $0.maintenanceScript = [.running, .failed("memtest: bank 2")] }
        let s = host.snapshot
        #expect(record.outcome?.code == 504)
        #expect(record.outcome?.message.contains("memtest: bank 2") == true)
        #expect(record.outcome?.hostLeftIn == .base)
        #expect(s.booted == .original && s.defaultEntry == .original && s.oneShot == nil)
    }

    @Test func maintenanceThatNeverFinishesTimesOut() async throws {
        let maintenance = Scenario.all.first { $0.request.kind == .maintenance }!
        let (record, host, _) = try await run(maintenance) { $0.maintenanceScript = [.running] }
        #expect(record.outcome?.code == 504)
        #expect(record.outcome?.hostLeftIn == .base)
        #expect(host.snapshot.booted == .original)
        #expect(host.manualClock.now().timeIntervalSince1970 >= 1_750_000_000 + 300)
    }

    // MARK: Refusals (nothing changes)

    func expectRefused(_ error: AgentError, _ configure: @escaping (inout FakeHost.State) -> Void) async throws {
        let (record, host, _) = try await run(convert, configure: configure)
        #expect(record.outcome?.result == .failed)
        #expect(record.outcome?.code == error.code, "\(record.outcome?.message ?? "")")
        #expect(record.outcome?.message == error.description)
        #expect(record.outcome?.hostLeftIn == .base)
        #expect(host.snapshot.mutations.isEmpty, "changed: \(host.snapshot.mutations)")
        #expect(record.steps.first?.status == .failed)
        #expect(record.steps.dropFirst().allSatisfy { $0.status == .skipped })
        #expect(record.log.filter { $0.code == StepLogCode.skipped }.count == record.steps.count - 1)
    }

    @Test func bundleMissing() async throws {
        try await expectRefused(.bundleMissing(bundle: "target-b")) { $0.bundles["target-b"] = nil }
    }

    @Test func bundleCorrupt() async throws {
        try await expectRefused(.bundleCorrupt(bundle: "target-b", detail: "chunk 17: sha256 mismatch")) {
            $0.bundles["target-b"]!.state = .corrupt("chunk 17: sha256 mismatch")
        }
    }

    @Test func bundleIncomplete() async throws {
        try await expectRefused(.bundleIncomplete(bundle: "staging-b", detail: "3 of 9 chunks")) {
            $0.bundles["staging-b"]!.state = .incomplete(have: 3, total: 9)
        }
    }

    @Test func unexpectedLayout() async throws {
        try await expectRefused(.unexpectedLayout("sdb has no GPT")) { $0.layoutProblem = "sdb has no GPT" }
    }

    @Test func targetTooBigWithoutFreeSpace() async throws {
        try await expectRefused(.imageTooBig(bundle: "target-b", imageBytes: 1500, partitionBytes: 1000, growableBytes: 200)) {
            $0.bundles["target-b"] = FakeBundle(os: "osB", imageBytes: 1500, state: .verified(imageBytes: 1500))
            $0.growable[.original] = 200
        }
    }

    @Test func targetTooBigGrowsIntoFreeSpace() async throws {
        let (record, host, _) = try await run(convert) {
            $0.bundles["target-b"] = FakeBundle(os: "osB", imageBytes: 1500, state: .verified(imageBytes: 1500))
            $0.growable[.original] = 600
        }
        let s = host.snapshot
        #expect(record.outcome?.result == .succeeded)
        #expect(record.growth == PartitionGrowth(entry: .original, toBytes: 1500))
        #expect(s.size[.original] == 1500 && s.growable[.original] == 100)
        #expect(s.content[.original] == .os("osB"))
        let grow = try #require(record.steps.first { $0.step.id == .growPartition })
        #expect(grow.message == "original partition grown to 1500 bytes")
        // Grown from the staging OS, after the original disk stopped being the default.
        let m = s.mutations
        #expect(m.firstIndex(of: "setDefaultBoot(staging)")! < m.firstIndex(of: "growPartition(original)")!)
    }

    @Test func convertCannotStartInStaging() async throws {
        let host = FakeHost(Scenario.leftInStaging)
        let store = try FileOperationStore(directory: temporaryStoreDirectory())
        let agent = Agent(driver: host, store: store, clock: ManualClock())
        await #expect(throws: AgentError.wrongStartingSystem(kind: .convert, booted: .staging)) {
            try await agent.accept(Scenario.request(.convert))
        }
        #expect(try store.load() == nil)
    }

    @Test func reinstallFromStagingNeedsAStoredProfile() async throws {
        let scenario = Scenario.all.first { $0.name == "reinstall from staging" }!
        let (record, host, _) = try await run(scenario) { $0.storedProfileCorrupt = true }
        #expect(record.outcome?.code == 406)
        #expect(record.outcome?.hostLeftIn == .staging)
        #expect(host.snapshot.mutations.isEmpty)
    }

    @Test func invalidRequestIsRefused() async throws {
        let store = try FileOperationStore(directory: temporaryStoreDirectory())
        let agent = Agent(driver: FakeHost(), store: store, clock: ManualClock())
        var request = Scenario.request(.convert)
        request.parameters.targetBundle = nil
        await #expect(throws: AgentError.invalidRequest("convert needs a target bundle")) { try await agent.accept(request) }
        #expect(try store.load() == nil)
    }

    // MARK: The host lock

    @Test func secondOperationWhileOneRunsIsRefused() async throws {
        let host = FakeHost()
        let clock = ManualClock()
        let store = try FileOperationStore(directory: temporaryStoreDirectory())
        let agent = Agent(driver: host, store: store, clock: clock)
        _ = try await agent.accept(Scenario.request(.convert))
        let other = Scenario.request(.maintenance, id: "maint-1")
        await #expect(throws: AgentError.operationInProgress(id: "op-convert", kind: .convert, step: "preflight#1")) {
            try await agent.accept(other)
        }
        // Still refused mid-way, by a new agent after the reboot, naming where the first one stands.
        guard case .rebooting = try await agent.resume() else { Issue.record("expected a reboot"); return }
        host.powerCycle()
        let agent2 = Agent(driver: host, store: store, clock: clock)
        do {
            _ = try await agent2.accept(other)
            Issue.record("accepted a second operation")
        } catch {
            #expect(error == .operationInProgress(id: "op-convert", kind: .convert, step: "rebootIntoStaging#1"))
            #expect(error.description.contains("op-convert") && error.description.contains("rebootIntoStaging"))
        }
        // The same order sent again is the same operation, not a second one.
        let again = try await agent2.accept(Scenario.request(.convert))
        #expect(again.id == "op-convert" && again.steps[4].status == .started)

        let finished = try await driveToEnd(host, store: store, clock: clock)
        #expect(finished.outcome?.result == .succeeded)
        // Once finished, the host is free; the finished record moves to the history.
        let next = try await Agent(driver: host, store: store, clock: clock).accept(other)
        #expect(next.id == "maint-1")
        #expect(try store.history().map(\.id) == ["op-convert"])
        // A finished operation sent again is reported, not run again (even while another runs).
        let repeated = try await Agent(driver: host, store: store, clock: clock).accept(Scenario.request(.convert))
        #expect(repeated == finished)
        #expect(try store.load()?.id == "maint-1")
        // The same id with other parameters is refused.
        var changed = other
        changed.parameters.maintenanceTimeoutSeconds = 5
        await #expect(throws: AgentError.self) { try await Agent(driver: host, store: store, clock: clock).accept(changed) }
    }
}
