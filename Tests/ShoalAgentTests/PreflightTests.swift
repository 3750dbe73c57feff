import Testing

@testable import ShoalAgent

struct PreflightTests {
    let parts: [BootEntry: PartitionFacts] = [
        .original: PartitionFacts(sizeBytes: 1000, growableBytes: 500),
        .staging: PartitionFacts(sizeBytes: 1000, growableBytes: 0),
        .maintenance: PartitionFacts(sizeBytes: 100, growableBytes: 0),
    ]

    func facts(target: UInt64 = 900, maintenance: UInt64 = 50) -> PreflightFacts {
        PreflightFacts(
            bundles: [
                "staging-b": .verified(imageBytes: 800), "target-b": .verified(imageBytes: target),
                "maint-b": .verified(imageBytes: maintenance),
            ], partitions: parts)
    }

    func decide(_ kind: OperationKind, _ facts: PreflightFacts, from start: BootEntry = .original) -> PreflightDecision {
        Preflight.decide(request: Scenario.request(kind), startingIn: start, facts: facts)
    }

    @Test func fitsProceeds() {
        #expect(decide(.convert, facts()) == .proceed)
        #expect(decide(.revert, facts()) == .proceed)
        #expect(decide(.capture, facts()) == .proceed)
        #expect(decide(.maintenance, facts()) == .proceed)
    }

    @Test func growsWhenFreeSpaceFollows() {
        #expect(decide(.convert, facts(target: 1400)) == .proceedAfterGrowing(PartitionGrowth(entry: .original, toBytes: 1400)))
        #expect(decide(.convert, facts(target: 1500)) == .proceedAfterGrowing(PartitionGrowth(entry: .original, toBytes: 1500)))
    }

    @Test func refusesWhatCannotFit() {
        #expect(
            decide(.convert, facts(target: 1501))
                == .refuse(.imageTooBig(bundle: "target-b", imageBytes: 1501, partitionBytes: 1000, growableBytes: 500)))
        #expect(
            decide(.maintenance, facts(maintenance: 101))
                == .refuse(.imageTooBig(bundle: "maint-b", imageBytes: 101, partitionBytes: 100, growableBytes: 0)))
    }

    @Test func bundleProblemsComeFirstAndNameTheBundle() {
        var f = facts(target: 5000)
        f.bundles["target-b"] = nil
        #expect(decide(.convert, f) == .refuse(.bundleMissing(bundle: "target-b")))
        f.bundles["target-b"] = .corrupt("bad signature")
        #expect(decide(.convert, f) == .refuse(.bundleCorrupt(bundle: "target-b", detail: "bad signature")))
        f.bundles["staging-b"] = .incomplete(have: 1, total: 4)
        #expect(decide(.convert, f) == .refuse(.bundleIncomplete(bundle: "staging-b", detail: "1 of 4 chunks")))
        // Revert only needs the staging bundle.
        #expect(decide(.revert, f) == .refuse(.bundleIncomplete(bundle: "staging-b", detail: "1 of 4 chunks")))
    }

    @Test func layoutIsCheckedFirst() {
        var f = facts()
        f.layoutProblem = "the running root is on sdb"
        #expect(decide(.convert, f) == .refuse(.unexpectedLayout("the running root is on sdb")))
        var g = facts()
        g.partitions[.staging] = nil
        #expect(decide(.convert, g) == .refuse(.unexpectedLayout("no staging partition")))
        var h = facts()
        h.partitions[.maintenance] = nil
        #expect(decide(.maintenance, h) == .refuse(.unexpectedLayout("no maintenance partition")))
    }

    @Test func startingInStagingNeedsAnIntactStoredProfile() {
        var f = facts()
        guard case .refuse(.profileMissing) = decide(.reinstall, f, from: .staging) else {
            Issue.record("accepted without a profile")
            return
        }
        f.storedProfile = ProfileReference(location: "p", checksum: "c")
        f.storedProfileCheck = .corrupt("checksum")
        guard case .refuse(.profileMissing) = decide(.reinstall, f, from: .staging) else {
            Issue.record("accepted a corrupt profile")
            return
        }
        f.storedProfileCheck = .intact
        #expect(decide(.reinstall, f, from: .staging) == .proceed)
    }
}

extension PreflightTests {
    @Test func maintenanceDoesNotNeedTheStagingBundle() throws {
        var request = Scenario.request(.maintenance)
        request.parameters.stagingBundle = nil
        try request.validate()
        #expect(Preflight.bundles(for: request) == ["maint-b"])
        var convert = Scenario.request(.convert)
        convert.parameters.stagingBundle = nil
        #expect(throws: AgentError.self) { try convert.validate() }
    }
}
