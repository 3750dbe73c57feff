import Foundation
import NIOCore
import NIOPosix
import ShoalTLS
import ShoalWire

/// A control-protocol connection to the coordinator: one request, one response, in order.
public final class ControlClient: @unchecked Sendable {
    // Invariant: `waiting` is only touched on the channel's event loop.
    private let channel: any Channel
    private let handler: ResponseHandler

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ d: String) { description = d }
    }

    /// Connects and completes the TLS handshake; fails if the coordinator's certificate does not
    /// check out or does not carry the coordinator role.
    public static func connect(to address: String, tls: TLSContext, group: any EventLoopGroup) -> EventLoopFuture<ControlClient> {
        guard let (host, port) = parseHostPort(address) else {
            return group.next().makeFailedFuture(Failure("bad coordinator address \(address) (want HOST:PORT)"))
        }
        let handler = ResponseHandler()
        let handshake = group.next().makePromise(of: FleetIdentity.self)
        handler.handshake = handshake
        return ClientBootstrap(group: group)
            .connectTimeout(.seconds(5))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let tlsHandler = try TLSHandler(context: tls, role: .client) { peer in
                        peer.role == .coordinator ? nil : "not the coordinator (certificate role \(peer.role.rawValue))"
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        tlsHandler, ByteToMessageHandler(LengthPrefixedFrameDecoder(maxFrameLength: ControlProtocol.maxFrameLength)), handler,
                    ])
                }
            }
            .connect(host: host, port: port)
            .flatMapError { error in
                // The connection never came up: nobody else will complete the handshake promise.
                handshake.fail(error)
                return group.next().makeFailedFuture(Failure("cannot connect to the coordinator at \(address): \(error)"))
            }
            .flatMap { channel in
                handshake.futureResult.map { identity in ControlClient(channel: channel, handler: handler, peerIdentity: identity) }
            }
    }

    /// The identity the coordinator's certificate carries on this connection (checked by the
    /// TLS handshake against the fleet CA). A host takes orders only from a connection whose
    /// identity has role coordinator.
    public let peerIdentity: FleetIdentity

    private init(channel: any Channel, handler: ResponseHandler, peerIdentity: FleetIdentity) {
        self.channel = channel
        self.handler = handler
        self.peerIdentity = peerIdentity
    }

    public func send(_ request: ControlRequest) -> EventLoopFuture<ControlResponse> {
        sendRaw(request).flatMapThrowing { buffer in try ControlProtocol.decode(ControlResponse.self, from: buffer.readableBytesView) }
    }

    /// Sends `request` and returns the response frame's JSON undecoded (a load generator that
    /// only classifies answers need not decode ten thousand peer endpoints per answer).
    public func sendRaw(_ request: ControlRequest) -> EventLoopFuture<ByteBuffer> {
        let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
        let bytes: [UInt8]
        do { bytes = try ControlProtocol.encode(request) } catch { return channel.eventLoop.makeFailedFuture(error) }
        channel.eventLoop.execute { [handler, channel] in
            handler.waiting.append(promise)
            channel.writeAndFlush(ByteBuffer(bytes: bytes)).whenFailure { promise.fail($0) }
        }
        return promise.futureResult
    }

    public func close() { channel.close(promise: nil) }

    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    final class ResponseHandler: ChannelInboundHandler, @unchecked Sendable {
        // Invariant: used only on its channel's event loop.
        typealias InboundIn = ByteBuffer
        var waiting: [EventLoopPromise<ByteBuffer>] = []
        var handshake: EventLoopPromise<FleetIdentity>?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let buffer = unwrapInboundIn(data)
            guard !waiting.isEmpty else { return }
            waiting.removeFirst().succeed(buffer)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted(let identity)? = event as? TLSEvent {
                handshake?.succeed(identity)
                handshake = nil
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            handshake?.fail(error)
            handshake = nil
            failAll(error)
            context.close(promise: nil)
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            handshake?.fail(Failure("connection closed"))
            handshake = nil
            failAll(Failure("connection to the coordinator closed"))
        }

        func channelInactive(context: ChannelHandlerContext) {
            handshake?.fail(Failure("connection closed during the TLS handshake"))
            handshake = nil
            failAll(Failure("connection to the coordinator closed"))
            context.fireChannelInactive()
        }

        private func failAll(_ error: any Error) {
            let w = waiting
            waiting.removeAll()
            for p in w { p.fail(error) }
        }
    }
}
