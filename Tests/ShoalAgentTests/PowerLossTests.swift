import Foundation
import Testing

@testable import ShoalAgent

/// Pulls the plug at every step of every kind, before and after the step's action, then lets the
/// host boot and the agent start again until the operation ends. The end must be the one of an
/// uninterrupted run.
struct PowerLossTests {
    @Test(arguments: Scenario.all)
    func powerLossAtEveryStep(_ scenario: Scenario) async throws {
        let (baseline, baselineHost, _) = try await run(scenario)
        try #require(baseline.outcome?.result == .succeeded)
        let stepCount = baseline.steps.count
        var kills = 0
        for k in 0..<stepCount {
            for point in [KillPoint.beforeAction(step: k), .afterAction(step: k)] {
                let (record, host, store) = try await run(scenario, killAt: point)
                let context = "\(scenario.name), power loss \(point) (\(baseline.steps[k].step.id))"
                #expect(store.didFire, "\(context): the power loss did not happen")
                if store.didFire { kills += 1 }
                expectSameEnd(record, host, as: baseline, baselineHost, context)
            }
        }
        #expect(kills == 2 * stepCount)
    }

    /// Two power losses in a row (the second one lands on whatever the agent does two steps later,
    /// often a re-armed trial boot): the end is still the uninterrupted one.
    @Test(arguments: Scenario.all)
    func twoPowerLossesInARow(_ scenario: Scenario) async throws {
        let (baseline, baselineHost, _) = try await run(scenario)
        for k in 0..<baseline.steps.count {
            for kills in [
                [KillPoint.afterAction(step: k), .beforeAction(step: k + 2)],
                [KillPoint.beforeAction(step: k), .afterAction(step: k + 1)],
            ] {
                let (record, host, store) = try await run(scenario, killAt: kills)
                #expect(store.fired >= 1)
                expectSameEnd(record, host, as: baseline, baselineHost, "\(scenario.name), power losses \(kills)")
            }
        }
    }

    /// A failing operation is just as robust: the target never gets healthy, with a power loss at
    /// every step; it always ends failed, in the staging OS, with the profile intact.
    @Test func powerLossAtEveryStepOfAFailingConversion() async throws {
        let scenario = Scenario.all[0]
        let unhealthy: (inout FakeHost.State) -> Void = { $0.health = .never }
        let (baseline, baselineHost, _) = try await run(scenario, configure: unhealthy)
        try #require(baseline.outcome?.result == .failed)
        #expect(baseline.outcome?.hostLeftIn == .staging)
        for k in 0..<baseline.steps.count {
            for point in [KillPoint.beforeAction(step: k), .afterAction(step: k)] {
                let (record, host, _) = try await run(scenario, killAt: point, configure: unhealthy)
                expectSameEnd(record, host, as: baseline, baselineHost, "unhealthy target, power loss \(point)")
            }
        }
    }

    func expectSameEnd(
        _ record: OperationRecord, _ host: FakeHost, as baseline: OperationRecord, _ baselineHost: FakeHost,
        _ context: String
    ) {
        let s = host.snapshot
        let b = baselineHost.snapshot
        #expect(record.outcome?.result == baseline.outcome?.result, "\(context): \(record.outcome?.message ?? "")")
        #expect(record.outcome?.code == baseline.outcome?.code, "\(context)")
        #expect(record.outcome?.hostLeftIn == baseline.outcome?.hostLeftIn, "\(context)")
        #expect(s.booted == b.booted, "\(context)")
        #expect(s.defaultEntry == b.defaultEntry, "\(context)")
        #expect(s.oneShot == nil, "\(context)")
        #expect(s.content == b.content, "\(context)")
        #expect(s.rendered[.original] == b.rendered[.original], "\(context)")
        #expect(s.storedProfile == b.storedProfile && !s.storedProfileCorrupt, "\(context): profile")
        #expect(s.published == b.published, "\(context)")
        #expect(host.isBootable, "\(context): not bootable")
        // No reboot step instance rebooted twice: each has at most one `started` entry, and the
        // driver was asked to reboot at most once per reboot step instance.
        for (i, step) in record.steps.enumerated() where step.step.isReboot {
            let starts = record.log.filter { $0.index == i && $0.status == .started }.count
            #expect(starts <= 1, "\(context): reboot step \(step.step.id) #\(i) started \(starts) times")
        }
        #expect(s.rebootCalls <= record.steps.filter(\.step.isReboot).count, "\(context)")
        #expect(record.inconsistency == nil)
        #expect(record.steps.allSatisfy { $0.status.isFinished })
    }
}
