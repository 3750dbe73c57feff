import ShoalCrypto

extension Message {
    /// Decodes the payload of one frame whose type byte is `typeByte`.
    ///
    /// Never traps: every read is bounds-checked and every arithmetic on wire values is done in a
    /// width where it cannot overflow.
    static func decode(
        typeByte: UInt8, payload: ArraySlice<UInt8>, maxBlockLength: Int
    ) throws(WireError) -> Message {
        guard let type = MessageType(rawValue: typeByte) else {
            throw WireError(.unknownMessageType, "unknown message type 0x\(hex2(typeByte)) in a frame of \(payload.count + 1) bytes")
        }
        var reader = PayloadReader(payload, type: type)
        let message: Message
        switch type {
        case .hello:
            let version = try reader.u16("version")
            let idBytes = try reader.bytes(Digest.byteCount, "bundle id")
            guard let bundleID = Digest(bytes: idBytes) else {
                throw WireError(.malformedPayload, "hello: bundle id is not \(Digest.byteCount) bytes")
            }
            let host = try reader.name("host name")
            let site = try reader.name("site name")
            let port = try reader.u16("listen port")
            let roleByte = try reader.u8("role")
            guard let role = Hello.Role(rawValue: roleByte) else {
                throw WireError(.malformedPayload, "hello: unknown role \(roleByte)")
            }
            // The hello layout up to the role byte is frozen across versions; later versions may
            // append fields. A hello of another version is returned as it is (without what follows)
            // so that the session can answer goodbye(unsupportedVersion) instead of a parse error.
            if version == PeerProtocol.version { try reader.expectEnd() }
            message = .hello(Hello(unchecked: version, bundleID: bundleID, host: host, site: site, listenPort: port, role: role))
        case .haveAll:
            try reader.expectEnd()
            message = .haveAll
        case .haveNone:
            try reader.expectEnd()
            message = .haveNone
        case .keepalive:
            try reader.expectEnd()
            message = .keepalive
        case .bitfield:
            let count = try reader.u32("chunk count")
            let bits = reader.rest()
            message = .bitfield(try Bitfield(count: Int(count), bytes: bits))
        case .have:
            let chunk = try reader.u32("chunk index")
            try reader.expectEnd()
            message = .have(chunk: chunk)
        case .request, .cancel, .reject:
            let chunk = try reader.u32("chunk index")
            let offset = try reader.u32("offset")
            let length = try reader.u32("length")
            try reader.expectEnd()
            try checkBlock(type: type, offset: offset, length: UInt64(length), maxBlockLength: maxBlockLength)
            let block = BlockRequest(chunk: chunk, offset: offset, length: length)
            message = type == .request ? .request(block) : type == .cancel ? .cancel(block) : .reject(block)
        case .piece:
            let chunk = try reader.u32("chunk index")
            let offset = try reader.u32("offset")
            let bytes = reader.rest()
            try checkBlock(type: type, offset: offset, length: UInt64(bytes.count), maxBlockLength: maxBlockLength)
            message = .piece(Piece(chunk: chunk, offset: offset, bytes: Array(bytes)))
        case .goodbye:
            let code = try reader.u16("reason")
            let textBytes = try reader.string16("text")
            guard textBytes.count <= PeerProtocol.maxGoodbyeTextLength else {
                throw WireError(.badString, "goodbye: text is \(textBytes.count) bytes (at most \(PeerProtocol.maxGoodbyeTextLength))")
            }
            guard let text = String(validating: textBytes, as: UTF8.self) else {
                throw WireError(.badString, "goodbye: text is not valid UTF-8")
            }
            try reader.expectEnd()
            message = .goodbye(Goodbye(GoodbyeReason(rawValue: code), text))
        }
        return message
    }

    private static func checkBlock(
        type: MessageType, offset: UInt32, length: UInt64, maxBlockLength: Int
    ) throws(WireError) {
        guard length >= 1 && length <= UInt64(maxBlockLength) else {
            throw WireError(.malformedPayload, "\(type): block length \(length) is outside 1...\(maxBlockLength)")
        }
        guard UInt64(offset) + length <= UInt64(UInt32.max) + 1 else {
            throw WireError(.malformedPayload, "\(type): block at offset \(offset) of \(length) bytes runs past 2^32")
        }
    }
}

/// Bounds-checked big-endian reads from one frame's payload; errors name the message and field.
struct PayloadReader {
    private let payload: ArraySlice<UInt8>
    private var position: Int
    private let type: MessageType

    init(_ payload: ArraySlice<UInt8>, type: MessageType) {
        self.payload = payload
        self.position = payload.startIndex
        self.type = type
    }

    var remaining: Int { payload.endIndex - position }

    mutating func bytes(_ count: Int, _ field: String) throws(WireError) -> ArraySlice<UInt8> {
        guard count <= remaining else {
            throw WireError(.malformedPayload, "\(type): payload ends inside \(field) (needs \(count) bytes, \(remaining) left)")
        }
        defer { position += count }
        return payload[position..<position + count]
    }

    mutating func u8(_ field: String) throws(WireError) -> UInt8 {
        try bytes(1, field).first ?? 0
    }

    mutating func u16(_ field: String) throws(WireError) -> UInt16 {
        let b = try bytes(2, field)
        return b.reduce(0) { $0 << 8 | UInt16($1) }
    }

    mutating func u32(_ field: String) throws(WireError) -> UInt32 {
        let b = try bytes(4, field)
        return b.reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// A `u16` length then that many bytes.
    mutating func string16(_ field: String) throws(WireError) -> ArraySlice<UInt8> {
        let length = try u16("\(field) length")
        return try bytes(Int(length), field)
    }

    /// A host or site name: `string16` plus the name rules of ``Hello``.
    mutating func name(_ field: String) throws(WireError) -> String {
        try Hello.validateName(try string16(field), field: field)
    }

    /// Everything left in the payload.
    mutating func rest() -> ArraySlice<UInt8> {
        defer { position = payload.endIndex }
        return payload[position...]
    }

    func expectEnd() throws(WireError) {
        guard remaining == 0 else {
            throw WireError(.trailingBytes, "\(type): \(remaining) bytes after the last field")
        }
    }
}

func hex2(_ byte: UInt8) -> String {
    let digits = String(byte, radix: 16, uppercase: true)
    return digits.count == 1 ? "0" + digits : digits
}
