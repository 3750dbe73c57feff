import Foundation
import Testing

@testable import ShoalAgent

struct RunToCompletionTests {
    @Test(arguments: Scenario.all)
    func eachKindRunsToCompletion(_ scenario: Scenario) async throws {
        let (record, host, _) = try await run(scenario)
        let s = host.snapshot
        #expect(record.outcome?.result == .succeeded, "\(record.outcome?.message ?? "no outcome")")
        #expect(record.outcome?.code == 0)
        #expect(record.outcome?.hostLeftIn == scenario.expectedSystem)
        #expect(s.content[.original] == scenario.expectedOriginal)
        #expect(s.defaultEntry == .original)
        #expect(s.oneShot == nil)
        #expect(s.booted == .original)
        #expect(host.isBootable)
        if scenario.request.kind != .maintenance { #expect(s.storedProfile != nil && !s.storedProfileCorrupt) }
        if scenario.expectedSystem == .target { #expect(s.rendered[.original] == s.identity) }

        // Every step ran once: one `started` (100) and one `done` (200) entry each, in order.
        #expect(record.steps.allSatisfy { $0.status == .done && $0.attempt == 1 })
        #expect(record.log.count == 2 * record.steps.count)
        for (i, step) in record.steps.enumerated() {
            let entries = record.log.filter { $0.index == i }
            #expect(entries.map(\.code) == [StepLogCode.started, StepLogCode.done], "step \(step.step.id)")
            #expect(entries.map(\.status) == [.started, .done])
            #expect(entries.allSatisfy { $0.step == step.step.id && !$0.message.isEmpty })
        }
        #expect(zip(record.log, record.log.dropFirst()).allSatisfy { $0.at <= $1.at })
        // One driver reboot per reboot step.
        #expect(s.rebootCalls == record.steps.filter(\.step.isReboot).count)
    }

    @Test func convertFollowsTheTwoStageProcedure() async throws {
        let (record, host, _) = try await run(Scenario.all[0])
        #expect(record.steps.map(\.step.id) == [
            .preflight, .captureProfile, .renderProfileIntoStaging, .armStagingBoot, .rebootIntoStaging, .verifyStaging,
            .makeStagingDefault, .growPartition, .wipeOriginalDisk, .writeImage, .renderProfileIntoTarget, .armTargetBoot,
            .rebootIntoTarget, .healthCheck, .commitTarget,
        ])
        let m = host.snapshot.mutations
        // Staging becomes the default before the original disk is wiped; the target is made the
        // default only after it booted (once) and was healthy.
        let stagingDefault = try #require(m.firstIndex(of: "setDefaultBoot(staging)"))
        let wipe = try #require(m.firstIndex(of: "wipeOriginalDisk"))
        #expect(stagingDefault < wipe)
        #expect(m.last == "setDefaultBoot(original)")
        #expect(host.snapshot.bootHistory == [.original, .staging, .original])
    }

    @Test func maintenancePassiveMonitoringWaitsForTheSignal() async throws {
        var scenario = Scenario.all.first { $0.request.kind == .maintenance }!
        scenario.request.parameters.monitoring = .passive(intervalSeconds: 20)
        let (record, host, _) = try await run(scenario)
        #expect(record.outcome?.result == .succeeded)
        #expect(host.snapshot.maintenanceLooks == 3)
        #expect(host.snapshot.bootHistory == [.original, .maintenance, .original])
    }

    @Test func captureMakesAndPublishesABundle() async throws {
        let (record, host, _) = try await run(Scenario.all.first { $0.request.kind == .capture }!)
        #expect(record.capturedBundle == "captured-golden-osA")
        #expect(host.snapshot.published == ["captured-golden-osA"])
    }

    @Test func healthIsPolledUntilTheTargetReportsIn() async throws {
        let (record, host, _) = try await run(Scenario.all[0]) { $0.health = .healthyAfter(checks: 3) }
        #expect(record.outcome?.result == .succeeded)
        #expect(host.snapshot.healthChecks == 4)
    }
}
