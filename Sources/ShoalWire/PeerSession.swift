import ShoalCrypto

/// The rules of one peer connection, as a pure state machine: events in, actions out, no I/O.
///
/// A connection handler owns one session. It passes every decoded message to
/// ``receive(_:now:)``, the scheduler's decisions to ``request(_:now:)``, ``cancel(_:now:)`` and
/// ``announce(chunk:now:)``, the storage layer's answers to ``pieceReady(for:bytes:now:)`` and
/// ``decline(_:now:)``, and a timer to ``tick(now:)``; it carries out the returned ``Action``s in
/// order. Time is whatever `Instant` the caller passes in, so tests drive timeouts by hand.
///
/// ```
///   start ──► awaitingHello ──hello ok──► active ──goodbye / error / timeout / close──► closed
///                  │                                                                      ▲
///                  └───────────── bad hello / goodbye / error / timeout ──────────────────┘
/// ```
///
/// Rules enforced on the peer (any violation sends `goodbye(protocolError)` and closes):
/// - the first message is hello (or goodbye); a second hello is an error;
/// - the hello carries our protocol version (else `goodbye(unsupportedVersion)`) and our bundle id
///   (else `goodbye(wrongBundle)`);
/// - bitfield, haveAll and haveNone only as the first message after hello; a bitfield's count must
///   be the bundle's chunk count; chunk indices must be below it;
/// - requests only for chunks we announced, of 1…`maxBlockLength` bytes, never the same block twice
///   while it is outstanding; beyond `maxPeerRequests` outstanding requests, more are rejected;
/// - pieces and rejects only for blocks we requested and that are still unanswered (every request
///   is answered by exactly one piece or reject, a cancelled one included);
/// - something must arrive at least every `idleTimeout` (else `goodbye(timeout)`); we send a
///   keepalive when we have sent nothing for `keepaliveInterval`.
///
/// Local commands that break their documented preconditions (requesting a chunk the peer does not
/// have, the same block twice, …) are programmer errors and trap; after the session has closed,
/// local commands do nothing and return no actions.
///
/// ```swift
/// var (session, actions) = PeerSession.start(configuration: config, localHave: have, now: .now)
/// perform(actions)
/// for message in decoded { perform(session.receive(message, now: .now)) }
/// ```
public struct PeerSession<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// Where the connection is in its life.
    public enum State: Hashable, Sendable {
        /// Our hello is sent; the peer's has not arrived.
        case awaitingHello
        /// Both hellos are accepted; data flows.
        case active
        /// A goodbye was sent or received; nothing more happens.
        case closed
    }

    /// What the owner of the session must do, in the order given.
    public enum Action: Hashable, Sendable {
        /// Encode and write this message.
        case send(Message)
        /// Flush what was sent and close the connection; log the reason.
        case close(CloseReason)
        /// The peer's hello was accepted: this is who it is.
        case established(Hello)
        /// The peer's have-set, from its bitfield, haveAll or haveNone.
        case peerHaveSet(Bitfield)
        /// The peer announced one more chunk.
        case peerHas(chunk: UInt32)
        /// A block we requested has arrived (check the chunk before using it).
        case deliverPiece(Piece)
        /// The peer will not serve a block we requested: fetch it elsewhere.
        case requestRejected(BlockRequest)
        /// The peer asks for this block: read (and check) it, then call
        /// ``PeerSession/pieceReady(for:bytes:now:)`` or ``PeerSession/decline(_:now:)``.
        case serve(BlockRequest)
        /// The peer cancelled a block we were asked to serve; the session already rejected it,
        /// so any work on it can stop (a later `pieceReady` for it is ignored).
        case cancelServe(BlockRequest)
    }

    /// Why the session closed.
    public struct CloseReason: Hashable, Sendable, CustomStringConvertible {
        /// Which side said goodbye.
        public enum Initiator: Hashable, Sendable { case local, peer }

        public let initiator: Initiator
        /// The goodbye that was sent (`local`) or received (`peer`).
        public let goodbye: Goodbye

        public init(initiator: Initiator, goodbye: Goodbye) {
            self.initiator = initiator
            self.goodbye = goodbye
        }

        public var description: String {
            switch initiator {
            case .local: return "closed by this side: \(goodbye)"
            case .peer: return "closed by the peer: \(goodbye)"
            }
        }
    }

    /// Whether a request we sent still waits for its piece, or was cancelled and waits for the
    /// piece or reject that answers it.
    public enum RequestStatus: Hashable, Sendable { case pending, cancelled }

    /// The parameters of one session.
    public struct Configuration: Sendable {
        /// Our hello; its version and bundle id are what the peer's hello must match.
        public var hello: Hello
        /// The number of chunks in the bundle (from its manifest).
        public var chunkCount: Int
        /// The largest block we request or serve.
        public var maxBlockLength: Int
        /// How many of the peer's requests may wait to be served; more are rejected.
        public var maxPeerRequests: Int
        /// We send a keepalive when we have sent nothing for this long.
        public var keepaliveInterval: Duration
        /// We close the connection when nothing has arrived for this long.
        public var idleTimeout: Duration

        public init(
            hello: Hello, chunkCount: Int, maxBlockLength: Int = PeerProtocol.defaultMaxBlockLength,
            maxPeerRequests: Int = 64, keepaliveInterval: Duration = .seconds(30), idleTimeout: Duration = .seconds(90)
        ) {
            self.hello = hello
            self.chunkCount = chunkCount
            self.maxBlockLength = maxBlockLength
            self.maxPeerRequests = maxPeerRequests
            self.keepaliveInterval = keepaliveInterval
            self.idleTimeout = idleTimeout
        }
    }

    public let configuration: Configuration
    public private(set) var state: State
    /// The peer's hello, once accepted.
    public private(set) var peerHello: Hello?
    /// The chunks we announced (in our have-set message and our haves).
    public private(set) var localHave: Bitfield
    /// The chunks the peer announced.
    public private(set) var peerHave: Bitfield
    /// Our requests that the peer has not answered yet. Still readable after the session closed,
    /// so the scheduler can fetch these blocks elsewhere.
    public private(set) var ourRequests: [BlockRequest: RequestStatus] = [:]
    /// The peer's requests that we have not answered yet.
    public private(set) var peerRequests: Set<BlockRequest> = []

    private var expectingHaveSet = false
    private var lastReceived: Instant
    private var lastSent: Instant

    private init(configuration: Configuration, localHave: Bitfield, now: Instant) {
        self.configuration = configuration
        self.state = .awaitingHello
        self.localHave = localHave
        self.peerHave = Bitfield(count: configuration.chunkCount)
        self.lastReceived = now
        self.lastSent = now
    }

    /// Starts a session on a new connection: sends our hello and our have-set.
    ///
    /// Both sides start at once; neither waits for the other's hello.
    ///
    /// - Parameters:
    ///   - configuration: Our hello, the bundle's chunk count, limits and timeouts.
    ///   - localHave: The chunks we hold and have verified; its count must be the chunk count.
    ///   - now: The current time.
    /// - Returns: The session, in ``State/awaitingHello``, and the actions to perform: send hello,
    ///   then send haveNone, haveAll or a bitfield.
    public static func start(
        configuration: Configuration, localHave: Bitfield, now: Instant
    ) -> (session: PeerSession, actions: [Action]) {
        precondition(localHave.count == configuration.chunkCount, "localHave has \(localHave.count) bits, the bundle \(configuration.chunkCount) chunks")
        precondition(configuration.maxBlockLength >= 1 && configuration.maxPeerRequests >= 0, "bad session limits")
        let session = PeerSession(configuration: configuration, localHave: localHave, now: now)
        let haveSet: Message = localHave.isEmpty ? .haveNone : localHave.isFull ? .haveAll : .bitfield(localHave)
        return (session, [.send(.hello(configuration.hello)), .send(haveSet)])
    }

    // MARK: Events from the peer

    /// Handles one message from the peer.
    ///
    /// - Parameters:
    ///   - message: The decoded message.
    ///   - now: The current time (the message counts as a sign of life).
    /// - Returns: What to do; a protocol violation yields `send(goodbye)` and `close`.
    public mutating func receive(_ message: Message, now: Instant) -> [Action] {
        switch state {
        case .closed:
            return []
        case .awaitingHello:
            lastReceived = now
            switch message {
            case .hello(let hello):
                return acceptHello(hello, now: now)
            case .goodbye(let goodbye):
                return closedByPeer(goodbye)
            case .haveAll, .haveNone, .bitfield, .have, .request, .piece, .cancel, .reject, .keepalive:
                return protocolError("\(message.type) before hello", now: now)
            }
        case .active:
            lastReceived = now
            let haveSetAllowed = expectingHaveSet
            expectingHaveSet = false
            switch message {
            case .hello:
                return protocolError("second hello", now: now)
            case .haveAll, .haveNone, .bitfield:
                guard haveSetAllowed else {
                    return protocolError("\(message.type) is only allowed right after hello", now: now)
                }
                return receiveHaveSet(message, now: now)
            case .have(let chunk):
                guard Int(chunk) < configuration.chunkCount else {
                    return protocolError("have for chunk \(chunk), the bundle has \(configuration.chunkCount) chunks", now: now)
                }
                guard !peerHave.contains(chunk) else { return [] }
                peerHave[Int(chunk)] = true
                return [.peerHas(chunk: chunk)]
            case .request(let block):
                return receiveRequest(block, now: now)
            case .piece(let piece):
                let block = piece.request
                switch ourRequests.removeValue(forKey: block) {
                case .pending: return [.deliverPiece(piece)]
                case .cancelled: return []
                case nil: return protocolError("unsolicited piece: \(block) was not requested", now: now)
                }
            case .reject(let block):
                switch ourRequests.removeValue(forKey: block) {
                case .pending: return [.requestRejected(block)]
                case .cancelled: return []
                case nil: return protocolError("reject for \(block), which was not requested", now: now)
                }
            case .cancel(let block):
                // Not outstanding: already answered, and the answer crossed the cancel. Fine.
                guard peerRequests.remove(block) != nil else { return [] }
                return [.cancelServe(block), send(.reject(block), now: now)]
            case .keepalive:
                return []
            case .goodbye(let goodbye):
                return closedByPeer(goodbye)
            }
        }
    }

    /// The decoder failed on the peer's bytes: say why and close.
    ///
    /// - Returns: `send(goodbye(protocolError, error.description))` and `close`, or nothing if
    ///   the session is already closed.
    public mutating func decodingFailed(_ error: WireError, now: Instant) -> [Action] {
        switch state {
        case .closed: return []
        case .awaitingHello, .active: return protocolError(error.description, now: now)
        }
    }

    /// Checks the timers: closes an idle connection and sends keepalives.
    ///
    /// Call it at ``nextTimeout`` (or more often).
    ///
    /// - Returns: `send(goodbye(timeout))` and `close` if nothing arrived for `idleTimeout`;
    ///   `send(keepalive)` if we sent nothing for `keepaliveInterval`; otherwise nothing.
    public mutating func tick(now: Instant) -> [Action] {
        switch state {
        case .closed:
            return []
        case .awaitingHello, .active:
            if now >= lastReceived.advanced(by: configuration.idleTimeout) {
                let what = state == .awaitingHello ? "no hello" : "nothing"
                return closeLocally(Goodbye(.timeout, "\(what) received for \(configuration.idleTimeout)"), now: now)
            }
            if now >= lastSent.advanced(by: configuration.keepaliveInterval) {
                return [send(.keepalive, now: now)]
            }
            return []
        }
    }

    /// When ``tick(now:)`` next has something to do; `nil` once closed.
    public var nextTimeout: Instant? {
        switch state {
        case .closed: return nil
        case .awaitingHello, .active:
            return min(lastReceived.advanced(by: configuration.idleTimeout), lastSent.advanced(by: configuration.keepaliveInterval))
        }
    }

    // MARK: Local commands

    /// Requests a block from the peer.
    ///
    /// Preconditions: the peer announced `block.chunk`, `block.length` is 1…`maxBlockLength`, and
    /// `block` is not among ``ourRequests`` (not even cancelled and unanswered).
    ///
    /// - Returns: `send(request)`; nothing if the session is closed.
    public mutating func request(_ block: BlockRequest, now: Instant) -> [Action] {
        switch state {
        case .closed: return []
        case .awaitingHello, .active: break
        }
        precondition(peerHave.contains(block.chunk), "requesting \(block) from a peer that has not announced it")
        precondition(block.length >= 1 && Int(block.length) <= configuration.maxBlockLength, "bad block length in \(block)")
        precondition(UInt64(block.offset) + UInt64(block.length) <= UInt64(UInt32.max) + 1, "\(block) runs past 2^32")
        precondition(ourRequests[block] == nil, "\(block) is already outstanding")
        ourRequests[block] = .pending
        return [send(.request(block), now: now)]
    }

    /// Cancels one of our pending requests. Its answer (piece or reject) is then dropped quietly.
    ///
    /// - Returns: `send(cancel)`; nothing if the request is not pending (already answered or
    ///   cancelled) or the session is closed.
    public mutating func cancel(_ block: BlockRequest, now: Instant) -> [Action] {
        switch state {
        case .closed: return []
        case .awaitingHello, .active: break
        }
        guard ourRequests[block] == .pending else { return [] }
        ourRequests[block] = .cancelled
        return [send(.cancel(block), now: now)]
    }

    /// The bytes of a block the peer asked for (after a ``Action/serve(_:)``) are ready.
    ///
    /// Precondition: `bytes.count == block.length`.
    ///
    /// - Returns: `send(piece)`; nothing if the peer cancelled the request meanwhile or the session
    ///   is closed.
    public mutating func pieceReady(for block: BlockRequest, bytes: [UInt8], now: Instant) -> [Action] {
        precondition(bytes.count == Int(block.length), "\(bytes.count) bytes for \(block)")
        switch state {
        case .closed: return []
        case .awaitingHello, .active: break
        }
        guard peerRequests.remove(block) != nil else { return [] }
        return [send(.piece(Piece(chunk: block.chunk, offset: block.offset, bytes: bytes)), now: now)]
    }

    /// We will not serve a block the peer asked for (no upload slot, the chunk failed its check…).
    ///
    /// - Returns: `send(reject)`; nothing if the request is no longer outstanding or the session
    ///   is closed.
    public mutating func decline(_ block: BlockRequest, now: Instant) -> [Action] {
        switch state {
        case .closed: return []
        case .awaitingHello, .active: break
        }
        guard peerRequests.remove(block) != nil else { return [] }
        return [send(.reject(block), now: now)]
    }

    /// We now hold (and have verified) a chunk: tell the peer.
    ///
    /// Precondition: `chunk` is below the chunk count.
    ///
    /// - Returns: `send(have)`; nothing if it was already announced or the session is closed.
    public mutating func announce(chunk: UInt32, now: Instant) -> [Action] {
        precondition(Int(chunk) < configuration.chunkCount, "chunk \(chunk) out of range")
        switch state {
        case .closed: return []
        case .awaitingHello, .active: break
        }
        guard !localHave.contains(chunk) else { return [] }
        localHave[Int(chunk)] = true
        return [send(.have(chunk: chunk), now: now)]
    }

    /// Closes the session from our side (done, shutting down, bad chunk, banned, …).
    ///
    /// - Returns: `send(goodbye)` and `close`; nothing if already closed.
    public mutating func close(_ goodbye: Goodbye, now: Instant) -> [Action] {
        switch state {
        case .closed: return []
        case .awaitingHello, .active: return closeLocally(goodbye, now: now)
        }
    }

    // MARK: Internals

    private mutating func acceptHello(_ hello: Hello, now: Instant) -> [Action] {
        let ours = configuration.hello
        guard hello.version == ours.version else {
            return closeLocally(Goodbye(.unsupportedVersion, "peer speaks protocol version \(hello.version), this side speaks \(ours.version)"), now: now)
        }
        guard hello.bundleID == ours.bundleID else {
            return closeLocally(Goodbye(.wrongBundle, "peer is on bundle \(hello.bundleID.shortHex), this side on \(ours.bundleID.shortHex)"), now: now)
        }
        state = .active
        peerHello = hello
        expectingHaveSet = true
        return [.established(hello)]
    }

    private mutating func receiveHaveSet(_ message: Message, now: Instant) -> [Action] {
        let count = configuration.chunkCount
        switch message {
        case .haveAll:
            peerHave = .full(count: count)
        case .haveNone:
            peerHave = Bitfield(count: count)
        case .bitfield(let bitfield):
            guard bitfield.count == count else {
                return protocolError("bitfield of \(bitfield.count) chunks, the bundle has \(count)", now: now)
            }
            peerHave = bitfield
        case .hello, .have, .request, .piece, .cancel, .reject, .keepalive, .goodbye:
            preconditionFailure("not a have-set message: \(message.type)")
        }
        return [.peerHaveSet(peerHave)]
    }

    private mutating func receiveRequest(_ block: BlockRequest, now: Instant) -> [Action] {
        guard Int(block.chunk) < configuration.chunkCount else {
            return protocolError("request for chunk \(block.chunk), the bundle has \(configuration.chunkCount) chunks", now: now)
        }
        guard block.length >= 1 && Int(block.length) <= configuration.maxBlockLength else {
            return protocolError("request of \(block.length) bytes, the maximum block is \(configuration.maxBlockLength)", now: now)
        }
        guard localHave.contains(block.chunk) else {
            return protocolError("request for chunk \(block.chunk), which this side has not announced", now: now)
        }
        guard !peerRequests.contains(block) else {
            return protocolError("duplicate request for \(block)", now: now)
        }
        guard peerRequests.count < configuration.maxPeerRequests else {
            return [send(.reject(block), now: now)]
        }
        peerRequests.insert(block)
        return [.serve(block)]
    }

    private mutating func send(_ message: Message, now: Instant) -> Action {
        lastSent = now
        return .send(message)
    }

    private mutating func protocolError(_ text: String, now: Instant) -> [Action] {
        closeLocally(Goodbye(.protocolError, text), now: now)
    }

    private mutating func closeLocally(_ goodbye: Goodbye, now: Instant) -> [Action] {
        state = .closed
        return [send(.goodbye(goodbye), now: now), .close(CloseReason(initiator: .local, goodbye: goodbye))]
    }

    private mutating func closedByPeer(_ goodbye: Goodbye) -> [Action] {
        state = .closed
        return [.close(CloseReason(initiator: .peer, goodbye: goodbye))]
    }
}
