import Foundation
import NIOCore
import NIOPosix
import ShoalCoordinator
import ShoalNet
import ShoalTLS
import ShoalTopology
import ShoalWire
import Testing

/// Joins and held announces: only connections that hold an announce are rechecked, and a join
/// only when a bundle targets the new host. A host the bundle targets releases a held announce
/// with itself among the peers; a host no bundle targets leaves it held.
@Suite(.serialized) struct HeldAnnounceJoinTests {
    @Test func aTargetedJoinReleasesAHeldAnnounceAnUntargetedOneDoesNot() throws {
        let ca = try FleetCA.create()
        let h = HeldAnnounceTests()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = try CoordinatorServer(topology: try Topology.parse(yaml: TrackerTests.yaml),
                                           tls: try h.context(ca, FleetIdentity(host: "coordinator", site: "origin", role: .coordinator)),
                                           statePath: nil, group: group)
        let port = try server.start(host: "127.0.0.1", port: 0).port!
        defer { server.stop() }
        func client(_ host: String, _ site: String, _ role: FleetIdentity.Role = .peer) throws -> ControlClient {
            try ControlClient.connect(to: "127.0.0.1:\(port)", tls: try h.context(ca, FleetIdentity(host: host, site: site, role: role)), group: group).wait()
        }
        let a1 = try client("a1", "a"), a2 = try client("a2", "a"), b1 = try client("b1", "b"), ops = try client("ops", "origin", .operator_)
        defer { a1.close(); a2.close(); b1.close(); ops.close() }
        let (manifest, id) = try TrackerTests().manifestB64()
        guard case .published = try ops.send(.publish(manifest: manifest, seedHost: "seed", selector: "site=a")).wait() else {
            Issue.record("publish refused"); return
        }
        func announce(waiting: Double) -> ControlRequest {
            .announceAndWait(listenPort: 7701, listenAddress: "127.0.0.1", bundles: [], waitSeconds: waiting)
        }
        guard case .jobs(let first) = try a1.send(announce(waiting: 20)).wait() else { Issue.record("refused"); return }
        #expect(first.map(\.bundleID) == [id] && first[0].peers.isEmpty)

        let held = a1.send(announce(waiting: 20))
        let answered = Flag()
        held.whenComplete { _ in answered.set() }
        usleep(300_000)
        #expect(!answered.isSet, "unchanged jobs were answered at once")
        // b1 is targeted by nothing: a1's jobs do not change, its announce stays held.
        guard case .jobs = try b1.send(announce(waiting: 0)).wait() else { Issue.record("refused"); return }
        usleep(300_000)
        #expect(!answered.isSet, "an untargeted join released a held announce")
        // a2 is a target: a1 learns of its new peer at once.
        let t0 = ContinuousClock().now
        guard case .jobs = try a2.send(announce(waiting: 0)).wait() else { Issue.record("refused"); return }
        guard case .jobs(let jobs) = try held.wait() else { Issue.record("refused"); return }
        #expect(jobs.first?.peers.map(\.host) == ["a2"])
        #expect(ContinuousClock().now - t0 < .seconds(5), "a targeted join did not release the held announce")
    }
}
