import Foundation
import NIOCore
import NIOPosix
import ShoalNet
import ShoalTLS
import ShoalTopology
import ShoalWire

/// The coordinator's control server: mutually authenticated TLS, one JSON request per frame.
///
/// State lives in a `Tracker` behind a lock and is saved to `statePath` (atomically: write a
/// temporary file, fsync, rename) after every change, so a killed coordinator restarts where it was.
public final class CoordinatorServer: @unchecked Sendable {
    // Invariant: `tracker` is only touched with `lock` held.
    private let lock = NSLock()
    private var tracker: Tracker
    private let statePath: String?
    private let tls: TLSContext
    private let group: any EventLoopGroup
    private var channel: (any Channel)?
    private let clock: @Sendable () -> Double

    public init(topology: Topology, tls: TLSContext, statePath: String?, group: any EventLoopGroup, liveTimeout: Double = 10,
                enforceLinkRates: Bool = false, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }) throws {
        var state = Tracker.State()
        if let statePath, let data = FileManager.default.contents(atPath: statePath) {
            do {
                state = try JSONDecoder().decode(Tracker.State.self, from: data)
            } catch {
                throw ControlClient.Failure("cannot read the state file \(statePath): \(error)")
            }
        }
        self.tracker = Tracker(topology: topology, state: state, liveTimeout: liveTimeout, enforceLinkRates: enforceLinkRates)
        self.statePath = statePath
        self.tls = tls
        self.group = group
        self.clock = clock
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

    public func stop() {
        rolloutTimer?.cancel()
        try? channel?.close().wait()
    }

    private var rolloutTimer: RepeatedTask?
    /// How often rollouts are advanced (seconds).
    public var rolloutInterval: Double = 0.5

    /// One engine step for every active rollout; saves and wakes held announces when orders changed.
    func advanceRollouts() {
        let now = clock()
        let (changed, state) = lock.withLock { () -> (Bool, Tracker.State?) in
            let changed = tracker.advanceRollouts(now: now)
            return (changed, changed ? tracker.state : nil)
        }
        guard changed, let state else { return }
        save(state, now: now)
        for w in lock.withLock({ Array(watchers.values) }) { w.recheck() }
    }

    public var snapshot: Tracker.State { lock.withLock { tracker.state } }

    /// Connections that may hold an announce, told when jobs may have changed.
    private var watchers: [ObjectIdentifier: ControlServerHandler] = [:]

    func register(_ handler: ControlServerHandler) { lock.withLock { watchers[ObjectIdentifier(handler)] = handler } }
    func unregister(_ handler: ControlServerHandler) { _ = lock.withLock { watchers.removeValue(forKey: ObjectIdentifier(handler)) } }

    /// The answer to `host`'s announce now: jobs and pending orders (for a held announce being
    /// re-checked or released).
    func currentAnswer(for host: String) -> ControlResponse {
        let now = clock()
        return lock.withLock { tracker.jobsAnswer(for: host, now: now) }
    }

    func handle(_ request: ControlRequest, from identity: FleetIdentity, remoteAddress: String?) -> ControlResponse {
        let now = clock()
        let (response, state, changed) = lock.withLock { () -> (ControlResponse, Tracker.State, Bool) in
            let before = tracker.state
            let response = tracker.handle(request, from: identity, remoteAddress: remoteAddress, now: now)
            // Announces change lastSeen every time; persist those at most every few seconds.
            // A request writes only its own host's record and never removes one, so a new host
            // shows in the count and a new operation report in that one record (no pass over all
            // hosts on every announce).
            let structural = before.bundles != tracker.state.bundles || before.banned != tracker.state.banned
                || before.epochs != tracker.state.epochs || before.hosts.count != tracker.state.hosts.count
                || before.orders != tracker.state.orders || before.rollouts != tracker.state.rollouts
                || before.hosts[identity.host]?.operation != tracker.state.hosts[identity.host]?.operation
            return (response, tracker.state, structural || now - lastSave >= 5)
        }
        if changed { save(state, now: now) }
        if changed || { if case .publish = request { return true }; if case .orderOperation = request { return true }; return false }() {
            // Bundles, hosts, bans, epochs or orders changed: held announces may have news (a
            // new order releases its host's held announce at once).
            for w in lock.withLock({ Array(watchers.values) }) { w.recheck() }
        }
        return response
    }

    private var lastSave: Double = 0

    private func save(_ state: Tracker.State, now: Double) {
        guard let statePath else { return }
        lock.withLock { lastSave = now }
        do {
            let data = try JSONEncoder().encode(state)
            let tmp = statePath + ".tmp"
            let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { return }
            _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            fsync(fd)
            close(fd)
            rename(tmp, statePath)
        } catch {
            FileHandle.standardError.write(Data("coordinator: cannot save state: \(error)\n".utf8))
        }
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
        server.register(self)
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
            response = server.handle(request, from: identity, remoteAddress: remoteAddress)
        } catch {
            response = .refused("malformed request: \(error)")
        }
        if wait > 0, response.isJobsAnswer, response == lastAnswer {
            held = context.eventLoop.scheduleTask(in: .milliseconds(Int64(wait * 1000))) { [self] in release() }
            return
        }
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
