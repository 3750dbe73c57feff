import Foundation
import NIOCore
import NIOPosix
import ShoalCoordinator
import ShoalNet
import ShoalTLS
import ShoalTopology
import ShoalWire
import Testing

/// The server's save policy over real TLS connections: changes an answer depends on are saved
/// before the answer; announces that only move lastSeen wait for the next flush (or stop).
@Suite(.serialized) struct ServerSaveTests {
    /// Records every save; `load` returns an empty state.
    final class RecordingStore: CoordinatorStore, @unchecked Sendable {
        private let lock = NSLock()
        private var _saves: [Tracker.Changes] = []
        private var _closed = false
        var saves: [Tracker.Changes] { lock.withLock { _saves } }
        var closed: Bool { lock.withLock { _closed } }
        func load() throws -> Tracker.State { Tracker.State() }
        func save(_ changes: Tracker.Changes, of state: Tracker.State) throws { lock.withLock { _saves.append(changes) } }
        func close() throws { lock.withLock { _closed = true } }
    }

    final class ManualClock: @unchecked Sendable {
        private let lock = NSLock()
        private var t = 1000.0
        var now: Double { lock.withLock { t } }
        func advance(_ s: Double) { lock.withLock { t += s } }
    }

    @Test func structuralChangesAreSavedBeforeTheAnswerAndLastSeenIsBatched() throws {
        let ca = try FleetCA.create()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let h = HeldAnnounceTests()
        let store = RecordingStore()
        let clock = ManualClock()
        let server = try CoordinatorServer(topology: try Topology.parse(yaml: TrackerTests.yaml),
                                           tls: try h.context(ca, FleetIdentity(host: "coordinator", site: "origin", role: .coordinator)),
                                           store: store, group: group, clock: { clock.now })
        let port = try server.start(host: "127.0.0.1", port: 0).port!
        let peer = try ControlClient.connect(to: "127.0.0.1:\(port)", tls: try h.context(ca, FleetIdentity(host: "a1", site: "a", role: .peer)), group: group).wait()
        let ops = try ControlClient.connect(to: "127.0.0.1:\(port)", tls: try h.context(ca, FleetIdentity(host: "ops", site: "origin", role: .operator_)), group: group).wait()
        defer { peer.close(); ops.close() }
        let announce = ControlRequest.announce(listenPort: 7701, listenAddress: "127.0.0.1", bundles: [])

        // A new host: saved by the time the answer arrives.
        _ = try peer.send(announce).wait()
        #expect(store.saves.count == 1 && store.saves.last?.hosts == ["a1"])
        // lastSeen only, 1 s later: not yet.
        clock.advance(1)
        _ = try peer.send(announce).wait()
        #expect(store.saves.count == 1)
        // An order: saved before its answer, with the pending lastSeen.
        let order = OperationOrder(id: "op-1", kind: "convert", stagingBundle: "aa")
        guard case .operation = try ops.send(.orderOperation(host: "a1", request: order)).wait() else { Issue.record("refused"); return }
        #expect(store.saves.count == 2 && store.saves.last?.orders == ["a1"] && store.saves.last?.hosts == ["a1"])
        // lastSeen again: held back until 5 s after the last save, then flushed.
        clock.advance(1)
        _ = try peer.send(announce).wait()
        #expect(store.saves.count == 2)
        clock.advance(5)
        _ = try peer.send(announce).wait()
        #expect(store.saves.count == 3 && store.saves.last?.hosts == ["a1"] && store.saves.last?.isOnlyLastSeen == true)
        // Progress reported: saved at once.
        clock.advance(0.5)
        _ = try peer.send(.announce(listenPort: 7701, listenAddress: "127.0.0.1", bundles: [
            BundleProgress(bundleID: "x", have: 1, total: 2, bytes: 1, complete: false, staged: false),
        ])).wait()
        #expect(store.saves.count == 4 && store.saves.last?.hostsBeyondLastSeen == ["a1"])
        // A pending lastSeen is written on stop, and the store closed.
        clock.advance(0.5)
        _ = try peer.send(.announce(listenPort: 7701, listenAddress: "127.0.0.1", bundles: [
            BundleProgress(bundleID: "x", have: 1, total: 2, bytes: 1, complete: false, staged: false),
        ])).wait()
        #expect(store.saves.count == 4)
        server.stop()
        #expect(store.saves.count == 5 && store.closed)
    }
}
