import ShoalCrypto
@testable import ShoalWire
import Testing

typealias Session = PeerSession<TestInstant>

/// Builders that bring a session to the state a test starts from.
enum SessionFixtures {
    static let chunkCount = 8
    static let t0 = TestInstant.zero

    static func configuration(maxPeerRequests: Int = 64, maxBlockLength: Int = PeerProtocol.defaultMaxBlockLength) -> Session.Configuration {
        Session.Configuration(
            hello: Fixtures.hello(host: "local", site: "fra1"), chunkCount: chunkCount, maxBlockLength: maxBlockLength,
            maxPeerRequests: maxPeerRequests, keepaliveInterval: .seconds(30), idleTimeout: .seconds(90))
    }

    /// We hold chunks 0, 1 and 2.
    static var ourChunks: Bitfield {
        var have = Bitfield(count: chunkCount)
        for i in 0..<3 { have[i] = true }
        return have
    }

    static func started(_ configuration: Session.Configuration = configuration(), localHave: Bitfield = ourChunks) -> Session {
        Session.start(configuration: configuration, localHave: localHave, now: t0).session
    }

    /// Hello exchanged; the peer's have-set is `peerHaveSet` (haveAll by default).
    static func active(
        _ configuration: Session.Configuration = configuration(), peerHaveSet: Message? = .haveAll
    ) -> Session {
        var session = started(configuration)
        let peer = Fixtures.hello(host: "remote", site: "fra1")
        #expect(session.receive(.hello(peer), now: t0) == [.established(peer)])
        if let peerHaveSet { _ = session.receive(peerHaveSet, now: t0) }
        #expect(session.state == .active)
        return session
    }

    static func protocolError(_ actions: [Session.Action]) -> String? {
        guard actions.count == 2, case .send(.goodbye(let goodbye)) = actions[0], goodbye.reason == .protocolError,
            actions[1] == .close(.init(initiator: .local, goodbye: goodbye))
        else { return nil }
        return goodbye.text
    }
}

private typealias F = SessionFixtures

struct PeerSessionHandshakeTests {
    @Test func startSendsHelloThenTheHaveSet() {
        let config = F.configuration()
        let cases: [(Bitfield, Message)] = [
            (Bitfield(count: 8), .haveNone), (.full(count: 8), .haveAll), (F.ourChunks, .bitfield(F.ourChunks)),
        ]
        for (have, haveSet) in cases {
            let (session, actions) = Session.start(configuration: config, localHave: have, now: F.t0)
            #expect(actions == [.send(.hello(config.hello)), .send(haveSet)])
            #expect(session.state == .awaitingHello)
            #expect(session.localHave == have)
            #expect(session.peerHave == Bitfield(count: 8))
        }
    }

    @Test(arguments: [
        Message.haveAll, .haveNone, .bitfield(.full(count: 8)), .have(chunk: 1), .keepalive,
        .request(BlockRequest(chunk: 0, offset: 0, length: 1)), .piece(Piece(chunk: 0, offset: 0, bytes: [1])),
        .cancel(BlockRequest(chunk: 0, offset: 0, length: 1)), .reject(BlockRequest(chunk: 0, offset: 0, length: 1)),
    ])
    func helloMustComeFirst(message: Message) {
        var session = F.started()
        let actions = session.receive(message, now: F.t0)
        #expect(F.protocolError(actions) == "\(message.type) before hello")
        #expect(session.state == .closed)
    }

    @Test func goodbyeBeforeHelloCloses() {
        var session = F.started()
        let goodbye = Goodbye(.banned, "you sent chunk 3 corrupted")
        #expect(session.receive(.goodbye(goodbye), now: F.t0) == [.close(.init(initiator: .peer, goodbye: goodbye))])
        #expect(session.state == .closed)
    }

    @Test func versionMismatchIsRefused() {
        var session = F.started()
        let actions = session.receive(.hello(Fixtures.hello(version: 2)), now: F.t0)
        let goodbye = Goodbye(.unsupportedVersion, "peer speaks protocol version 2, this side speaks 1")
        #expect(actions == [.send(.goodbye(goodbye)), .close(.init(initiator: .local, goodbye: goodbye))])
        #expect(session.state == .closed && session.peerHello == nil)
    }

    @Test func versionMismatchThroughTheDecoder() {
        // A future hello with an extra field still reaches the session, which answers with the
        // right reason rather than a parse error.
        var bytes = Message.hello(Fixtures.hello(version: 7)).encoded() + [1, 2, 3, 4]
        bytes[3] += 4
        var session = F.started()
        let messages = decode(bytes).messages
        #expect(messages.count == 1)
        let actions = session.receive(messages[0], now: F.t0)
        guard case .send(.goodbye(let goodbye)) = actions.first else {
            Issue.record("no goodbye: \(actions)")
            return
        }
        #expect(goodbye.reason == .unsupportedVersion)
    }

    @Test func wrongBundleIsRefused() {
        var session = F.started()
        let actions = session.receive(.hello(Fixtures.hello(bundleID: Fixtures.otherBundleID)), now: F.t0)
        let goodbye = Goodbye(.wrongBundle, "peer is on bundle eeeeeeeeeeee, this side on 000102030405")
        #expect(actions == [.send(.goodbye(goodbye)), .close(.init(initiator: .local, goodbye: goodbye))])
        #expect(session.state == .closed)
    }

    @Test func helloIsAccepted() {
        var session = F.started()
        let peer = Fixtures.hello(host: "remote", site: "ams2", port: 0, role: .seed)
        #expect(session.receive(.hello(peer), now: F.t0) == [.established(peer)])
        #expect(session.state == .active)
        #expect(session.peerHello == peer)
    }

    @Test func secondHelloIsAnError() {
        var session = F.active()
        #expect(F.protocolError(session.receive(.hello(Fixtures.hello()), now: F.t0)) == "second hello")
        #expect(session.state == .closed)
    }
}

struct PeerSessionHaveTests {
    @Test func haveSetRightAfterHello() {
        var bits = Bitfield(count: 8)
        bits[5] = true
        let cases: [(Message, Bitfield)] = [(.haveAll, .full(count: 8)), (.haveNone, Bitfield(count: 8)), (.bitfield(bits), bits)]
        for (message, expected) in cases {
            var session = F.active(peerHaveSet: nil)
            #expect(session.receive(message, now: F.t0) == [.peerHaveSet(expected)])
            #expect(session.peerHave == expected)
        }
    }

    @Test(arguments: [Message.haveAll, .haveNone, .bitfield(.full(count: 8))])
    func haveSetOnlyRightAfterHello(message: Message) {
        // A second have-set message…
        var twice = F.active(peerHaveSet: .haveNone)
        #expect(F.protocolError(twice.receive(message, now: F.t0)) == "\(message.type) is only allowed right after hello")
        // …and one after any other message.
        var late = F.active(peerHaveSet: nil)
        #expect(late.receive(.keepalive, now: F.t0) == [])
        #expect(F.protocolError(late.receive(message, now: F.t0)) != nil)
    }

    @Test func noHaveSetMeansNoChunks() {
        var session = F.active(peerHaveSet: nil)
        #expect(session.receive(.have(chunk: 4), now: F.t0) == [.peerHas(chunk: 4)])
        #expect(session.peerHave.setCount == 1)
    }

    @Test func bitfieldCountMustMatchTheBundle() {
        for count in [7, 9, 0] {
            var session = F.active(peerHaveSet: nil)
            #expect(F.protocolError(session.receive(.bitfield(Bitfield(count: count)), now: F.t0)) == "bitfield of \(count) chunks, the bundle has 8")
        }
    }

    @Test func incrementalHaves() {
        var session = F.active(peerHaveSet: .haveNone)
        #expect(session.receive(.have(chunk: 7), now: F.t0) == [.peerHas(chunk: 7)])
        #expect(session.receive(.have(chunk: 7), now: F.t0) == [])  // repeated: harmless, no news
        #expect(session.peerHave.contains(7) && session.peerHave.setCount == 1)
        #expect(F.protocolError(session.receive(.have(chunk: 8), now: F.t0)) == "have for chunk 8, the bundle has 8 chunks")
    }

    @Test func haveAfterHaveAllIsNoNews() {
        var session = F.active(peerHaveSet: .haveAll)
        #expect(session.receive(.have(chunk: 3), now: F.t0) == [])
    }

    @Test func announceSendsHaveOnce() {
        var session = F.active()
        #expect(session.announce(chunk: 5, now: F.t0) == [.send(.have(chunk: 5))])
        #expect(session.announce(chunk: 5, now: F.t0) == [])
        #expect(session.announce(chunk: 0, now: F.t0) == [])  // in the initial have-set already
        #expect(session.localHave.contains(5))
        // Announced chunks can be requested.
        let block = BlockRequest(chunk: 5, offset: 0, length: 100)
        #expect(session.receive(.request(block), now: F.t0) == [.serve(block)])
    }

    @Test func announceBeforeThePeersHello() {
        var session = F.started()
        #expect(session.announce(chunk: 6, now: F.t0) == [.send(.have(chunk: 6))])
    }
}

struct PeerSessionServingTests {
    let block = BlockRequest(chunk: 1, offset: 16384, length: 16384)

    @Test func requestIsServed() {
        var session = F.active()
        #expect(session.receive(.request(block), now: F.t0) == [.serve(block)])
        #expect(session.peerRequests == [block])
        let bytes = [UInt8](repeating: 9, count: 16384)
        #expect(session.pieceReady(for: block, bytes: bytes, now: F.t0) == [.send(.piece(Piece(chunk: 1, offset: 16384, bytes: bytes)))])
        #expect(session.peerRequests.isEmpty)
        // Served once: a second answer is not sent.
        #expect(session.pieceReady(for: block, bytes: bytes, now: F.t0) == [])
    }

    @Test func requestsOnlyForAnnouncedChunks() {
        var session = F.active()
        let text = F.protocolError(session.receive(.request(BlockRequest(chunk: 3, offset: 0, length: 1)), now: F.t0))
        #expect(text == "request for chunk 3, which this side has not announced")
    }

    @Test func requestForAChunkOutsideTheBundle() {
        var session = F.active()
        #expect(F.protocolError(session.receive(.request(BlockRequest(chunk: 8, offset: 0, length: 1)), now: F.t0)) == "request for chunk 8, the bundle has 8 chunks")
    }

    @Test func requestLongerThanOurMaximumBlock() {
        var session = F.active(F.configuration(maxBlockLength: 1024))
        #expect(F.protocolError(session.receive(.request(BlockRequest(chunk: 0, offset: 0, length: 1025)), now: F.t0)) == "request of 1025 bytes, the maximum block is 1024")
        var zero = F.active()
        #expect(F.protocolError(zero.receive(.request(BlockRequest(chunk: 0, offset: 0, length: 0)), now: F.t0)) != nil)
    }

    @Test func duplicateRequestIsAnError() {
        var session = F.active()
        _ = session.receive(.request(block), now: F.t0)
        #expect(F.protocolError(session.receive(.request(block), now: F.t0)) == "duplicate request for \(block)")
    }

    @Test func requestsBeyondTheLimitAreRejected() {
        var session = F.active(F.configuration(maxPeerRequests: 2))
        let blocks = (0..<4).map { BlockRequest(chunk: 0, offset: UInt32($0) * 100, length: 100) }
        #expect(session.receive(.request(blocks[0]), now: F.t0) == [.serve(blocks[0])])
        #expect(session.receive(.request(blocks[1]), now: F.t0) == [.serve(blocks[1])])
        #expect(session.receive(.request(blocks[2]), now: F.t0) == [.send(.reject(blocks[2]))])
        #expect(session.peerRequests.count == 2)
        // Answering one frees a slot.
        _ = session.decline(blocks[0], now: F.t0)
        #expect(session.receive(.request(blocks[3]), now: F.t0) == [.serve(blocks[3])])
        #expect(session.state == .active)
    }

    @Test func peerCancelRejectsAndStopsTheServe() {
        var session = F.active()
        _ = session.receive(.request(block), now: F.t0)
        #expect(session.receive(.cancel(block), now: F.t0) == [.cancelServe(block), .send(.reject(block))])
        #expect(session.peerRequests.isEmpty)
        // The read finishing later sends nothing: the request was answered by the reject.
        #expect(session.pieceReady(for: block, bytes: [UInt8](repeating: 0, count: 16384), now: F.t0) == [])
        // A cancel that crossed our answer is fine.
        #expect(session.receive(.cancel(block), now: F.t0) == [])
        #expect(session.state == .active)
    }

    @Test func declineSendsReject() {
        var session = F.active()
        _ = session.receive(.request(block), now: F.t0)
        #expect(session.decline(block, now: F.t0) == [.send(.reject(block))])
        #expect(session.decline(block, now: F.t0) == [])
    }
}

struct PeerSessionFetchingTests {
    let block = BlockRequest(chunk: 4, offset: 0, length: 4)

    @Test func requestAndPiece() {
        var session = F.active()
        #expect(session.request(block, now: F.t0) == [.send(.request(block))])
        #expect(session.ourRequests == [block: .pending])
        let piece = Piece(chunk: 4, offset: 0, bytes: [1, 2, 3, 4])
        #expect(session.receive(.piece(piece), now: F.t0) == [.deliverPiece(piece)])
        #expect(session.ourRequests.isEmpty)
        // The same piece again is unsolicited now.
        #expect(F.protocolError(session.receive(.piece(piece), now: F.t0)) == "unsolicited piece: chunk 4 [0, +4) was not requested")
    }

    @Test func unsolicitedPieceIsAnError() {
        var session = F.active()
        #expect(F.protocolError(session.receive(.piece(Piece(chunk: 4, offset: 0, bytes: [1])), now: F.t0)) != nil)
    }

    @Test func pieceMustMatchTheRequestExactly() {
        let wrong = [
            Piece(chunk: 4, offset: 0, bytes: [1, 2, 3]),  // short
            Piece(chunk: 4, offset: 1, bytes: [1, 2, 3, 4]),  // other offset
            Piece(chunk: 5, offset: 0, bytes: [1, 2, 3, 4]),  // other chunk
        ]
        for piece in wrong {
            var session = F.active()
            _ = session.request(block, now: F.t0)
            #expect(F.protocolError(session.receive(.piece(piece), now: F.t0)) != nil)
        }
    }

    @Test func rejectedRequest() {
        var session = F.active()
        _ = session.request(block, now: F.t0)
        #expect(session.receive(.reject(block), now: F.t0) == [.requestRejected(block)])
        #expect(session.ourRequests.isEmpty)
        #expect(F.protocolError(session.receive(.reject(block), now: F.t0)) == "reject for chunk 4 [0, +4), which was not requested")
    }

    @Test func cancelledRequestAnswerIsDroppedQuietly() {
        for answer in [Message.piece(Piece(chunk: 4, offset: 0, bytes: [1, 2, 3, 4])), .reject(block)] {
            var session = F.active()
            _ = session.request(block, now: F.t0)
            #expect(session.cancel(block, now: F.t0) == [.send(.cancel(block))])
            #expect(session.cancel(block, now: F.t0) == [])  // once
            #expect(session.ourRequests == [block: .cancelled])
            #expect(session.receive(answer, now: F.t0) == [])
            #expect(session.ourRequests.isEmpty)
            #expect(session.state == .active)
        }
    }

    @Test func cancelOfAnAnsweredRequestSendsNothing() {
        var session = F.active()
        #expect(session.cancel(block, now: F.t0) == [])
        _ = session.request(block, now: F.t0)
        _ = session.receive(.piece(Piece(chunk: 4, offset: 0, bytes: [1, 2, 3, 4])), now: F.t0)
        #expect(session.cancel(block, now: F.t0) == [])
    }

    @Test func requestsAfterAHaveAreAllowed() {
        var session = F.active(peerHaveSet: .haveNone)
        _ = session.receive(.have(chunk: 6), now: F.t0)
        let block = BlockRequest(chunk: 6, offset: 0, length: UInt32(PeerProtocol.defaultMaxBlockLength))
        #expect(session.request(block, now: F.t0) == [.send(.request(block))])
    }
}

struct PeerSessionLifecycleTests {
    @Test func keepaliveWhenWeHaveBeenQuiet() {
        var session = F.active()
        #expect(session.nextTimeout == F.t0.advanced(by: .seconds(30)))
        #expect(session.tick(now: F.t0.advanced(by: .seconds(29))) == [])
        let t30 = F.t0.advanced(by: .seconds(30))
        _ = session.receive(.keepalive, now: t30)  // the peer's traffic does not count as ours
        #expect(session.tick(now: t30) == [.send(.keepalive)])
        #expect(session.nextTimeout == t30.advanced(by: .seconds(30)))
        // Anything we send resets the keepalive timer.
        let t50 = F.t0.advanced(by: .seconds(50))
        _ = session.announce(chunk: 7, now: t50)
        #expect(session.tick(now: F.t0.advanced(by: .seconds(79))) == [])
        #expect(session.tick(now: F.t0.advanced(by: .seconds(80))) == [.send(.keepalive)])
    }

    @Test func idleConnectionTimesOut() {
        var session = F.active()
        let t60 = F.t0.advanced(by: .seconds(60))
        _ = session.receive(.keepalive, now: t60)
        _ = session.tick(now: t60)
        #expect(session.nextTimeout == t60.advanced(by: .seconds(30)))
        _ = session.tick(now: t60.advanced(by: .seconds(30)))
        _ = session.tick(now: t60.advanced(by: .seconds(60)))
        #expect(session.nextTimeout == t60.advanced(by: .seconds(90)))
        #expect(session.tick(now: t60.advanced(by: .seconds(89))) == [])
        let goodbye = Goodbye(.timeout, "nothing received for 90.0 seconds")
        #expect(session.tick(now: t60.advanced(by: .seconds(90))) == [.send(.goodbye(goodbye)), .close(.init(initiator: .local, goodbye: goodbye))])
        #expect(session.state == .closed)
        #expect(session.nextTimeout == nil)
        #expect(session.tick(now: t60.advanced(by: .seconds(200))) == [])
    }

    @Test func helloTimesOut() {
        var session = F.started()
        let actions = session.tick(now: F.t0.advanced(by: .seconds(90)))
        guard case .send(.goodbye(let goodbye)) = actions.first else {
            Issue.record("no goodbye: \(actions)")
            return
        }
        #expect(goodbye == Goodbye(.timeout, "no hello received for 90.0 seconds"))
        #expect(session.state == .closed)
    }

    @Test func decodingFailureSaysWhy() {
        var session = F.active()
        let error = WireError(.frameTooLarge, "frame length 99999999 exceeds the maximum 1048640")
        #expect(F.protocolError(session.decodingFailed(error, now: F.t0)) == error.description)
        #expect(session.decodingFailed(error, now: F.t0) == [])
        var early = F.started()
        #expect(F.protocolError(early.decodingFailed(error, now: F.t0)) != nil)
    }

    @Test func localClose() {
        var session = F.active()
        let goodbye = Goodbye(.badChunk, "chunk 2 does not match the manifest")
        #expect(session.close(goodbye, now: F.t0) == [.send(.goodbye(goodbye)), .close(.init(initiator: .local, goodbye: goodbye))])
        #expect(session.state == .closed)
        #expect(session.close(goodbye, now: F.t0) == [])
        var early = F.started()
        #expect(early.close(Goodbye(.banned), now: F.t0).count == 2)
    }

    @Test func peerGoodbyeKeepsOurRequestsForRescheduling() {
        var session = F.active()
        let block = BlockRequest(chunk: 2, offset: 0, length: 10)
        _ = session.request(block, now: F.t0)
        let goodbye = Goodbye(.shuttingDown)
        #expect(session.receive(.goodbye(goodbye), now: F.t0) == [.close(.init(initiator: .peer, goodbye: goodbye))])
        #expect(session.ourRequests == [block: .pending])
    }

    @Test func closedSessionIgnoresEverything() {
        var session = F.active()
        let block = BlockRequest(chunk: 0, offset: 0, length: 1)
        _ = session.receive(.request(block), now: F.t0)
        _ = session.request(BlockRequest(chunk: 3, offset: 0, length: 1), now: F.t0)
        _ = session.close(Goodbye(.normal), now: F.t0)
        for message in Fixtures.everyMessage {
            #expect(session.receive(message, now: F.t0) == [])
        }
        #expect(session.request(BlockRequest(chunk: 5, offset: 0, length: 1), now: F.t0) == [])
        #expect(session.cancel(BlockRequest(chunk: 3, offset: 0, length: 1), now: F.t0) == [])
        #expect(session.pieceReady(for: block, bytes: [0], now: F.t0) == [])
        #expect(session.decline(block, now: F.t0) == [])
        #expect(session.announce(chunk: 7, now: F.t0) == [])
        #expect(session.tick(now: F.t0.advanced(by: .seconds(1000))) == [])
        #expect(session.state == .closed)
    }

    @Test func closeReasonsPrint() {
        #expect(Session.CloseReason(initiator: .local, goodbye: Goodbye(.timeout, "x")).description == "closed by this side: timeout: x")
        #expect(Session.CloseReason(initiator: .peer, goodbye: Goodbye(.normal)).description == "closed by the peer: normal")
    }
}

/// Two sessions wired back to back through the real encoder and decoder: a seed serves every
/// chunk to a fresh peer, which then says goodbye.
struct PeerSessionPairTests {
    @Test func seedToPeerTransfer() throws {
        let chunkSize = 1000
        let chunks = (0..<F.chunkCount).map { c in (0..<chunkSize).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ c) } }
        let seedConfig = Session.Configuration(hello: Fixtures.hello(host: "seed", site: "origin", role: .seed), chunkCount: F.chunkCount)
        let peerConfig = Session.Configuration(hello: Fixtures.hello(host: "peer", site: "fra1"), chunkCount: F.chunkCount, maxBlockLength: 300)

        var (seed, seedOut) = Session.start(configuration: seedConfig, localHave: .full(count: F.chunkCount), now: F.t0)
        var (peer, peerOut) = Session.start(configuration: peerConfig, localHave: Bitfield(count: F.chunkCount), now: F.t0)
        var seedDecoder = FrameDecoder()
        var peerDecoder = FrameDecoder()
        var received = [[UInt8]](repeating: [], count: F.chunkCount)
        var closes: [Session.CloseReason] = []

        /// Encodes one side's sends into the other side's decoder, and handles its other actions.
        func perform(_ actions: [Session.Action], on session: inout Session, into decoder: inout FrameDecoder) {
            var bytes: [UInt8] = []
            for action in actions {
                switch action {
                case .send(let message): message.encode(into: &bytes)
                case .serve(let block):
                    let data = Array(chunks[Int(block.chunk)][Int(block.offset)..<Int(block.offset + block.length)])
                    perform(session.pieceReady(for: block, bytes: data, now: F.t0), on: &session, into: &decoder)
                case .deliverPiece(let piece):
                    #expect(Int(piece.offset) == received[Int(piece.chunk)].count)
                    received[Int(piece.chunk)] += piece.bytes
                case .close(let reason): closes.append(reason)
                case .established, .peerHaveSet, .peerHas, .requestRejected, .cancelServe: break
                }
            }
            decoder.feed(bytes)
        }

        perform(seedOut, on: &seed, into: &peerDecoder)
        perform(peerOut, on: &peer, into: &seedDecoder)
        var rounds = 0
        while rounds < 100 {
            rounds += 1
            var progressed = false
            while let message = try peerDecoder.next() {
                progressed = true
                perform(peer.receive(message, now: F.t0), on: &peer, into: &seedDecoder)
            }
            // The peer's scheduler: request every block of the next missing chunk, 300 bytes at a time.
            if peer.state == .active && peer.ourRequests.isEmpty {
                if let next = (0..<F.chunkCount).first(where: { !peer.localHave[$0] && received[$0].count == chunkSize }) {
                    perform(peer.announce(chunk: UInt32(next), now: F.t0), on: &peer, into: &seedDecoder)
                }
                if let missing = (0..<F.chunkCount).first(where: { received[$0].count < chunkSize }) {
                    for offset in stride(from: 0, to: chunkSize, by: 300) {
                        let block = BlockRequest(chunk: UInt32(missing), offset: UInt32(offset), length: UInt32(min(300, chunkSize - offset)))
                        perform(peer.request(block, now: F.t0), on: &peer, into: &seedDecoder)
                    }
                } else if peer.localHave.isFull {
                    perform(peer.close(Goodbye(.normal, "done"), now: F.t0), on: &peer, into: &seedDecoder)
                }
                progressed = true
            }
            while let message = try seedDecoder.next() {
                progressed = true
                perform(seed.receive(message, now: F.t0), on: &seed, into: &peerDecoder)
            }
            if !progressed || (peer.state == .closed && seed.state == .closed) { break }
        }
        #expect(received == chunks)
        #expect(peer.localHave.isFull)
        #expect(seed.peerHave.isFull)  // learned through the peer's haves
        #expect(closes == [.init(initiator: .local, goodbye: Goodbye(.normal, "done")), .init(initiator: .peer, goodbye: Goodbye(.normal, "done"))])
    }
}
