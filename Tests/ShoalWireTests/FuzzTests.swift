@testable import ShoalWire
import ShoalTestKit
import Testing

/// Random and mutated frames: the decoder must never trap, and may only return messages or throw a
/// `WireError` (typed throws make the second half a compile-time fact; a trap ends the test run).
/// Every message it does return must be canonical: encoding it gives a frame that decodes to it.
struct FuzzTests {
    static let knownCodes: Set<WireError.Code> = [
        .frameTooLarge, .emptyFrame, .unknownMessageType, .malformedPayload, .trailingBytes, .badString, .badBitfield,
    ]

    struct Stats {
        var messages = 0
        var errors = 0
        var codes: Set<WireError.Code> = []
        var types: Set<MessageType> = []
    }

    /// Runs one input through a decoder cut at random points and checks the invariants.
    static func check(_ bytes: [UInt8], rng: inout SplitMix64, stats: inout Stats) {
        let cuts = (0..<Int.random(in: 0...3, using: &rng)).map { _ in Int.random(in: 0...bytes.count, using: &rng) }.sorted()
        let outcome = decode(bytes, cuts: cuts)
        for message in outcome.messages {
            stats.types.insert(message.type)
            let again = decode(message.encoded())
            if again.messages != [message] || again.error != nil { Issue.record("not canonical: \(message)") }
        }
        stats.messages += outcome.messages.count
        if let error = outcome.error {
            stats.errors += 1
            stats.codes.insert(error.code)
            if !knownCodes.contains(error.code) || error.message.isEmpty { Issue.record("unexpected error \(error)") }
        }
    }

    @Test func randomFrames() {
        var rng = SplitMix64(seed: 0xF022_0001)
        var stats = Stats()
        let count = 10_000
        for _ in 0..<count {
            let payload = (0..<Int.random(in: 0...48, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Mostly valid types, sometimes any byte.
            let type = Int.random(in: 0..<4, using: &rng) == 0 ? UInt8.random(in: 0...255, using: &rng) : UInt8.random(in: 1...11, using: &rng)
            let length: UInt32
            switch Int.random(in: 0..<4, using: &rng) {
            case 0: length = UInt32.random(in: 0...UInt32.max, using: &rng)
            case 1: length = UInt32(max(0, payload.count + 1 + Int.random(in: -3...3, using: &rng)))
            default: length = UInt32(payload.count + 1)
            }
            Self.check(be32(length) + [type] + payload, rng: &rng, stats: &stats)
        }
        #expect(stats.errors > count / 2)
        #expect(stats.messages > 0)
    }

    @Test func mutatedValidFrames() {
        var rng = SplitMix64(seed: 0xF022_0002)
        var stats = Stats()
        let count = 12_000
        for _ in 0..<count {
            var bytes = Fixtures.randomMessage(using: &rng).encoded()
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                Self.mutate(&bytes, rng: &rng)
            }
            Self.check(bytes, rng: &rng, stats: &stats)
        }
        #expect(stats.errors > count / 4)
        #expect(stats.messages > count / 20)
        // The mutations reach every check and still let every message type through sometimes.
        #expect(stats.codes == Self.knownCodes)
        #expect(stats.types == Set(MessageType.allCases))
    }

    @Test func oneBadFrameInALongStream() {
        var rng = SplitMix64(seed: 0xF022_0003)
        for _ in 0..<100 {
            let messages = (0..<30).map { _ in Fixtures.randomMessage(using: &rng) }
            let bad = Int.random(in: 0..<messages.count, using: &rng)
            var bytes: [UInt8] = []
            for (i, message) in messages.enumerated() {
                var frame = message.encoded()
                if i == bad { Self.mutate(&frame, rng: &rng) }
                bytes += frame
            }
            var stats = Stats()
            Self.check(bytes, rng: &rng, stats: &stats)
            // Whatever the mutation did, the frames before it come out unchanged.
            let outcome = decode(bytes)
            #expect(Array(outcome.messages.prefix(bad)) == Array(messages.prefix(bad)))
        }
    }

    /// One mutation of the kinds a broken or hostile peer produces.
    static func mutate(_ bytes: inout [UInt8], rng: inout SplitMix64) {
        switch Int.random(in: 0..<8, using: &rng) {
        case 0, 1:  // bit flips anywhere
            for _ in 0..<Int.random(in: 1...4, using: &rng) where !bytes.isEmpty {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] ^= 1 << UInt8.random(in: 0...7, using: &rng)
            }
        case 2:  // truncation
            bytes.removeLast(Int.random(in: 0...bytes.count, using: &rng))
        case 3:  // length field nudged
            if bytes.count >= 4 {
                let old = bytes.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let new = UInt32(clamping: Int64(old) + Int64.random(in: -4...4, using: &rng))
                bytes.replaceSubrange(0..<4, with: be32(new))
            }
        case 4:  // length field replaced
            if bytes.count >= 4 {
                bytes.replaceSubrange(0..<4, with: be32(UInt32.random(in: 0...UInt32.max, using: &rng)))
            }
        case 5:  // type byte replaced
            if bytes.count >= 5 { bytes[4] = UInt8.random(in: 0...15, using: &rng) }
        case 6:  // junk appended (with or without fixing the length)
            let junk = (0..<Int.random(in: 1...8, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            bytes += junk
            if bytes.count >= 4 && Bool.random(using: &rng) {
                let old = bytes.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                bytes.replaceSubrange(0..<4, with: be32(old &+ UInt32(junk.count)))
            }
        default:  // a byte in the payload set to an edge value, length kept
            if bytes.count > 5 {
                bytes[Int.random(in: 5..<bytes.count, using: &rng)] = [0x00, 0xFF, 0x80, 0x7F].randomElement(using: &rng)!
            }
        }
    }
}
