import NIOCore

/// Events the TLS handler sends up the pipeline.
public enum TLSEvent: Sendable, Equatable {
    /// The handshake finished and the peer's certificate checked out; here is who it is.
    case handshakeCompleted(FleetIdentity)
}

/// A SwiftNIO channel handler that runs mutually authenticated TLS 1.3 (OpenSSL, memory BIOs).
///
/// Ciphertext in and out of the channel, plaintext to and from the handlers above. Writes made
/// before the handshake completes are held and sent after it. A failed handshake (no certificate,
/// another CA, expired, a peer the `authorize` check refuses) fires the `TLSError` and closes the
/// channel before any plaintext is delivered either way.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State { case idle, handshaking, active, closing, closed }

    private let connection: TLSConnection
    private let authorize: @Sendable (FleetIdentity) -> String?
    private var state = State.idle
    private var pendingWrites: [(ByteBuffer, EventLoopPromise<Void>?)] = []

    /// - Parameter authorize: returns nil to accept the authenticated peer, or the reason to refuse it
    ///   (for example a role that may not connect here).
    public init(context: TLSContext, role: TLSConnection.Role, authorize: @escaping @Sendable (FleetIdentity) -> String? = { _ in nil }) throws {
        self.connection = try TLSConnection(context: context, role: role)
        self.authorize = authorize
    }

    public var peerIdentity: FleetIdentity? { connection.peerIdentity }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard state == .idle else { return }
        state = .handshaking
        if connection.role == .client { advanceHandshake(context: context) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard state != .closed else { return }
        buffer.withUnsafeReadableBytes { connection.receive(ciphertext: $0) }
        buffer.moveReaderIndex(to: buffer.writerIndex)
        if state == .idle { state = .handshaking }
        if state == .handshaking {
            advanceHandshake(context: context)
            guard state == .active else { return }
        }
        deliverPlaintext(context: context)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        do {
            let result = try connection.handshake()
            flushCiphertext(context: context, promise: nil)
            guard case .complete(let identity) = result else { return }
            if let refusal = authorize(identity) {
                throw TLSError("refused \(identity): \(refusal)", drainingOpenSSL: false)
            }
            state = .active
            context.fireUserInboundEventTriggered(TLSEvent.handshakeCompleted(identity))
            let writes = pendingWrites
            pendingWrites.removeAll()
            for (buffer, promise) in writes { encrypt(context: context, buffer, promise: promise) }
            if !writes.isEmpty { context.flush() }
        } catch {
            fail(context: context, error)
        }
    }

    private func deliverPlaintext(context: ChannelHandlerContext) {
        do {
            let (bytes, closed) = try connection.readPlaintext()
            if !bytes.isEmpty {
                var out = context.channel.allocator.buffer(capacity: bytes.count)
                out.writeBytes(bytes)
                context.fireChannelRead(wrapInboundOut(out))
            }
            flushCiphertext(context: context, promise: nil)  // post-handshake messages, if any
            if closed {
                state = .closed
                context.close(promise: nil)
            }
        } catch {
            fail(context: context, error)
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapOutboundIn(data)
        switch state {
        case .idle, .handshaking: pendingWrites.append((buffer, promise))
        case .active: encrypt(context: context, buffer, promise: promise)
        case .closing, .closed: promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    private func encrypt(context: ChannelHandlerContext, _ buffer: ByteBuffer, promise: EventLoopPromise<Void>?) {
        do {
            try buffer.withUnsafeReadableBytes { try connection.write(plaintext: $0) }
            flushCiphertext(context: context, promise: promise, flush: false)
        } catch {
            promise?.fail(error)
            fail(context: context, error)
        }
    }

    private func flushCiphertext(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?, flush: Bool = true) {
        let bytes = connection.takeCiphertext()
        guard !bytes.isEmpty else {
            promise?.succeed(())
            return
        }
        var out = context.channel.allocator.buffer(capacity: bytes.count)
        out.writeBytes(bytes)
        context.write(wrapOutboundOut(out), promise: promise)
        if flush { context.flush() }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        if state == .active {
            state = .closing
            connection.shutdown()
            flushCiphertext(context: context, promise: nil)
        }
        state = .closed
        failPending(ChannelError.ioOnClosedChannel)
        context.close(mode: mode, promise: promise)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        failPending(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    private func fail(context: ChannelHandlerContext, _ error: any Error) {
        guard state != .closed else { return }
        state = .closed
        failPending(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    private func failPending(_ error: any Error) {
        let writes = pendingWrites
        pendingWrites.removeAll()
        for (_, promise) in writes { promise?.fail(error) }
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
