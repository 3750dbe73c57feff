import NIOCore
import ShoalTLS
import ShoalWire

/// One peer-protocol connection, after TLS: bytes ↔ messages. The bundle swarm it belongs to
/// (known at dial time for outbound connections, from the peer's hello for inbound ones) owns the
/// protocol state; this handler only frames and forwards, on the node's single event loop.
final class PeerConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private weak var node: PeerNode?
    private let dialedBundle: String?
    private var decoder = FrameDecoder()
    private(set) var identity: FleetIdentity?
    private var attachment: (swarm: BundleSwarm, id: Int)?
    private var context: ChannelHandlerContext?
    private var pending: [Message] = []

    init(node: PeerNode, dialedBundle: String?) {
        self.node = node
        self.dialedBundle = dialedBundle
    }

    var remoteDescription: String { identity.map { "\($0.host)@\($0.site)" } ?? "unauthenticated peer" }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case .handshakeCompleted(let peer)? = event as? TLSEvent else { return context.fireUserInboundEventTriggered(event) }
        identity = peer
        if let dialedBundle {
            guard let swarm = node?.swarm(for: dialedBundle) else { return close(.init(.wrongBundle, "no longer distributing this bundle")) }
            attachment = (swarm, swarm.attach(self, peer: peer, theirHello: nil))
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        decoder.feed(buffer.readableBytesView)
        while true {
            let message: Message?
            do {
                message = try decoder.next()
            } catch {
                if let attachment { attachment.swarm.decodingFailed(error, from: attachment.id) } else { close(.init(.protocolError, error.description)) }
                return
            }
            guard let message else { return }
            if let attachment {
                attachment.swarm.received(message, from: attachment.id)
                continue
            }
            // Inbound: the first message names the bundle.
            guard let identity, case .hello(let hello) = message else {
                return close(.init(.protocolError, "expected hello"))
            }
            guard let swarm = node?.swarm(for: hello.bundleID.hex) else {
                return close(.init(.wrongBundle, "not distributing bundle \(hello.bundleID.hex.prefix(12))"))
            }
            attachment = (swarm, swarm.attach(self, peer: identity, theirHello: hello))
        }
    }

    func send(_ message: Message) {
        guard let context else { return }
        var bytes: [UInt8] = []
        message.encode(into: &bytes)
        context.write(wrapOutboundOut(ByteBuffer(bytes: bytes)), promise: nil)
    }

    func flush() { context?.flush() }

    func close(_ goodbye: Goodbye?) {
        if let goodbye { send(.goodbye(goodbye)) }
        context?.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: nil)
        context?.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let attachment { attachment.swarm.detach(attachment.id) }
        attachment = nil
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        node?.log("connection \(remoteDescription): \(error)")
        context.close(promise: nil)
    }
}
