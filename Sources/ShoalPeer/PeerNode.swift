import Foundation
import NIOCore
import NIOPosix
import ShoalBundle
import ShoalCrypto
import ShoalNet
import ShoalStorage
import ShoalSwarm
import ShoalTLS
import ShoalWire

/// The long-running daemon on every host (and, with `seedBundles`, the seed at the origin).
///
/// It announces itself to the coordinator every `announceInterval`, learns which bundles to fetch
/// or serve and which peers and WAN plan to use, and swarms: every connection is TLS 1.3 with
/// mutual authentication; every chunk is checked against the signed manifest before it is
/// stored, staged or served. All network state lives on one event loop.
public final class PeerNode: @unchecked Sendable {
    // Invariant: every mutable field is touched only on `eventLoop`.
    public struct Configuration: Sendable {
        public var listenHost = "0.0.0.0"
        public var listenPort = 7701
        /// Address other peers should dial (default: the address the coordinator sees).
        public var advertisedAddress: String?
        public var coordinator: String
        public var storeDirectory: String?
        public var stageTarget: String?
        public var trustedKeys: [Ed25519PublicKey] = []
        public var key: SymmetricKey?
        /// Bundle files this node seeds in full.
        public var seedBundles: [String] = []
        public var announceInterval: Double = 1
        public var maxOutstandingBlocks = 16
        /// The local operator's cap on this node's traffic, each direction, bits per second
        /// (combined with the caps the coordinator hands out: the tighter wins).
        public var maxRate: UInt64?
        /// The host agent that runs the operations the coordinator orders (`nil`: one without a
        /// driver, which refuses every order and reports why).
        public var agent: PeerAgent?
        /// Fault injection for tests and the lab: flip a byte in every block served.
        public var corruptServing = false
        public var log: @Sendable (String) -> Void = { FileHandle.standardError.write(Data("\($0)\n".utf8)) }

        public init(coordinator: String) { self.coordinator = coordinator }
    }

    let configuration: Configuration
    let tls: TLSContext
    let identity: FleetIdentity
    let group: MultiThreadedEventLoopGroup
    let eventLoop: any EventLoop
    private(set) var listenPort = 0
    private var listener: (any Channel)?
    private var control: ControlClient?
    private var connectingControl = false
    private var swarms: [String: BundleSwarm] = [:]
    private var dialing: Set<String> = []
    private var refused: [String: String] = [:]
    private var tasks: [RepeatedTask] = []
    /// The caps in force (from the coordinator's jobs and `maxRate`) as token buckets.
    var shaper = TrafficShaper()
    private var limits: RateLimits?
    private var limitsApplied = false
    private var wake: Scheduled<Void>?
    private var wakeAt: NIODeadline?
    private let started = ContinuousClock.now
    let agent: PeerAgent

    public init(configuration: Configuration, tls: TLSContext) {
        self.configuration = configuration
        self.agent = configuration.agent ?? PeerAgent(driver: nil, stateDirectory: nil)
        self.tls = tls
        self.identity = tls.identity
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.eventLoop = group.next()
    }

    func log(_ message: String) { configuration.log("[\(identity.host)] \(message)") }

    /// Binds the listener, loads seeded bundles, and starts announcing.
    public func start() throws {
        let tls = self.tls
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try TLSHandler(context: tls, role: .server), PeerConnectionHandler(node: self, dialedBundle: nil),
                    ])
                }
            }
            .bind(host: configuration.listenHost, port: configuration.listenPort).wait()
        listener = channel
        listenPort = channel.localAddress?.port ?? configuration.listenPort
        agent.whenFinished { [weak self] in self?.eventLoop.execute { self?.announceNow() } }
        agent.start()
        try eventLoop.submit { [self] in
            for path in configuration.seedBundles {
                let file = try BundleFile(path: path)
                try file.signedManifest.checkTrust(configuration.trustedKeys)
                let swarm = BundleSwarm(node: self, manifest: file.signedManifest, source: BundleFileSource(file: file), store: nil,
                                        writer: nil, isSeed: true, maxOutstanding: configuration.maxOutstandingBlocks)
                swarms[swarm.bundleID] = swarm
                log("seeding \(swarm.bundleID.prefix(12)) (\(file.manifest.frames.count) chunks) from \(path)")
            }
            tasks.append(eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(Int64(configuration.announceInterval * 1000))) { [self] _ in announce() })
            tasks.append(eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [self] _ in
                for s in swarms.values { s.tick() }
            })
        }.wait()
        log("listening on \(channel.localAddress.map { "\($0)" } ?? "?") as \(identity)")
    }

    /// Stops everything (connections closed, store synced).
    public func stop() {
        try? eventLoop.submit { [self] in
            for t in tasks { t.cancel() }
            for s in swarms.values { s.closeAll() }
            control?.close()
        }.wait()
        try? listener?.close().wait()
        try? group.syncShutdownGracefully()
    }

    func swarm(for bundleID: String) -> BundleSwarm? { swarms[bundleID] }

    /// Seconds since the node started: the shaper's clock.
    var now: Double {
        let d = ContinuousClock.now - started
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// Runs the swarms' deferred work (shaped serves and requests) after `seconds`; one timer, at
    /// the earliest time asked for.
    func wake(after seconds: Double) {
        let deadline = NIODeadline.now() + .microseconds(Int64(max(0.001, seconds) * 1_000_000))
        if let wakeAt, wakeAt <= deadline { return }
        wake?.cancel()
        wakeAt = deadline
        wake = eventLoop.scheduleTask(deadline: deadline) { [self] in
            wake = nil
            wakeAt = nil
            for s in swarms.values { s.resumeShaped() }
        }
    }

    /// Applies the caps the coordinator sent (and the local `maxRate`) when they change.
    private func apply(limits new: RateLimits?) {
        guard !limitsApplied || new != limits else { return }
        limitsApplied = true
        limits = new
        let cap = configuration.maxRate
        func tighter(_ a: UInt64?, _ b: UInt64?) -> UInt64? { [a, b].compactMap { $0 }.min() }
        shaper = TrafficShaper(up: tighter(new?.up, cap), down: tighter(new?.down, cap), wanUp: new?.wanUp, wanDown: new?.wanDown, now: now)
        if !shaper.isUnlimited {
            func show(_ v: UInt64?) -> String { v.map { String(format: "%.1f Mbit/s", Double($0) / 1e6) } ?? "-" }
            log("traffic caps: up \(show(shaper.up.map { UInt64($0.rate * 8) })), down \(show(shaper.down.map { UInt64($0.rate * 8) })), WAN up \(show(new?.wanUp)), WAN down \(show(new?.wanDown))")
        }
    }


    /// Reports progress at once (a bundle completed), besides the held announce.
    func announceNow() { announce(held: false) }

    // MARK: coordinator

    /// When the held announce went out (nil: none is out).
    private var heldSince: NIODeadline?

    /// Announces. The regular announce is held by the coordinator until this node's jobs change
    /// or `announceInterval` passes, and the next goes out as soon as it is answered: jobs arrive
    /// at once, and progress is reported every interval. The repeated task only restarts the loop
    /// (after a reconnect) and gives up on a coordinator that holds an answer far too long.
    private func announce(held: Bool = true) {
        guard let control else { return connectControl() }
        if held {
            if let since = heldSince {
                if NIODeadline.now() - since > .seconds(Int64(configuration.announceInterval) + 15) {
                    log("coordinator: no answer for \(Int(configuration.announceInterval) + 15) s; reconnecting")
                    control.close()
                    self.control = nil
                    heldSince = nil
                }
                return
            }
            heldSince = .now()
        }
        let progress = swarms.values.map(\.progress) + refused.map { BundleProgress(bundleID: $0.key, have: 0, total: 0, bytes: 0, complete: false, staged: false, error: $0.value) }
        control.send(.announceAndWait(listenPort: listenPort, listenAddress: configuration.advertisedAddress, bundles: progress,
                                      waitSeconds: held ? configuration.announceInterval : 0, operation: agent.progress))
            .hop(to: eventLoop)
            .whenComplete { [self] result in
                if held {
                    heldSince = nil
                    if case .success = result {
                        // The next held announce; a short gap keeps a flapping coordinator from spinning us.
                        eventLoop.scheduleTask(in: .milliseconds(20)) { [self] in announce() }
                    }
                }
                switch result {
                case .success(.jobs(let jobs)): reconcile(jobs)
                case .success(.jobsAndOrders(let jobs, let orders)):
                    reconcile(jobs)
                    take(orders, from: control)
                case .success(.refused(let why)): log("coordinator refused the announce: \(why)")
                case .success: break
                case .failure(let error):
                    log("coordinator: \(error); reconnecting")
                    self.control?.close()
                    self.control = nil
                }
            }
    }

    private func connectControl() {
        guard !connectingControl else { return }
        connectingControl = true
        ControlClient.connect(to: configuration.coordinator, tls: tls, group: group)
            .hop(to: eventLoop)
            .whenComplete { [self] result in
                connectingControl = false
                switch result {
                case .success(let client):
                    control = client
                    announce()
                case .failure(let error):
                    log("cannot reach the coordinator at \(configuration.coordinator): \(error)")
                }
            }
    }

    /// Orders count only when they came on the control connection and its TLS identity (checked
    /// against the fleet CA in the handshake) has role coordinator: no other certificate may order
    /// an operation on this host.
    private func take(_ orders: [OperationOrder], from client: ControlClient) {
        guard client.peerIdentity.role == .coordinator else {
            log("ignoring \(orders.count) order(s) from \(client.peerIdentity): not a coordinator certificate")
            return
        }
        var news = false
        for order in orders { news = agent.take(order) || news }
        // Tell the coordinator at once that the order was taken (or refused).
        if news { announceNow() }
    }

    func reportBadPeer(bundleID: String, peer: String, reason: String) {
        _ = control?.send(.reportBadPeer(bundleID: bundleID, peer: peer, reason: reason))
    }

    private func reconcile(_ jobs: [Job]) {
        apply(limits: jobs.first?.limits)
        for job in jobs {
            if swarms[job.bundleID] == nil {
                guard refused[job.bundleID] == nil, !job.manifest.isEmpty else { continue }
                do {
                    swarms[job.bundleID] = try makeSwarm(for: job)
                } catch {
                    refused[job.bundleID] = "\(error)"
                    log("refusing bundle \(job.bundleID.prefix(12)): \(error)")
                    continue
                }
            }
            guard let swarm = swarms[job.bundleID] else { continue }
            swarm.update(job: job)
            for endpoint in swarm.endpointsToDial() { dial(endpoint, bundleID: job.bundleID) }
        }
    }

    private func makeSwarm(for job: Job) throws -> BundleSwarm {
        guard let payload = Data(base64Encoded: job.manifest) else { throw BundleError.malformedManifest("manifest is not base64") }
        let manifest = try SignedManifest.decode(payload: Array(payload))
        guard manifest.bundleID.hex == job.bundleID else { throw BundleError.malformedManifest("manifest does not hash to the announced bundle id") }
        try manifest.checkTrust(configuration.trustedKeys)
        guard let directory = configuration.storeDirectory else { throw StorageError.badTarget("no --store directory") }
        let store = try ChunkStore(directory: directory, manifest: manifest)
        var writer: StagingWriter? = nil
        if let stage = configuration.stageTarget, !swarms.values.contains(where: { !$0.manifest.manifest.frames.isEmpty && $0.bundleID != job.bundleID && stagingClaimed }) {
            try manifest.manifest.checkDecryptionKey(configuration.key)
            let target = try StagingTarget(path: stage, imageSize: manifest.manifest.imageSize)
            let isDevice = target.kind == .blockDevice
            let resumePath = StagingTarget.defaultResumePath(forTarget: stage, isBlockDevice: isDevice)
            if isDevice { try? FileManager.default.createDirectory(atPath: "/var/lib/shoal/apply", withIntermediateDirectories: true) }
            let log = try ResumeLog(path: resumePath, bundleID: manifest.bundleID, frameCount: manifest.manifest.frames.count, targetIdentity: target.identity)
            let w = try StagingWriter(bundle: manifest, target: target, resumeLog: log, key: configuration.key)
            // Chunks already in the store (a restart) but not yet staged are written now.
            let missing = Set(w.missingChunks)
            for i in store.held where missing.contains(i) { try w.write(chunk: i, stored: try store.get(i)) }
            writer = w
            stagingClaimed = true
        }
        let swarm = BundleSwarm(node: self, manifest: manifest, source: store, store: store, writer: writer, isSeed: false,
                                maxOutstanding: configuration.maxOutstandingBlocks)
        log("fetching \(swarm.bundleID.prefix(12)): \(store.heldCount)/\(manifest.manifest.frames.count) chunks held\(writer != nil ? ", staging to \(configuration.stageTarget!)" : "")")
        if store.isComplete { swarm.update(job: job) }
        return swarm
    }

    private var stagingClaimed = false

    private func dial(_ endpoint: PeerEndpoint, bundleID: String) {
        let key = "\(bundleID)/\(endpoint.host)"
        guard !dialing.contains(key) else { return }
        dialing.insert(key)
        let tls = self.tls
        ClientBootstrap(group: eventLoop)
            .connectTimeout(.seconds(3))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try TLSHandler(context: tls, role: .client) { peer in
                            peer.host == endpoint.host ? nil : "expected \(endpoint.host), the certificate says \(peer.host)"
                        },
                        PeerConnectionHandler(node: self, dialedBundle: bundleID),
                    ])
                }
            }
            .connect(host: endpoint.address, port: endpoint.port)
            .hop(to: eventLoop)
            .whenComplete { [self] result in
                switch result {
                case .success(let channel):
                    channel.closeFuture.hop(to: eventLoop).whenComplete { [self] _ in dialing.remove(key) }
                case .failure(let error):
                    dialing.remove(key)
                    log("cannot connect to \(endpoint.host) at \(endpoint.address):\(endpoint.port): \(error)")
                }
            }
    }
}
