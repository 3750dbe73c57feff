import ShoalTestKit
import ShoalCrypto
@testable import ShoalWire
import Testing

/// A hand-driven clock value for ``PeerSession``: time only moves when a test says so.
struct TestInstant: InstantProtocol {
    var sinceStart: Duration
    static let zero = TestInstant(sinceStart: .zero)

    func advanced(by duration: Duration) -> TestInstant { TestInstant(sinceStart: sinceStart + duration) }
    func duration(to other: TestInstant) -> Duration { other.sinceStart - sinceStart }
    static func < (lhs: TestInstant, rhs: TestInstant) -> Bool { lhs.sinceStart < rhs.sinceStart }
}

enum Fixtures {
    static let bundleID = Digest(bytes: (0..<32).map { UInt8($0) })!
    static let otherBundleID = Digest(bytes: [UInt8](repeating: 0xEE, count: 32))!

    static func hello(
        version: UInt16 = PeerProtocol.version, bundleID: Digest = bundleID, host: String = "db-17",
        site: String = "fra1", port: UInt16 = 7420, role: Hello.Role = .peer
    ) -> Hello {
        // The names used by the tests are valid; a failure here is a bug in the test.
        try! Hello(version: version, bundleID: bundleID, host: host, site: site, listenPort: port, role: role)
    }

    /// At least one message of every type, with boundary values.
    static var everyMessage: [Message] {
        var bits = Bitfield(count: 13)
        bits[0] = true
        bits[12] = true
        return [
            .hello(hello()),
            .hello(hello(host: "hôte-ünïcode-😀", site: String(repeating: "s", count: 255), port: 0, role: .seed)),
            .haveAll,
            .haveNone,
            .bitfield(bits),
            .bitfield(Bitfield(count: 0)),
            .bitfield(.full(count: 16)),
            .have(chunk: 0),
            .have(chunk: .max),
            .request(BlockRequest(chunk: 3, offset: 0, length: 16384)),
            .request(BlockRequest(chunk: .max, offset: .max, length: 1)),
            .piece(Piece(chunk: 3, offset: 16384, bytes: (0..<1000).map { UInt8(truncatingIfNeeded: $0) })),
            .piece(Piece(chunk: 0, offset: 0, bytes: [0x42])),
            .cancel(BlockRequest(chunk: 3, offset: 16384, length: 16384)),
            .reject(BlockRequest(chunk: 9, offset: 262144, length: 262144)),
            .keepalive,
            .goodbye(Goodbye(.normal)),
            .goodbye(Goodbye(.badChunk, "chunk 17 failed its SHA-256 check — banned")),
            .goodbye(Goodbye(GoodbyeReason(rawValue: 999), "a code from the future")),
        ]
    }

    static func frames(_ messages: [Message]) -> [UInt8] {
        var out: [UInt8] = []
        for message in messages { message.encode(into: &out) }
        return out
    }

    /// A random valid message: random fields within the protocol's limits.
    static func randomMessage(using rng: inout SplitMix64) -> Message {
        func u32() -> UInt32 { UInt32.random(in: 0...UInt32.max, using: &rng) }
        func name() -> String {
            let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-.é漢")
            let length = Int.random(in: 1...40, using: &rng)
            return String((0..<length).map { _ in alphabet.randomElement(using: &rng)! })
        }
        func block() -> BlockRequest {
            let length = UInt32.random(in: 1...UInt32(PeerProtocol.defaultMaxBlockLength), using: &rng)
            return BlockRequest(chunk: u32(), offset: UInt32.random(in: 0...(UInt32.max - length + 1), using: &rng), length: length)
        }
        switch Int.random(in: 0..<11, using: &rng) {
        case 0:
            let id = Digest(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })!
            return .hello(try! Hello(bundleID: id, host: name(), site: name(), listenPort: UInt16.random(in: 0...UInt16.max, using: &rng), role: Bool.random(using: &rng) ? .seed : .peer))
        case 1: return .haveAll
        case 2: return .haveNone
        case 3:
            var bits = Bitfield(count: Int.random(in: 0...200, using: &rng))
            for i in 0..<bits.count where Bool.random(using: &rng) { bits[i] = true }
            return .bitfield(bits)
        case 4: return .have(chunk: u32())
        case 5: return .request(block())
        case 6:
            let bytes = (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            return .piece(Piece(chunk: u32(), offset: UInt32.random(in: 0...(UInt32.max - 64), using: &rng), bytes: bytes))
        case 7: return .cancel(block())
        case 8: return .reject(block())
        case 9: return .keepalive
        default:
            return .goodbye(Goodbye(GoodbyeReason(rawValue: UInt16.random(in: 0...12, using: &rng)), name()))
        }
    }
}

/// The outcome of running a decoder over some bytes: the messages, then an error or the end.
struct DecodeOutcome: Equatable {
    var messages: [Message] = []
    var error: WireError?
    var leftover = 0
}

/// Feeds `bytes` to a fresh decoder in pieces ending at `cuts` (sorted offsets), draining after
/// each feed, as a connection handler does.
func decode(_ bytes: [UInt8], cuts: [Int] = [], decoder: FrameDecoder = FrameDecoder()) -> DecodeOutcome {
    var decoder = decoder
    var outcome = DecodeOutcome()
    var start = 0
    for end in cuts + [bytes.count] where end >= start {
        decoder.feed(bytes[start..<end])
        start = end
        do {
            while let message = try decoder.next() { outcome.messages.append(message) }
        } catch {
            outcome.error = error
            // The failure is final: the same error again, and nothing is buffered any more.
            // (Plain checks, not #expect: the fuzz tests come through here tens of thousands of times.)
            var again: WireError?
            do { _ = try decoder.next() } catch { again = error }
            decoder.feed([1, 2, 3])
            if again != error || decoder.error != error || decoder.bufferedByteCount != 0 {
                Issue.record("decoder did not stay failed after \(error): then \(String(describing: again))")
            }
            return outcome
        }
    }
    outcome.leftover = decoder.bufferedByteCount
    return outcome
}

/// Decodes exactly one frame, expecting an error of the given code.
func expectFailure(
    _ bytes: [UInt8], _ code: WireError.Code, decoder: FrameDecoder = FrameDecoder(),
    sourceLocation: SourceLocation = #_sourceLocation
) {
    let outcome = decode(bytes, decoder: decoder)
    #expect(outcome.messages.isEmpty, sourceLocation: sourceLocation)
    #expect(outcome.error?.code == code, "got \(String(describing: outcome.error))", sourceLocation: sourceLocation)
}

/// One frame from a type byte and payload, with the correct length field.
func frame(_ type: UInt8, _ payload: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.appendU32(UInt32(payload.count + 1))
    out.append(type)
    return out + payload
}

func be32(_ value: UInt32) -> [UInt8] {
    var out: [UInt8] = []
    out.appendU32(value)
    return out
}

func be16(_ value: UInt16) -> [UInt8] {
    var out: [UInt8] = []
    out.appendU16(value)
    return out
}
