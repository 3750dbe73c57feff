import Foundation
import Glibc
import NIOCore
import NIOEmbedded
import NIOPosix
import ShoalTLS
import ShoalTestKit
import Testing

/// A fleet with certificates for tests, issued in-process.
struct TestFleet {
    let ca: FleetCA
    init() throws { ca = try FleetCA.create(name: "test CA") }

    func files(_ host: String, site: String = "a", role: FleetIdentity.Role = .peer, notAfterOffset: Int64? = nil, notBeforeOffset: Int64 = -3600) throws -> TLSFiles {
        let (cert, key) = try ca.issue(FleetIdentity(host: host, site: site, role: role), notBeforeOffset: notBeforeOffset, notAfterOffset: notAfterOffset)
        return TLSFiles(ca: ca.certificate, certificate: cert, key: key)
    }

    func context(_ host: String, site: String = "a", role: FleetIdentity.Role = .peer) throws -> TLSContext {
        try TLSContext(files: files(host, site: site, role: role))
    }
}

/// Moves ciphertext between two connections until both handshakes end (or one fails).
func handshakeInMemory(_ client: TLSConnection, _ server: TLSConnection) throws -> (FleetIdentity, FleetIdentity) {
    var clientDone: FleetIdentity?, serverDone: FleetIdentity?
    for _ in 0..<20 {
        if clientDone == nil, case .complete(let id) = try client.handshake() { clientDone = id }
        server.receive(ciphertext: client.takeCiphertext())
        if serverDone == nil, case .complete(let id) = try server.handshake() { serverDone = id }
        client.receive(ciphertext: server.takeCiphertext())
        if let clientDone, let serverDone {
            // The client finishes first in TLS 1.3; let it read the server's last flight.
            _ = try client.readPlaintext()
            return (clientDone, serverDone)
        }
    }
    throw TLSError("handshake did not finish", drainingOpenSSL: false)
}

struct CertificateTests {
    @Test func issuedCertificatesCarryHostSiteAndRole() throws {
        let fleet = try TestFleet()
        let files = try fleet.files("host-1", site: "frankfurt", role: .seed)
        let reloaded = try Certificate(pem: files.certificate.pemRepresentation)
        #expect(reloaded.identity == FleetIdentity(host: "host-1", site: "frankfurt", role: .seed))
        #expect(try Certificate(pem: fleet.ca.certificate.pemRepresentation).identity == nil)  // the CA is not a host
        _ = try PrivateKey(pem: files.key.pemRepresentation)
        #expect(throws: TLSError.self) { try fleet.ca.issue(FleetIdentity(host: "bad name", site: "a", role: .peer)) }
        #expect(throws: TLSError.self) { try fleet.ca.issue(FleetIdentity(host: "h", site: "", role: .peer)) }
    }

    @Test func caAndHostFilesOnDiskAreReadableByOpenSSL() throws {
        try TemporaryDirectory.with { dir in
            let fleet = try TestFleet()
            try fleet.ca.save(directory: dir.file("ca"))
            #expect(throws: TLSError.self) { try fleet.ca.save(directory: dir.file("ca")) }  // no silent overwrite
            let loaded = try FleetCA.load(directory: dir.file("ca"))
            try loaded.issue(FleetIdentity(host: "h1", site: "s1", role: .peer), into: dir.file("h1"))
            var st = stat()
            stat(dir.file("h1/host.key"), &st)
            #expect(st.st_mode & 0o777 == 0o600)
            let files = try TLSFiles.load(directory: dir.file("h1"))
            #expect(files.certificate.identity?.site == "s1")
            if let openssl = ChildProcess.which("openssl") {
                let r = try ChildProcess.run(openssl, ["verify", "-CAfile", dir.file("h1/ca.pem"), dir.file("h1/host.pem")])
                #expect(r.status == 0 && r.stdout.contains("OK"), "\(r.stdout) \(r.stderr)")
                let text = try ChildProcess.run(openssl, ["x509", "-in", dir.file("h1/host.pem"), "-noout", "-subject", "-ext", "subjectAltName,extendedKeyUsage"])
                #expect(text.stdout.contains("CN = h1") && text.stdout.contains("OU = s1") && text.stdout.contains("DNS:h1"), "\(text.stdout)")
            }
        }
    }
}

struct TLSConnectionTests {
    @Test func mutualHandshakeAndDataBothWays() throws {
        let fleet = try TestFleet()
        let client = try TLSConnection(context: fleet.context("c1", site: "a"), role: .client)
        let server = try TLSConnection(context: fleet.context("s1", site: "b"), role: .server)
        let (seenByClient, seenByServer) = try handshakeInMemory(client, server)
        #expect(seenByClient == FleetIdentity(host: "s1", site: "b", role: .peer))
        #expect(seenByServer == FleetIdentity(host: "c1", site: "a", role: .peer))
        let message = TestData.random(200_000, seed: 1)
        try client.write(plaintext: message)
        let wire = client.takeCiphertext()
        #expect(wire.count > message.count)  // encrypted and framed
        let probe = Array(message.prefix(32))
        #expect(!(0...(wire.count - probe.count)).contains { Array(wire[$0..<$0 + probe.count]) == probe })
        server.receive(ciphertext: wire)
        #expect(try server.readPlaintext().bytes == message)
        try server.write(plaintext: Array("pong".utf8))
        client.receive(ciphertext: server.takeCiphertext())
        #expect(try client.readPlaintext().bytes == Array("pong".utf8))
        server.shutdown()
        client.receive(ciphertext: server.takeCiphertext())
        #expect(try client.readPlaintext().closed)
    }

    @Test func aCertificateFromAnotherCAIsRefused() throws {
        let fleet = try TestFleet(), other = try TestFleet()
        let client = try TLSConnection(context: other.context("intruder"), role: .client)
        let server = try TLSConnection(context: fleet.context("s1"), role: .server)
        #expect(throws: TLSError.self) { _ = try handshakeInMemory(client, server) }
        #expect(server.peerIdentity == nil)
    }

    @Test func anExpiredCertificateIsRefusedBothWays() throws {
        let fleet = try TestFleet()
        let expired = try TLSContext(files: fleet.files("old", notAfterOffset: -60, notBeforeOffset: -86400))
        do {
            let client = try TLSConnection(context: expired, role: .client)
            let server = try TLSConnection(context: fleet.context("s1"), role: .server)
            #expect(throws: TLSError.self) { _ = try handshakeInMemory(client, server) }
        }
        do {
            let client = try TLSConnection(context: fleet.context("c1"), role: .client)
            let server = try TLSConnection(context: expired, role: .server)
            do {
                _ = try handshakeInMemory(client, server)
                Issue.record("expired server accepted")
            } catch let e as TLSError {
                #expect(e.message.contains("expired"), "\(e)")
            }
        }
    }

    @Test func aCertificateNotYetValidIsRefused() throws {
        let fleet = try TestFleet()
        let future = try TLSContext(files: fleet.files("future", notAfterOffset: 86400 * 2, notBeforeOffset: 86400))
        let client = try TLSConnection(context: fleet.context("c1"), role: .client)
        let server = try TLSConnection(context: future, role: .server)
        #expect(throws: TLSError.self) { _ = try handshakeInMemory(client, server) }
    }
}

/// Two embedded channels joined back to back (no sockets), as swift-nio-ssl tests do.
final class EchoUppercase: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        let text = buffer.readString(length: buffer.readableBytes) ?? ""
        var out = context.channel.allocator.buffer(capacity: text.utf8.count)
        out.writeString(text.uppercased())
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }
}

final class Recorder: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    var received = ""
    var events: [TLSEvent] = []
    var errors: [String] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readString(length: buffer.readableBytes) ?? ""
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSEvent { events.append(e) }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append("\(error)") }
}

struct TLSHandlerTests {
    /// Moves outbound bytes of each channel into the other until neither has anything to send.
    func interact(_ a: EmbeddedChannel, _ b: EmbeddedChannel) throws {
        var moved = true
        while moved {
            moved = false
            while let out = try a.readOutbound(as: ByteBuffer.self) { try b.writeInbound(out); moved = true }
            while let out = try b.readOutbound(as: ByteBuffer.self) { try a.writeInbound(out); moved = true }
        }
    }

    @Test func handshakeThenPlaintextThroughThePipeline() throws {
        let fleet = try TestFleet()
        let clientRecorder = Recorder(), serverRecorder = Recorder()
        let client = EmbeddedChannel(handlers: [try TLSHandler(context: fleet.context("c1"), role: .client), clientRecorder])
        let server = EmbeddedChannel(handlers: [try TLSHandler(context: fleet.context("s1", site: "b"), role: .server), EchoUppercase(), serverRecorder])
        // Written before the handshake: held, then sent encrypted.
        client.writeAndFlush(ByteBuffer(string: "hello fleet"), promise: nil)
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try interact(client, server)
        #expect(clientRecorder.events == [.handshakeCompleted(FleetIdentity(host: "s1", site: "b", role: .peer))])
        #expect(clientRecorder.received == "HELLO FLEET")
        _ = try? client.finish()
        _ = try? server.finish()
    }

    @Test func theAuthorizeHookRefusesAPeerBeforeAnyData() throws {
        let fleet = try TestFleet()
        let serverRecorder = Recorder()
        let client = EmbeddedChannel(handlers: [try TLSHandler(context: fleet.context("c1", site: "a"), role: .client)])
        let server = EmbeddedChannel(handlers: [
            try TLSHandler(context: fleet.context("coord", role: .coordinator), role: .server) { peer in
                peer.role == .coordinator ? nil : "only coordinators may connect"
            },
            serverRecorder,
        ])
        client.writeAndFlush(ByteBuffer(string: "secret"), promise: nil)
        try client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
        try? interact(client, server)
        #expect(serverRecorder.received == "")
        #expect(serverRecorder.errors.contains { $0.contains("only coordinators") }, "\(serverRecorder.errors)")
        #expect(!server.isActive)
        _ = try? client.finish()
    }
}

/// Interoperability with stock `openssl s_client` / `s_server` over real loopback sockets.
@Suite(.serialized) struct OpenSSLInteropTests {
    let openssl = ChildProcess.which("openssl")

    func writeFiles(_ fleet: TestFleet, _ host: String, role: FleetIdentity.Role = .peer, in dir: TemporaryDirectory) throws -> String {
        let path = dir.file(host)
        try fleet.ca.issue(FleetIdentity(host: host, site: "a", role: role), into: path)
        return path
    }

    @Test func opensslClientAgainstOurServer() throws {
        let openssl = try #require(openssl, "openssl is needed (apt-get install openssl)")
        try TemporaryDirectory.with { dir in
            let fleet = try TestFleet()
            let serverFiles = try fleet.files("server")
            let clientDir = try writeFiles(fleet, "client", in: dir)
            let stranger = try TestFleet()
            let strangerDir = dir.file("stranger")
            try stranger.ca.issue(FleetIdentity(host: "stranger", site: "a", role: .peer), into: strangerDir)

            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            let context = try TLSContext(files: serverFiles)
            let received = NIOLockedValueBoxLite()
            let server = try ServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let recorder = RecordingEcho(received)
                        try channel.pipeline.syncOperations.addHandlers([try TLSHandler(context: context, role: .server), recorder])
                    }
                }
                .bind(host: "127.0.0.1", port: 0).wait()
            defer { try? server.close().wait() }
            let port = server.localAddress!.port!

            func sClient(_ extra: [String]) throws -> ProcessResult {
                try ChildProcess.run("/bin/sh", ["-c", "printf 'ping\\n' | timeout 10 \(openssl) s_client -connect 127.0.0.1:\(port) -tls1_3 -quiet -verify_return_error -CAfile \(clientDir)/ca.pem \(extra.joined(separator: " ")) 2>&1"])
            }
            let ok = try sClient(["-cert", clientDir + "/host.pem", "-key", clientDir + "/host.key", "-verify_hostname", "server"])
            #expect(ok.stdout.contains("PING"), "\(ok.stdout)")
            let before = received.count
            let noCert = try sClient([])
            #expect(!noCert.stdout.contains("PING"), "\(noCert.stdout)")
            let otherCA = try sClient(["-cert", strangerDir + "/host.pem", "-key", strangerDir + "/host.key"])
            #expect(!otherCA.stdout.contains("PING"), "\(otherCA.stdout)")
            #expect(received.count == before)  // nothing was delivered from unauthenticated clients
        }
    }

    @Test func ourClientAgainstOpensslServer() throws {
        let openssl = try #require(openssl, "openssl is needed (apt-get install openssl)")
        try TemporaryDirectory.with { dir in
            let fleet = try TestFleet()
            let serverDir = try writeFiles(fleet, "sserver", in: dir)
            let port = Int.random(in: 20000..<60000)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: openssl)
            p.arguments = ["s_server", "-accept", "127.0.0.1:\(port)", "-tls1_3", "-cert", serverDir + "/host.pem", "-key", serverDir + "/host.key",
                           "-CAfile", serverDir + "/ca.pem", "-Verify", "1", "-verify_return_error", "-rev", "-naccept", "1", "-quiet"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) }; p.waitUntilExit() }
            usleep(500_000)

            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            defer { try? group.syncShutdownGracefully() }
            let recorder = Recorder()
            let context = try fleet.context("me")
            let channel = try ClientBootstrap(group: group)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers([try TLSHandler(context: context, role: .client), recorder])
                    }
                }
                .connect(host: "127.0.0.1", port: port).wait()
            try channel.writeAndFlush(ByteBuffer(string: "shoal\n")).wait()
            var waited = 0
            while waited < 100, try channel.eventLoop.submit({ recorder.received }).wait().isEmpty {
                usleep(50_000)
                waited += 1
            }
            let reply = try channel.eventLoop.submit { recorder.received }.wait()
            #expect(reply.contains("laohs"), "\(reply)")  // s_server -rev reverses each line
            let events = try channel.eventLoop.submit { recorder.events }.wait()
            #expect(events == [.handshakeCompleted(FleetIdentity(host: "sserver", site: "a", role: .peer))])
            try? channel.close().wait()
        }
    }
}

/// A thread-safe counter of bytes received by the server's children.
final class NIOLockedValueBoxLite: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func add(_ n: Int) { lock.withLock { value += n } }
    var count: Int { lock.withLock { value } }
}

final class RecordingEcho: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let counter: NIOLockedValueBoxLite
    init(_ counter: NIOLockedValueBoxLite) { self.counter = counter }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        counter.add(buffer.readableBytes)
        let text = buffer.readString(length: buffer.readableBytes) ?? ""
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text.uppercased())), promise: nil)
        context.close(promise: nil)
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
