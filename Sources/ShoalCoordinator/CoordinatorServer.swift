import Foundation
import NIOCore
import NIOPosix
import ShoalNet
import ShoalTLS
import ShoalTopology
import ShoalWire

/// The coordinator's control server: mutually authenticated TLS, one JSON request per frame.
///
/// State lives in a `Tracker` behind a lock. After each request the server takes the tracker's
/// `Changes` and hands them to its `CoordinatorStore` (SQLite by default), which writes only those
/// rows, in one transaction:
/// - anything beyond hosts' `lastSeen` (a bundle, an order, a ban, an epoch, a new host, a host's
///   address, progress or operation, a document) is saved BEFORE the answer is sent, so a client
///   that got an answer can rely on it surviving a kill -9 of the coordinator;
/// - announces that only move `lastSeen` are collected and saved at most every
///   `lastSeenFlushInterval` seconds (with the next save of any kind, and on `stop()`): after a
///   crash a host looks as recently seen as a few seconds earlier, and its next announce fixes that.
/// A save that fails is kept pending (retried with the next save) and the request that needed it
/// is answered `.refused`, never acknowledged.
public final class CoordinatorServer: @unchecked Sendable {
    // Invariant: `tracker`, `store`, `pending`, `lastFlush` and `watchers` are only touched with
    // `lock` held. Saves run under the lock too: the store reads the rows from the live state, no
    // copy of the fleet is made.
    private let lock = NSLock()
    private var tracker: Tracker
    private var store: (any CoordinatorStore)?
    private let tls: TLSContext
    private let group: any EventLoopGroup
    private var channel: (any Channel)?
    private let clock: @Sendable () -> Double
    private let lastSeenFlushInterval: Double
    /// Changes recorded but not saved yet (lastSeen-only ones, or a failed save's).
    private var pending = Tracker.Changes()
    private var lastFlush: Double = 0
    /// The topology's origin: where operators that come in through the HTTP API are placed.
    private let originSite: String

    public init(topology: Topology, tls: TLSContext, store: (any CoordinatorStore)?, group: any EventLoopGroup, liveTimeout: Double = 10,
                enforceLinkRates: Bool = false, lastSeenFlushInterval: Double = 5,
                clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        let state = try store?.load() ?? Tracker.State()
        self.tracker = Tracker(topology: topology, state: state, liveTimeout: liveTimeout, enforceLinkRates: enforceLinkRates)
        self.originSite = topology.origin.name
        self.store = store
        self.tls = tls
        self.group = group
        self.clock = clock
        self.lastSeenFlushInterval = lastSeenFlushInterval
    }

    /// The server over a SQLite database at `statePath` (none: nothing survives a restart). A JSON
    /// state file of an older coordinator at that path is imported (see
    /// `SQLiteCoordinatorStore.open(path:log:)`); `log` gets the one line saying so.
    public convenience init(topology: Topology, tls: TLSContext, statePath: String?, group: any EventLoopGroup, liveTimeout: Double = 10,
                            enforceLinkRates: Bool = false, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
                            log: (String) -> Void = { FileHandle.standardError.write(Data("coordinator: \($0)\n".utf8)) }) throws {
        let store = try statePath.map { try SQLiteCoordinatorStore.open(path: $0, log: log) }
        try self.init(topology: topology, tls: tls, store: store, group: group, liveTimeout: liveTimeout,
                      enforceLinkRates: enforceLinkRates, clock: clock)
    }

    /// Binds and starts serving. Returns the bound address.
    public func start(host: String, port: Int) throws -> SocketAddress {
        let tls = self.tls
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = ControlServerHandler(server: self, remoteAddress: channel.remoteAddress?.ipAddress, eventLoop: channel.eventLoop)
                    try channel.pipeline.syncOperations.addHandlers([
                        try TLSHandler(context: tls, role: .server),
                        ByteToMessageHandler(LengthPrefixedFrameDecoder(maxFrameLength: ControlProtocol.maxFrameLength)),
                        handler,
                    ])
                }
            }
            .bind(host: host, port: port).wait()
        self.channel = channel
        // Rollouts move on their own: outcomes reported, soaks ending, windows opening.
        rolloutTimer = group.next().scheduleRepeatedTask(initialDelay: .milliseconds(200), delay: .milliseconds(Int64(rolloutInterval * 1000))) { [weak self] _ in
            self?.advanceRollouts()
        }
        return channel.localAddress!
    }

    /// Stops listening, saves what is pending and closes the store.
    public func stop() {
        rolloutTimer?.cancel()
        try? channel?.close().wait()
        lock.withLock {
            guard let store else { return }
            do {
                if !pending.isEmpty { try store.save(pending, of: tracker.state) }
                pending = Tracker.Changes()
                try store.close()
            } catch {
                Self.report("cannot save state on stop: \(error)")
            }
            self.store = nil
        }
    }

    public var snapshot: Tracker.State { lock.withLock { tracker.state } }

    /// Connections that may hold an announce, told when jobs may have changed. A connection is
    /// one only from the moment an `announceAndWait` arrives (before it is handled) until it is
    /// answered: telling every connection made each join (a structural change) cost O(connections)
    /// closures, O(hosts²) for a fleet coming up (minutes at 10,000 hosts).
    private var watchers: [ObjectIdentifier: ControlServerHandler] = [:]

    func register(_ handler: ControlServerHandler) { lock.withLock { watchers[ObjectIdentifier(handler)] = handler } }
    func unregister(_ handler: ControlServerHandler) { _ = lock.withLock { watchers.removeValue(forKey: ObjectIdentifier(handler)) } }

    /// The answer to `host`'s announce now: jobs and pending orders (for a held announce being
    /// re-checked or released).
    func currentAnswer(for host: String) -> ControlResponse {
        let now = clock()
        return lock.withLock {
            let answer = tracker.jobsAnswer(for: host, now: now)
            // An epoch may move here (a target went silent); saved before the answer goes out.
            do { _ = try persist(tracker.takeChanges(), now: now) } catch { Self.report("cannot save state: \(error)") }
            return answer
        }
    }

    func handle(_ request: ControlRequest, from identity: FleetIdentity, remoteAddress: String?) -> ControlResponse {
        let now = clock()
        let (response, recheck, outcome) = lock.withLock { () -> (ControlResponse, Bool, Bool) in
            let hostsBefore = tracker.state.hosts.count
            let operationBefore = tracker.state.hosts[identity.host]?.operation
            let completeBefore = tracker.state.hosts[identity.host]?.progress.values.filter(\.complete).count ?? 0
            var response = tracker.handle(request, from: identity, remoteAddress: remoteAddress, now: now)
            let changes = tracker.takeChanges()
            // Held announces may have news when bundles, bans, epochs or orders changed, a host
            // joined, a host's operation moved, or (every few seconds, with the lastSeen flush)
            // hosts went silent.
            // A new host changes others' jobs only when a bundle targets it or it seeds one (it is
            // then a peer or seed in their jobs); otherwise each join of a fleet coming up would
            // recheck every held announce.
            let joined = hostsBefore != tracker.state.hosts.count
                && tracker.state.bundles.values.contains { $0.seedHost == identity.host || $0.targets.contains(identity.host) }
            let structural = !changes.bundles.isEmpty || !changes.bans.isEmpty || !changes.epochs.isEmpty || !changes.orders.isEmpty
                || joined || operationBefore != tracker.state.hosts[identity.host]?.operation
            var flushed = false
            do {
                flushed = try persist(changes, now: now)
            } catch {
                Self.report("cannot save state: \(error)")
                if !changes.isOnlyLastSeen { response = .refused("the coordinator could not save this change (\(error)); try again") }
            }
            // A host's operation moved or a bundle completed on it: a rollout may act on it now
            // rather than at its next step.
            let after = tracker.state.hosts[identity.host]
            let news = !tracker.rollouts.isEmpty
                && (operationBefore != after?.operation || completeBefore != (after?.progress.values.filter(\.complete).count ?? 0))
            return (response, structural || flushed, news)
        }
        if outcome { group.next().execute { [weak self] in self?.advanceRollouts() } }
        if recheck || { if case .publish = request { return true }; if case .orderOperation = request { return true }; return false }() {
            // A new order releases its host's held announce at once.
            for w in lock.withLock({ Array(watchers.values) }) { w.recheck() }
        }
        return response
    }

    /// A request from an operator who is not on a TLS connection (the HTTP API, authenticated
    /// by its bearer token): handled exactly as the same request from an operator certificate
    /// named `operatorName` in the origin — same tracker path, saved before the answer, held
    /// announces rechecked.
    public func handleOperator(_ request: ControlRequest, as operatorName: String) -> ControlResponse {
        handle(request, from: FleetIdentity(host: operatorName, site: originSite, role: .operator_), remoteAddress: nil)
    }

    /// Saves `changes` now unless they only move `lastSeen` and the last flush is recent; then
    /// they wait in `pending`. Returns whether this was a timed flush. Call with `lock` held.
    private var rolloutTimer: RepeatedTask?
    /// How often rollouts are advanced (seconds).
    public var rolloutInterval: Double = 0.5

    /// One engine step for every rollout that can still change. Its orders and the rollout are
    /// saved before any host can see them (held announces are rechecked only after the save).
    func advanceRollouts() {
        let now = clock()
        let changed = lock.withLock { () -> Bool in
            guard tracker.advanceRollouts(now: now) else { return false }
            do {
                _ = try persist(tracker.takeChanges(), now: now)
            } catch {
                Self.report("cannot save state: \(error)")
                return false
            }
            return true
        }
        if changed { for w in lock.withLock({ Array(watchers.values) }) { w.recheck() } }
    }

    private func persist(_ changes: Tracker.Changes, now: Double) throws -> Bool {
        pending.formUnion(changes)
        let due = now - lastFlush >= lastSeenFlushInterval
        guard due || !changes.isOnlyLastSeen else { return false }
        lastFlush = now
        if let store, !pending.isEmpty { try store.save(pending, of: tracker.state) }
        pending = Tracker.Changes()
        return due
    }

    private static func report(_ line: String) {
        FileHandle.standardError.write(Data("coordinator: \(line)\n".utf8))
    }
}

final class ControlServerHandler: ChannelInboundHandler, @unchecked Sendable {
    // Invariant: used only on its channel's event loop.
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    private let server: CoordinatorServer
    private let remoteAddress: String?
    private var identity: FleetIdentity?
    private var context: ChannelHandlerContext?
    /// The jobs answer (jobs and orders) last sent on this connection, and a held announce
    /// (answered when it changes).
    private var lastAnswer: ControlResponse?
    private var held: Scheduled<Void>?

    private let eventLoop: any EventLoop

    init(server: CoordinatorServer, remoteAddress: String?, eventLoop: any EventLoop) {
        self.server = server
        self.remoteAddress = remoteAddress
        self.eventLoop = eventLoop
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted(let id)? = event as? TLSEvent { identity = id }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        held?.cancel()
        held = nil
        server.unregister(self)
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        guard let identity else { context.close(promise: nil); return }
        // Answers go out in request order: a held announce is released before anything newer.
        release()
        let response: ControlResponse
        var wait: Double = 0
        do {
            let request = try ControlProtocol.decode(ControlRequest.self, from: buffer.readableBytesView)
            if case .announceAndWait(_, _, _, let seconds, _) = request { wait = min(max(seconds, 0), 30) }
            // Watching before the request is handled: a change made after its answer was computed
            // is rechecked on this loop after the announce is held.
            if wait > 0 { server.register(self) }
            response = server.handle(request, from: identity, remoteAddress: remoteAddress)
        } catch {
            response = .refused("malformed request: \(error)")
        }
        if wait > 0, response.isJobsAnswer, response == lastAnswer {
            held = context.eventLoop.scheduleTask(in: .milliseconds(Int64(wait * 1000))) { [self] in release() }
            return
        }
        if wait > 0 { server.unregister(self) }
        send(response)
    }

    private func send(_ response: ControlResponse) {
        if response.isJobsAnswer { lastAnswer = response }
        if let context, let bytes = try? ControlProtocol.encode(response) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
        }
    }

    /// Answers the held announce, if any, with the jobs as they are now.
    private func release() {
        guard let h = held, let identity else { return }
        h.cancel()
        held = nil
        server.unregister(self)
        send(server.currentAnswer(for: identity.host))
    }

    /// Something changed: answer the held announce if this host's jobs did. Any thread.
    func recheck() {
        eventLoop.execute { [self] in
            guard held != nil, let identity else { return }
            if server.currentAnswer(for: identity.host) != lastAnswer { release() }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

extension ControlResponse {
    /// `.jobs` or `.jobsAndOrders`: the answer to an announce.
    var isJobsAnswer: Bool {
        switch self {
        case .jobs, .jobsAndOrders: return true
        default: return false
        }
    }
}
