import ShoalCrypto
@testable import ShoalWire
import Testing

struct CodecTests {
    @Test(arguments: Fixtures.everyMessage)
    func roundTrip(_ message: Message) throws {
        let bytes = message.encoded()
        var decoder = FrameDecoder()
        decoder.feed(bytes)
        #expect(try decoder.next() == message)
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 0)
        // The length field counts everything after itself.
        #expect(Int(bytes.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }) == bytes.count - 4)
        #expect(bytes[4] == message.type.rawValue)
    }

    @Test func everyMessageTypeIsCovered() {
        #expect(Set(Fixtures.everyMessage.map(\.type)) == Set(MessageType.allCases))
    }

    @Test func encodeAppendsToExistingBytes() {
        var out: [UInt8] = [0xAA]
        Message.keepalive.encode(into: &out)
        Message.have(chunk: 1).encode(into: &out)
        #expect(out == [0xAA, 0, 0, 0, 1, 0x0A, 0, 0, 0, 5, 0x05, 0, 0, 0, 1])
    }

    // MARK: Golden encodings (the examples of docs/PEER-PROTOCOL.md)

    @Test func goldenKeepaliveHaveAllHaveNone() {
        #expect(Message.keepalive.encoded() == [0x00, 0x00, 0x00, 0x01, 0x0A])
        #expect(Message.haveAll.encoded() == [0x00, 0x00, 0x00, 0x01, 0x02])
        #expect(Message.haveNone.encoded() == [0x00, 0x00, 0x00, 0x01, 0x03])
    }

    @Test func goldenHave() {
        #expect(Message.have(chunk: 0x0102_0304).encoded() == [0x00, 0x00, 0x00, 0x05, 0x05, 0x01, 0x02, 0x03, 0x04])
    }

    @Test func goldenRequestCancelReject() {
        let block = BlockRequest(chunk: 7, offset: 0x4000, length: 0x4000)
        let payload: [UInt8] = [0, 0, 0, 7, 0, 0, 0x40, 0, 0, 0, 0x40, 0]
        #expect(Message.request(block).encoded() == [0, 0, 0, 13, 0x06] + payload)
        #expect(Message.cancel(block).encoded() == [0, 0, 0, 13, 0x08] + payload)
        #expect(Message.reject(block).encoded() == [0, 0, 0, 13, 0x09] + payload)
    }

    @Test func goldenPiece() {
        let piece = Piece(chunk: 2, offset: 0x10, bytes: [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(Message.piece(piece).encoded() == [0, 0, 0, 13, 0x07, 0, 0, 0, 2, 0, 0, 0, 0x10, 0xDE, 0xAD, 0xBE, 0xEF])
    }

    @Test func goldenBitfield() {
        var bits = Bitfield(count: 10)
        bits[0] = true
        bits[7] = true
        bits[9] = true
        #expect(Message.bitfield(bits).encoded() == [0, 0, 0, 7, 0x04, 0, 0, 0, 10, 0b1000_0001, 0b0100_0000])
    }

    @Test func goldenGoodbye() {
        #expect(Message.goodbye(Goodbye(.wrongBundle, "no")).encoded() == [0, 0, 0, 7, 0x0B, 0x00, 0x03, 0x00, 0x02, 0x6E, 0x6F])
    }

    @Test func goldenHello() {
        let hello = Fixtures.hello(host: "h1", site: "s", port: 7420, role: .seed)
        let expected: [UInt8] =
            [0x00, 0x00, 0x00, 0x2D, 0x01]  // length 45 = 1 + 2 + 32 + (2 + 2) + (2 + 1) + 2 + 1, type hello
            + [0x00, 0x01]  // version 1
            + Array(0..<32)  // bundle id
            + [0x00, 0x02, 0x68, 0x31]  // host "h1"
            + [0x00, 0x01, 0x73]  // site "s"
            + [0x1C, 0xFC]  // port 7420
            + [0x01]  // role seed
        #expect(Message.hello(hello).encoded() == expected)
    }

    // MARK: Values

    @Test func helloValidatesNames() {
        #expect(throws: WireError.self) { try Hello(bundleID: Fixtures.bundleID, host: "", site: "s", listenPort: 1, role: .peer) }
        #expect(throws: WireError.self) { try Hello(bundleID: Fixtures.bundleID, host: "h", site: "", listenPort: 1, role: .peer) }
        #expect(throws: WireError.self) {
            try Hello(bundleID: Fixtures.bundleID, host: String(repeating: "h", count: 256), site: "s", listenPort: 1, role: .peer)
        }
        // 128 two-byte characters: 256 bytes, too long although 128 characters.
        #expect(throws: WireError.self) {
            try Hello(bundleID: Fixtures.bundleID, host: String(repeating: "é", count: 128), site: "s", listenPort: 1, role: .peer)
        }
        for bad in ["a\nb", "tab\there", "nul\0", "del\u{7F}", "c1\u{85}"] {
            #expect(throws: WireError.self) { try Hello(bundleID: Fixtures.bundleID, host: bad, site: "s", listenPort: 1, role: .peer) }
        }
        let ok = try? Hello(bundleID: Fixtures.bundleID, host: String(repeating: "h", count: 255), site: "zürich-1", listenPort: 1, role: .peer)
        #expect(ok?.host.utf8.count == 255)
        do {
            _ = try Hello(bundleID: Fixtures.bundleID, host: "x\u{1}", site: "s", listenPort: 1, role: .peer)
        } catch {
            #expect(error.code == .badString)
            #expect(error.description == "bad string: hello: host name contains control character U+0001")
        }
    }

    @Test func goodbyeTextIsCutToFitAtACharacterBoundary() {
        #expect(Goodbye(.normal, String(repeating: "a", count: 2000)).text.utf8.count == 1024)
        let cut = Goodbye(.normal, "a" + String(repeating: "é", count: 600)).text
        #expect(cut.utf8.count == 1023)
        #expect(cut.hasSuffix("é"))
        #expect(Goodbye(.normal, "short").text == "short")
        let long = Message.goodbye(Goodbye(.protocolError, String(repeating: "x", count: 5000)))
        #expect(decode(long.encoded()).messages == [long])
    }

    @Test func goodbyeReasonsPrint() {
        let named: [GoodbyeReason] = [.normal, .protocolError, .badChunk, .wrongBundle, .shuttingDown, .banned, .overloaded, .unsupportedVersion, .timeout]
        #expect(named.map(\.rawValue) == Array(0...8))
        #expect(named.map(\.description) == ["normal", "protocolError", "badChunk", "wrongBundle", "shuttingDown", "banned", "overloaded", "unsupportedVersion", "timeout"])
        #expect(GoodbyeReason(rawValue: 999).description == "reason 999")
        #expect(Goodbye(.banned, "sent a bad chunk").description == "banned: sent a bad chunk")
        #expect(Goodbye(.normal).description == "normal")
    }

    @Test func largestPieceAndBitfieldFitTheDefaultFrame() {
        let piece = Message.piece(Piece(chunk: 1, offset: 0, bytes: [UInt8](repeating: 7, count: PeerProtocol.defaultMaxBlockLength)))
        #expect(decode(piece.encoded()).messages == [piece])
        // 8 Mi chunks: a 1 MiB bitfield, the largest the default frame holds.
        let bits = Message.bitfield(.full(count: 8 << 20))
        let bytes = bits.encoded()
        #expect(bytes.count - 4 <= PeerProtocol.defaultMaxFrameLength)
        #expect(decode(bytes).messages == [bits])
    }

    @Test func helloOfAnotherVersionDecodesItsFrozenPrefix() {
        // A version-2 hello that appends a field: v1 decoders still read who it is and which version.
        let v2 = Fixtures.hello(version: 2)
        var bytes = Message.hello(v2).encoded()
        bytes += [0xAB, 0xCD, 0xEF]
        bytes[3] += 3
        #expect(decode(bytes).messages == [.hello(v2)])
        // The same extension on a version-1 hello is an error.
        var v1 = Message.hello(Fixtures.hello()).encoded()
        v1 += [0xAB]
        v1[3] += 1
        expectFailure(v1, .trailingBytes)
    }
}

struct BitfieldTests {
    @Test func setGetAndCount() {
        var bits = Bitfield(count: 20)
        #expect(bits.isEmpty && !bits.isFull && bits.setCount == 0)
        bits[0] = true
        bits[19] = true
        bits[19] = true  // setting twice counts once
        #expect(bits.setCount == 2)
        #expect(bits[0] && bits[19] && !bits[1])
        bits[0] = false
        bits[0] = false
        #expect(bits.setCount == 1)
        #expect(bits.bytes == [0, 0, 0b0001_0000])
        #expect(bits.contains(19) && !bits.contains(18) && !bits.contains(20) && !bits.contains(.max))
        #expect(bits.description == "Bitfield(1/20)")
    }

    @Test(arguments: [0, 1, 7, 8, 9, 15, 16, 17, 1000])
    func fullHasNoSpareBits(count: Int) throws {
        let full = Bitfield.full(count: count)
        #expect(full.isFull && full.setCount == count && full.bytes.count == (count + 7) / 8)
        #expect(try Bitfield(count: count, bytes: full.bytes) == full)
        var cleared = full
        for i in 0..<count { cleared[i] = false }
        #expect(cleared == Bitfield(count: count))
    }

    @Test func msbFirst() {
        var bits = Bitfield(count: 16)
        bits[0] = true
        bits[9] = true
        #expect(bits.bytes == [0x80, 0x40])
    }

    @Test func decodeChecksConsistency() throws {
        #expect(try Bitfield(count: 9, bytes: [0xFF, 0x80]).setCount == 9)
        for (count, bytes) in [(9, [0xFF, 0x40]), (9, [0xFF]), (9, [0xFF, 0x80, 0x00]), (0, [0x00]), (-1, []), (Bitfield.maxCount + 1, [])] as [(Int, [UInt8])] {
            #expect(throws: WireError.self) { try Bitfield(count: count, bytes: bytes) }
        }
        do {
            _ = try Bitfield(count: 12, bytes: [0, 0x01])
        } catch {
            #expect(error.code == .badBitfield)
            #expect(error.description == "bad bitfield: bitfield of 12 chunks has spare bits set in its last byte")
        }
    }
}
