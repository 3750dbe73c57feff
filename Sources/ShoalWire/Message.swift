public import ShoalCrypto

/// One message of the peer protocol: what a frame carries.
///
/// Encode with ``encode(into:)``; decode a byte stream with ``FrameDecoder``. The layout of every
/// message is in `docs/PEER-PROTOCOL.md`.
///
/// ```swift
/// var out: [UInt8] = []
/// Message.have(chunk: 7).encode(into: &out)   // [0, 0, 0, 5,  0x05,  0, 0, 0, 7]
/// ```
public enum Message: Hashable, Sendable {
    /// The first message on a connection, in both directions: who I am and which bundle I talk about.
    case hello(Hello)
    /// I hold every chunk of the bundle (instead of a full bitfield).
    case haveAll
    /// I hold no chunk yet (instead of an empty bitfield).
    case haveNone
    /// The chunks I hold. Only allowed as the first message after hello.
    case bitfield(Bitfield)
    /// I now also hold this chunk (sent after verifying it).
    case have(chunk: UInt32)
    /// Please send me this block. Answered by exactly one ``piece(_:)`` or ``reject(_:)``.
    case request(BlockRequest)
    /// The bytes of a block you requested.
    case piece(Piece)
    /// I no longer need this block. Still answered by one ``piece(_:)`` or ``reject(_:)``.
    case cancel(BlockRequest)
    /// I will not send this block you requested (overloaded, cancelled, or no longer available).
    case reject(BlockRequest)
    /// Nothing to say; proves the connection is alive.
    case keepalive
    /// I am closing the connection, and why. The last message on a connection.
    case goodbye(Goodbye)

    /// The message type byte of this message.
    public var type: MessageType {
        switch self {
        case .hello: return .hello
        case .haveAll: return .haveAll
        case .haveNone: return .haveNone
        case .bitfield: return .bitfield
        case .have: return .have
        case .request: return .request
        case .piece: return .piece
        case .cancel: return .cancel
        case .reject: return .reject
        case .keepalive: return .keepalive
        case .goodbye: return .goodbye
        }
    }
}

/// The type byte that follows a frame's length field.
public enum MessageType: UInt8, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    case hello = 0x01
    case haveAll = 0x02
    case haveNone = 0x03
    case bitfield = 0x04
    case have = 0x05
    case request = 0x06
    case piece = 0x07
    case cancel = 0x08
    case reject = 0x09
    case keepalive = 0x0A
    case goodbye = 0x0B

    public var description: String {
        switch self {
        case .hello: return "hello"
        case .haveAll: return "haveAll"
        case .haveNone: return "haveNone"
        case .bitfield: return "bitfield"
        case .have: return "have"
        case .request: return "request"
        case .piece: return "piece"
        case .cancel: return "cancel"
        case .reject: return "reject"
        case .keepalive: return "keepalive"
        case .goodbye: return "goodbye"
        }
    }
}

/// The hello message: the protocol version, the bundle this connection is about, and who is speaking.
///
/// Host and site names are validated when the value is made, so every `Hello` can be encoded:
/// 1 to 255 bytes of UTF-8 without control characters.
///
/// ```swift
/// let hello = try Hello(bundleID: manifestDigest, host: "db-17", site: "fra1", listenPort: 7420, role: .peer)
/// ```
public struct Hello: Hashable, Sendable {
    /// What the speaker is in the swarm.
    public enum Role: UInt8, Hashable, Sendable, CaseIterable {
        /// A host that fetches the bundle and serves the chunks it has.
        case peer = 0
        /// The origin of the bundle: holds every chunk and never requests.
        case seed = 1
    }

    /// The sender's protocol version (see ``PeerProtocol/version``).
    public let version: UInt16
    /// The bundle this connection is about (the digest that names it).
    public let bundleID: Digest
    /// The sender's host name, as in its certificate.
    public let host: String
    /// The sender's site name, as in its certificate.
    public let site: String
    /// The port the sender accepts peer connections on; 0 if it accepts none.
    public let listenPort: UInt16
    /// Seed or peer.
    public let role: Role

    /// Makes a hello, validating the names.
    ///
    /// - Parameters:
    ///   - version: The protocol version; tests pass other values to exercise version checks.
    ///   - bundleID: The bundle this connection is about.
    ///   - host: The host name: 1–255 UTF-8 bytes, no control characters.
    ///   - site: The site name, same rules.
    ///   - listenPort: The port this side accepts peer connections on, or 0.
    ///   - role: Seed or peer.
    /// - Throws: ``WireError/Code/badString`` if a name breaks the rules.
    public init(
        version: UInt16 = PeerProtocol.version, bundleID: Digest, host: String, site: String,
        listenPort: UInt16, role: Role
    ) throws(WireError) {
        try Hello.validateName(Array(host.utf8), field: "host name")
        try Hello.validateName(Array(site.utf8), field: "site name")
        self.init(unchecked: version, bundleID: bundleID, host: host, site: site, listenPort: listenPort, role: role)
    }

    init(unchecked version: UInt16, bundleID: Digest, host: String, site: String, listenPort: UInt16, role: Role) {
        self.version = version
        self.bundleID = bundleID
        self.host = host
        self.site = site
        self.listenPort = listenPort
        self.role = role
    }

    /// Checks the rules for host and site names and returns the name as a `String`.
    @discardableResult
    static func validateName(_ bytes: some Collection<UInt8>, field: String) throws(WireError) -> String {
        guard !bytes.isEmpty else { throw WireError(.badString, "hello: \(field) is empty") }
        guard bytes.count <= PeerProtocol.maxNameLength else {
            throw WireError(.badString, "hello: \(field) is \(bytes.count) bytes (at most \(PeerProtocol.maxNameLength))")
        }
        guard let name = String(validating: bytes, as: UTF8.self) else {
            throw WireError(.badString, "hello: \(field) is not valid UTF-8")
        }
        for scalar in name.unicodeScalars where scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) {
            throw WireError(.badString, "hello: \(field) contains control character U+\(hex4(scalar.value))")
        }
        return name
    }
}

/// A block of a chunk: what ``Message/request(_:)``, ``Message/cancel(_:)`` and ``Message/reject(_:)`` name.
///
/// On the wire the length is 1 to the receiver's maximum block length (256 KiB by default) and
/// `offset + length` does not exceed 2³²; the decoder refuses anything else.
public struct BlockRequest: Hashable, Sendable, CustomStringConvertible {
    /// Chunk index in the bundle's manifest.
    public var chunk: UInt32
    /// Byte offset of the block in the chunk's stored bytes.
    public var offset: UInt32
    /// Length of the block in bytes.
    public var length: UInt32

    public init(chunk: UInt32, offset: UInt32, length: UInt32) {
        self.chunk = chunk
        self.offset = offset
        self.length = length
    }

    public var description: String { "chunk \(chunk) [\(offset), +\(length))" }
}

/// The bytes of a requested block.
public struct Piece: Hashable, Sendable {
    /// Chunk index in the bundle's manifest.
    public var chunk: UInt32
    /// Byte offset of the block in the chunk's stored bytes.
    public var offset: UInt32
    /// The block's bytes; their count is the block length.
    public var bytes: [UInt8]

    public init(chunk: UInt32, offset: UInt32, bytes: [UInt8]) {
        self.chunk = chunk
        self.offset = offset
        self.bytes = bytes
    }

    /// The request this piece answers.
    public var request: BlockRequest {
        BlockRequest(chunk: chunk, offset: offset, length: UInt32(clamping: bytes.count))
    }
}

/// Why a connection is being closed: a code for programs and a text for people.
public struct Goodbye: Hashable, Sendable, CustomStringConvertible {
    public let reason: GoodbyeReason
    /// At most ``PeerProtocol/maxGoodbyeTextLength`` bytes of UTF-8.
    public let text: String

    /// Makes a goodbye; a longer text is cut at a character boundary to fit 1024 UTF-8 bytes.
    public init(_ reason: GoodbyeReason, _ text: String = "") {
        self.reason = reason
        self.text = Goodbye.truncated(text, toUTF8Count: PeerProtocol.maxGoodbyeTextLength)
    }

    public var description: String { text.isEmpty ? "\(reason)" : "\(reason): \(text)" }

    private static func truncated(_ text: String, toUTF8Count limit: Int) -> String {
        guard text.utf8.count > limit else { return text }
        var result = String.UnicodeScalarView()
        var used = 0
        for scalar in text.unicodeScalars {
            let size = UTF8.width(scalar)
            guard used + size <= limit else { break }
            used += size
            result.append(scalar)
        }
        return String(result)
    }
}

/// The reason code of a ``Goodbye``.
///
/// An open set: codes this build does not know (sent by a newer peer) decode as they are and print
/// as `reason N`.
public struct GoodbyeReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// An orderly close: the transfer is done or no longer needed.
    public static let normal = GoodbyeReason(rawValue: 0)
    /// The other side broke the protocol (a malformed frame, a message out of order, …).
    public static let protocolError = GoodbyeReason(rawValue: 1)
    /// The other side sent a chunk that does not match the signed manifest.
    public static let badChunk = GoodbyeReason(rawValue: 2)
    /// The hello names another bundle than the one this side serves on this connection.
    public static let wrongBundle = GoodbyeReason(rawValue: 3)
    /// This side is stopping.
    public static let shuttingDown = GoodbyeReason(rawValue: 4)
    /// The other side is banned for this bundle (it sent a bad chunk before).
    public static let banned = GoodbyeReason(rawValue: 5)
    /// This side has no capacity for another connection.
    public static let overloaded = GoodbyeReason(rawValue: 6)
    /// The hello carries a protocol version this side does not speak.
    public static let unsupportedVersion = GoodbyeReason(rawValue: 7)
    /// Nothing arrived from the other side within the idle timeout.
    public static let timeout = GoodbyeReason(rawValue: 8)

    public var description: String {
        switch rawValue {
        case 0: return "normal"
        case 1: return "protocolError"
        case 2: return "badChunk"
        case 3: return "wrongBundle"
        case 4: return "shuttingDown"
        case 5: return "banned"
        case 6: return "overloaded"
        case 7: return "unsupportedVersion"
        case 8: return "timeout"
        default: return "reason \(rawValue)"
        }
    }
}

func hex4(_ value: UInt32) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
}
