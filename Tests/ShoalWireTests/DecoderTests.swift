@testable import ShoalWire
import ShoalTestKit
import Testing

/// Split-point independence, in the spirit of NIO's `ByteToMessageDecoderVerifier`: however the
/// stream is cut, the same messages come out.
struct DecoderSplitTests {
    static let stream = Fixtures.frames(Fixtures.everyMessage)

    @Test func coalesced() {
        #expect(decode(Self.stream) == DecodeOutcome(messages: Fixtures.everyMessage))
    }

    @Test func oneByteAtATime() {
        let cuts = Array(1..<Self.stream.count)
        #expect(decode(Self.stream, cuts: cuts) == DecodeOutcome(messages: Fixtures.everyMessage))
    }

    @Test func randomSplitPoints() {
        var rng = SplitMix64(seed: 0x5EED_0001)
        for _ in 0..<200 {
            let cutCount = Int.random(in: 1...12, using: &rng)
            let cuts = (0..<cutCount).map { _ in Int.random(in: 0...Self.stream.count, using: &rng) }.sorted()
            #expect(decode(Self.stream, cuts: cuts) == DecodeOutcome(messages: Fixtures.everyMessage), "cuts \(cuts)")
        }
    }

    @Test func shuffledMessageOrderAndRandomSplits() {
        var rng = SplitMix64(seed: 0x5EED_0002)
        for _ in 0..<50 {
            let messages = (0..<40).map { _ in Fixtures.randomMessage(using: &rng) }
            let bytes = Fixtures.frames(messages)
            let cuts = (0..<20).map { _ in Int.random(in: 0...bytes.count, using: &rng) }.sorted()
            #expect(decode(bytes, cuts: cuts) == DecodeOutcome(messages: messages))
        }
    }

    @Test func incompleteFrameWaitsThenCompletes() throws {
        let bytes = Message.request(BlockRequest(chunk: 1, offset: 2, length: 3)).encoded()
        var decoder = FrameDecoder()
        for prefix in 0..<bytes.count {
            decoder.feed(prefix == 0 ? [] : [bytes[prefix - 1]])
            #expect(try decoder.next() == nil)
            #expect(decoder.bufferedByteCount == prefix)
        }
        decoder.feed([bytes[bytes.count - 1]])
        #expect(try decoder.next() == .request(BlockRequest(chunk: 1, offset: 2, length: 3)))
        #expect(decoder.bufferedByteCount == 0)
        try decoder.finish()
    }

    @Test func finishReportsATruncatedStream() throws {
        var decoder = FrameDecoder()
        decoder.feed(Message.keepalive.encoded() + Message.have(chunk: 1).encoded().prefix(6))
        #expect(try decoder.next() == .keepalive)
        #expect(try decoder.next() == nil)
        do {
            try decoder.finish()
            Issue.record("finish() accepted a stream that ends inside a frame")
        } catch {
            #expect(error.code == .truncatedFrame)
            #expect(error.description == "truncated frame: stream ended inside a frame (6 bytes buffered)")
        }
        #expect(throws: WireError.self) { try decoder.next() }
    }

    @Test func messagesBeforeABadFrameAreDelivered() {
        let bytes = Fixtures.frames([.keepalive, .have(chunk: 9)]) + [0, 0, 0, 1, 0x7F] + Message.haveAll.encoded()
        let outcome = decode(bytes)
        #expect(outcome.messages == [.keepalive, .have(chunk: 9)])
        #expect(outcome.error?.code == .unknownMessageType)
    }
}

/// Every way a frame can be wrong, each with the error code it must produce.
struct DecoderMalformedTests {
    // MARK: Frame header

    @Test func oversizedLengthIsRefusedFromTheHeaderAlone() {
        for length: UInt32 in [UInt32(PeerProtocol.defaultMaxFrameLength) + 1, 0x7FFF_FFFF, .max] {
            var decoder = FrameDecoder()
            decoder.feed(be32(length))  // no type byte, no body: nothing more is waited for
            #expect(throws: WireError.self) { try decoder.next() }
            #expect(decoder.error?.code == .frameTooLarge)
            #expect(decoder.bufferedByteCount == 0)
        }
        var decoder = FrameDecoder()
        decoder.feed(be32(0x0010_0041))
        do {
            _ = try decoder.next()
        } catch {
            #expect(error.description == "frame too large: frame length 1048641 exceeds the maximum 1048640")
        }
    }

    @Test func lengthAtTheMaximumIsAccepted() throws {
        var decoder = FrameDecoder()
        decoder.feed(be32(UInt32(PeerProtocol.defaultMaxFrameLength)) + [MessageType.piece.rawValue])
        #expect(try decoder.next() == nil)  // waits for the body
    }

    @Test func configurableMaximum() {
        let small = FrameDecoder(maxFrameLength: 16)
        expectFailure(Message.piece(Piece(chunk: 0, offset: 0, bytes: [UInt8](repeating: 1, count: 8))).encoded(), .frameTooLarge, decoder: small)
        #expect(decode(Message.piece(Piece(chunk: 0, offset: 0, bytes: [UInt8](repeating: 1, count: 7))).encoded(), decoder: small).messages.count == 1)
        let smallBlocks = FrameDecoder(maxBlockLength: 1024)
        expectFailure(Message.request(BlockRequest(chunk: 0, offset: 0, length: 1025)).encoded(), .malformedPayload, decoder: smallBlocks)
        expectFailure(Message.piece(Piece(chunk: 0, offset: 0, bytes: [UInt8](repeating: 1, count: 1025))).encoded(), .malformedPayload, decoder: smallBlocks)
    }

    @Test func emptyFrame() {
        expectFailure([0, 0, 0, 0], .emptyFrame)
        expectFailure([0, 0, 0, 0, 0x0A], .emptyFrame)
    }

    @Test(arguments: [UInt8(0x00), 0x0C, 0x42, 0xFF])
    func unknownTypeIsRefusedBeforeTheBody(type: UInt8) {
        var decoder = FrameDecoder()
        decoder.feed(be32(1000) + [type])
        #expect(throws: WireError.self) { try decoder.next() }
        #expect(decoder.error?.code == .unknownMessageType)
        #expect(decoder.error?.description == "unknown message type: unknown message type 0x\(hex2(type)) in a frame of 1000 bytes")
    }

    // MARK: Empty messages

    @Test(arguments: [MessageType.haveAll, .haveNone, .keepalive])
    func emptyMessagesCarryNoPayload(type: MessageType) {
        expectFailure(frame(type.rawValue, [0]), .trailingBytes)
    }

    // MARK: have, request, cancel, reject, piece

    @Test func have() {
        expectFailure(frame(0x05, [0, 0, 1]), .malformedPayload)
        expectFailure(frame(0x05, [0, 0, 0, 1, 0]), .trailingBytes)
        expectFailure(frame(0x05, []), .malformedPayload)
    }

    @Test(arguments: [MessageType.request, .cancel, .reject])
    func blockMessages(type: MessageType) {
        let t = type.rawValue
        expectFailure(frame(t, be32(1) + be32(0) + be32(0)), .malformedPayload)  // empty block
        expectFailure(frame(t, be32(1) + be32(0) + be32(256 * 1024 + 1)), .malformedPayload)
        expectFailure(frame(t, be32(1) + be32(.max) + be32(2)), .malformedPayload)  // runs past 2^32
        expectFailure(frame(t, be32(1) + be32(0) + [0, 0, 1]), .malformedPayload)  // truncated
        expectFailure(frame(t, be32(1) + be32(0) + be32(1) + [0]), .trailingBytes)
        // The edges that are fine.
        #expect(decode(frame(t, be32(1) + be32(.max) + be32(1))).messages.count == 1)
        #expect(decode(frame(t, be32(1) + be32(0) + be32(256 * 1024))).messages.count == 1)
    }

    @Test func piece() {
        expectFailure(frame(0x07, be32(1) + be32(0)), .malformedPayload)  // no bytes
        expectFailure(frame(0x07, be32(1) + [0, 0, 0]), .malformedPayload)  // offset truncated
        expectFailure(frame(0x07, be32(1) + be32(.max) + [1, 2]), .malformedPayload)  // runs past 2^32
        expectFailure(frame(0x07, be32(1) + be32(0) + [UInt8](repeating: 0, count: 256 * 1024 + 1)), .malformedPayload)
        #expect(decode(frame(0x07, be32(1) + be32(.max) + [1])).messages == [.piece(Piece(chunk: 1, offset: .max, bytes: [1]))])
    }

    // MARK: bitfield

    @Test func bitfield() {
        expectFailure(frame(0x04, [0, 0]), .malformedPayload)  // count truncated
        expectFailure(frame(0x04, be32(10) + [0xFF]), .badBitfield)  // too few bytes
        expectFailure(frame(0x04, be32(10) + [0xFF, 0xC0, 0x00]), .badBitfield)  // too many bytes
        expectFailure(frame(0x04, be32(10) + [0xFF, 0xE0]), .badBitfield)  // spare bit set
        expectFailure(frame(0x04, be32(.max) + [0xFF]), .badBitfield)  // huge count, no allocation
        expectFailure(frame(0x04, be32(0) + [0x00]), .badBitfield)
        #expect(decode(frame(0x04, be32(0))).messages == [.bitfield(Bitfield(count: 0))])
        #expect(decode(frame(0x04, be32(10) + [0xFF, 0xC0])).messages == [.bitfield(.full(count: 10))])
    }

    // MARK: hello

    static let helloBytes = Array(Message.hello(Fixtures.hello(host: "h1", site: "s")).encoded().dropFirst(5))

    /// A hello payload with the host name field replaced by `host` (raw bytes, with their length).
    static func hello(host: [UInt8], hostLength: UInt16? = nil) -> [UInt8] {
        var payload = Array(helloBytes.prefix(34))
        payload += be16(hostLength ?? UInt16(host.count)) + host
        payload += be16(1) + [0x73] + be16(7420) + [0]
        return frame(0x01, payload)
    }

    @Test func helloTruncatedAnywhere() {
        for cut in 0..<Self.helloBytes.count {
            expectFailure(frame(0x01, Array(Self.helloBytes.prefix(cut))), .malformedPayload)
        }
        expectFailure(frame(0x01, Self.helloBytes + [0]), .trailingBytes)
    }

    @Test func helloNames() {
        #expect(decode(Self.hello(host: Array("h1".utf8))).messages.count == 1)
        expectFailure(Self.hello(host: []), .badString)
        expectFailure(Self.hello(host: [0xC3, 0x28]), .badString)  // invalid UTF-8
        expectFailure(Self.hello(host: [0xED, 0xA0, 0x80]), .badString)  // a UTF-16 surrogate
        expectFailure(Self.hello(host: [0x61, 0x00]), .badString)
        expectFailure(Self.hello(host: [0x61, 0x1B]), .badString)  // ESC, for terminal injection
        expectFailure(Self.hello(host: [UInt8](repeating: 0x61, count: 256)), .badString)
        expectFailure(Self.hello(host: Array("h1".utf8), hostLength: 0xFFFF), .malformedPayload)
        #expect(decode(Self.hello(host: [UInt8](repeating: 0x61, count: 255))).messages.count == 1)
    }

    @Test func helloRoleAndBundleID() {
        var bytes = Self.hello(host: Array("h1".utf8))
        bytes[bytes.count - 1] = 2
        expectFailure(bytes, .malformedPayload)
        expectFailure(frame(0x01, be16(1) + [UInt8](repeating: 0, count: 31)), .malformedPayload)
    }

    // MARK: goodbye

    @Test func goodbye() {
        expectFailure(frame(0x0B, [0]), .malformedPayload)  // reason truncated
        expectFailure(frame(0x0B, be16(0)), .malformedPayload)  // text length missing
        expectFailure(frame(0x0B, be16(0) + be16(5) + Array("abc".utf8)), .malformedPayload)
        expectFailure(frame(0x0B, be16(0) + be16(1) + [0xFF]), .badString)
        expectFailure(frame(0x0B, be16(0) + be16(1025) + [UInt8](repeating: 0x61, count: 1025)), .badString)
        expectFailure(frame(0x0B, be16(0) + be16(0) + [0]), .trailingBytes)
        #expect(decode(frame(0x0B, be16(0) + be16(1024) + [UInt8](repeating: 0x61, count: 1024))).messages.count == 1)
        // Unknown codes and line breaks in the text are fine: a newer peer may send them.
        #expect(decode(frame(0x0B, be16(4242) + be16(3) + Array("a\nb".utf8))).messages == [.goodbye(Goodbye(GoodbyeReason(rawValue: 4242), "a\nb"))])
    }

    @Test func errorDescriptionsNameTheMessageAndField() {
        #expect(decode(frame(0x06, be32(1) + be32(0) + be32(0))).error?.description == "malformed payload: request: block length 0 is outside 1...262144")
        #expect(decode(frame(0x05, [0, 0])).error?.description == "malformed payload: have: payload ends inside chunk index (needs 4 bytes, 2 left)")
        #expect(decode(frame(0x0A, [1, 2])).error?.description == "trailing bytes: keepalive: 2 bytes after the last field")
        #expect(decode(Self.hello(host: [0xC3, 0x28])).error?.description == "bad string: hello: host name is not valid UTF-8")
    }
}
