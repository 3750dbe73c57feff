import Foundation
import ShoalLoadGen
import Testing

/// The load generator of `shoal bench coordinator` against a real `shoal coordinator` process:
/// 200 simulated hosts, each on its own TLS connection with its own certificate. Asserts what was
/// answered, never how fast.
@Suite(.serialized) struct LoadGeneratorTests {
    @Test(arguments: [false, true]) func everySimulatedHostIsAnsweredAndAlive(bundleTargetsAll: Bool) throws {
        var options = CoordinatorBench.Options(executable: CoordinatorExecutable.path)
        options.hosts = 200
        options.sites = 4
        options.duration = 1.5
        options.heldWait = 0.5
        options.bundleTargetsAll = bundleTargetsAll
        let r = try CoordinatorBench.run(options)
        #expect(r.connections == 200 && r.connectFailed == 0, "\(r.connectFirstError ?? "")")
        for phase in [r.join, r.plain, r.held] {
            #expect(phase.hosts == 200, "\(phase.mode)")
            #expect(phase.hostsAnswered == 200, "\(phase.mode): \(phase.firstProblem ?? "")")
            #expect(phase.failed == 0 && phase.refused == 0 && phase.otherAnswers == 0, "\(phase.mode): \(phase.firstProblem ?? "")")
            #expect(phase.unanswered == 0, "\(phase.mode)")
        }
        #expect(r.join.jobsAnswers == 200)
        #expect(r.held.statusAnswers > 0)
        // The status lists the origin's seed and the 200 hosts; the hosts are alive.
        #expect(r.statusHostsListed == 201)
        #expect(r.statusHostsAlive == 200)
        #expect(r.coordinatorPeakRSSKiB > 0 && r.stateDBBytes > 0)
    }

    @Test func certificatesForEveryHostAndATopologyThatParses() throws {
        let fleet = try LoadFleet.make(hosts: 10, sites: 3)
        #expect(Set(fleet.hosts.map(\.identity.host)).count == 10)
        #expect(Set(fleet.hosts.map(\.identity.site)) == ["s000", "s001", "s002"])
        #expect(fleet.topologyYAML.contains("s002-h00009"))
    }
}
