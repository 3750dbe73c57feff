import Testing

@testable import ShoalAgent

/// Properties every plan must have, checked over all kinds and starting systems.
struct PlanTests {
    static let plans: [(String, [PlannedStep])] = {
        var out: [(String, [PlannedStep])] = []
        for kind in OperationKind.allCases {
            for start in BootEntry.allCases {
                if let steps = try? OperationPlan.steps(for: Scenario.request(kind), startingIn: start) {
                    out.append(("\(kind) from \(start)", steps))
                }
            }
        }
        return out
    }()

    @Test func whoStartsWhere() {
        #expect(Self.plans.map(\.0) == [
            "convert from original", "reinstall from original", "reinstall from staging", "revert from original",
            "revert from staging", "maintenance from original", "capture from original",
        ])
    }

    @Test func preflightComesFirstAndRunsWhereTheHostIs() {
        for (name, steps) in Self.plans {
            #expect(steps.first?.id == .preflight, "\(name)")
            #expect(steps.filter { $0.id == .preflight }.count == 1, "\(name)")
        }
    }

    @Test func systemsChangeOnlyThroughReboots() {
        for (name, steps) in Self.plans {
            for (a, b) in zip(steps, steps.dropFirst()) {
                let expected = a.bootsInto ?? a.runsIn
                #expect(b.runsIn.bootEntry == expected.bootEntry, "\(name): \(a.id) → \(b.id)")
            }
        }
    }

    @Test func everyTrialBootIsArmedRightBefore() {
        for (name, steps) in Self.plans {
            for (i, s) in steps.enumerated() where s.isTrialBoot {
                #expect(i > 0 && steps[i - 1].goal == s.bootsInto && steps[i - 1].entry == s.bootsInto?.bootEntry, "\(name): \(s.id)")
            }
        }
    }

    @Test func stagingIsTheDefaultBeforeTheOriginalDiskIsTouched() {
        for (name, steps) in Self.plans {
            guard let touch = steps.firstIndex(where: { [.growPartition, .wipeOriginalDisk, .writeImage].contains($0.id) }) else { continue }
            let makeDefault = steps.firstIndex { $0.id == .makeStagingDefault }
            #expect(makeDefault != nil && makeDefault! < touch, "\(name)")
            #expect(steps[touch...].allSatisfy { $0.runsIn != .base }, "\(name)")
        }
    }

    @Test func theTargetBecomesTheDefaultOnlyAfterAHealthCheck() {
        for (name, steps) in Self.plans {
            guard let commit = steps.firstIndex(where: { $0.id == .commitTarget }) else { continue }
            #expect(steps[commit - 1].id == .healthCheck && steps[commit - 1].runsIn == .target, "\(name)")
            #expect(commit == steps.count - 1, "\(name)")
        }
    }

    @Test func everyStepHasATimeout() {
        for (name, steps) in Self.plans {
            #expect(steps.allSatisfy { $0.timeoutSeconds > 0 }, "\(name)")
        }
    }

    @Test func operationsThatLeaveReturnToTheOriginalDisk() {
        for (name, steps) in Self.plans where name.hasPrefix("maintenance") || name.hasPrefix("capture") {
            #expect(steps.last?.id == .verifyOriginal && steps.last?.runsIn == .base, "\(name)")
            #expect(!steps.contains { $0.id == .setDefaultBoot || $0.id == .makeStagingDefault }, "\(name)")
        }
    }
}
