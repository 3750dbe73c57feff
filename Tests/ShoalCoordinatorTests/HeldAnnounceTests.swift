import Foundation
import NIOCore
import NIOPosix
import ShoalCoordinator
import ShoalNet
import ShoalTLS
import ShoalTopology
import ShoalWire
import Testing

/// Held announces over real TLS connections on loopback: a peer's announce whose jobs did not
/// change waits, and a publish releases it at once (jobs are pushed, not polled).
@Suite(.serialized) struct HeldAnnounceTests {
    func context(_ ca: FleetCA, _ identity: FleetIdentity) throws -> TLSContext {
        let (cert, key) = try ca.issue(identity)
        return try TLSContext(files: TLSFiles(ca: ca.certificate, certificate: cert, key: key))
    }

    @Test func aPublishReleasesAHeldAnnounceAtOnce() throws {
        let ca = try FleetCA.create()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let server = try CoordinatorServer(topology: try Topology.parse(yaml: TrackerTests.yaml),
                                           tls: try context(ca, FleetIdentity(host: "coordinator", site: "origin", role: .coordinator)),
                                           statePath: nil, group: group)
        let port = try server.start(host: "127.0.0.1", port: 0).port!
        defer { server.stop() }
        let peer = try ControlClient.connect(to: "127.0.0.1:\(port)", tls: try context(ca, FleetIdentity(host: "a1", site: "a", role: .peer)), group: group).wait()
        let ops = try ControlClient.connect(to: "127.0.0.1:\(port)", tls: try context(ca, FleetIdentity(host: "ops", site: "origin", role: .operator_)), group: group).wait()
        defer { peer.close(); ops.close() }
        let announce = ControlRequest.announceAndWait(listenPort: 7701, listenAddress: "127.0.0.1", bundles: [], waitSeconds: 20)

        // The first answer on a connection is never held.
        let clock = ContinuousClock()
        var t0 = clock.now
        guard case .jobs(let none) = try peer.send(announce).wait() else { Issue.record("refused"); return }
        #expect(none.isEmpty && clock.now - t0 < .seconds(2))

        // Nothing changed: held. A publish for a1 releases it with the new job well before 20 s.
        t0 = clock.now
        let held = peer.send(announce)
        let answered = Flag()
        held.whenComplete { _ in answered.set() }
        usleep(500_000)
        #expect(!answered.isSet, "an announce with unchanged jobs was answered at once, not held")
        let (manifest, id) = try TrackerTests().manifestB64()
        guard case .published = try ops.send(.publish(manifest: manifest, seedHost: "seed", selector: "all")).wait() else {
            Issue.record("publish refused"); return
        }
        guard case .jobs(let jobs) = try held.wait() else { Issue.record("refused"); return }
        #expect(jobs.map(\.bundleID) == [id])
        #expect(clock.now - t0 < .seconds(3), "held announce was not released by the publish")

        // A newer request on the connection releases a held one, answers in order.
        let again = peer.send(announce)
        usleep(200_000)
        t0 = clock.now
        let quick = peer.send(.announceAndWait(listenPort: 7701, listenAddress: "127.0.0.1", bundles: [], waitSeconds: 0))
        guard case .jobs = try again.wait(), case .jobs = try quick.wait() else { Issue.record("refused"); return }
        #expect(clock.now - t0 < .seconds(3))
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// Orders are taken only on a connection whose TLS identity is the coordinator's: the client
/// exposes it, and a server with any other certificate is refused at the handshake.
@Suite(.serialized) struct ControlIdentityTests {
    @Test func theClientKnowsItTalksToTheCoordinator() throws {
        let ca = try FleetCA.create()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let h = HeldAnnounceTests()
        let peerTLS = try h.context(ca, FleetIdentity(host: "a1", site: "a", role: .peer))
        let real = try CoordinatorServer(topology: try Topology.parse(yaml: TrackerTests.yaml),
                                         tls: try h.context(ca, FleetIdentity(host: "coordinator", site: "origin", role: .coordinator)),
                                         statePath: nil, group: group)
        let port = try real.start(host: "127.0.0.1", port: 0).port!
        defer { real.stop() }
        let client = try ControlClient.connect(to: "127.0.0.1:\(port)", tls: peerTLS, group: group).wait()
        #expect(client.peerIdentity.role == .coordinator && client.peerIdentity.host == "coordinator")
        client.close()

        // A "coordinator" holding a peer certificate (one that could try to order operations).
        let fake = try CoordinatorServer(topology: try Topology.parse(yaml: TrackerTests.yaml),
                                         tls: try h.context(ca, FleetIdentity(host: "b1", site: "b", role: .peer)), statePath: nil, group: group)
        let fakePort = try fake.start(host: "127.0.0.1", port: 0).port!
        defer { fake.stop() }
        #expect(throws: (any Error).self) { try ControlClient.connect(to: "127.0.0.1:\(fakePort)", tls: peerTLS, group: group).wait() }
    }
}

@Suite(.serialized) struct HeldAnnounceOrderTests {
    /// A new order releases the host's held announce at once, with the order.
    @Test func anOrderReleasesTheHostsHeldAnnounce() throws {
        let ca = try FleetCA.create()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let h = HeldAnnounceTests()
        let server = try CoordinatorServer(topology: try Topology.parse(yaml: TrackerTests.yaml),
                                           tls: try h.context(ca, FleetIdentity(host: "coordinator", site: "origin", role: .coordinator)),
                                           statePath: nil, group: group)
        let port = try server.start(host: "127.0.0.1", port: 0).port!
        defer { server.stop() }
        let peer = try ControlClient.connect(to: "127.0.0.1:\(port)", tls: try h.context(ca, FleetIdentity(host: "a1", site: "a", role: .peer)), group: group).wait()
        let ops = try ControlClient.connect(to: "127.0.0.1:\(port)", tls: try h.context(ca, FleetIdentity(host: "ops", site: "origin", role: .operator_)), group: group).wait()
        defer { peer.close(); ops.close() }
        let announce = ControlRequest.announceAndWait(listenPort: 7701, listenAddress: "127.0.0.1", bundles: [], waitSeconds: 20)
        guard case .jobs = try peer.send(announce).wait() else { Issue.record("refused"); return }
        let held = peer.send(announce)
        usleep(300_000)
        let clock = ContinuousClock()
        let t0 = clock.now
        let order = OperationOrder(id: "op-1", kind: "convert", stagingBundle: "aa", targetBundle: "bb")
        guard case .operation = try ops.send(.orderOperation(host: "a1", request: order)).wait() else { Issue.record("order refused"); return }
        guard case .jobsAndOrders(_, let orders) = try held.wait() else { Issue.record("released without the order"); return }
        #expect(orders == [order] && clock.now - t0 < .seconds(3))
    }
}
