extension Message {
    /// Appends this message as one complete frame (length, type, payload) to `buffer`.
    ///
    /// Encoding cannot fail: every value of the message types has a wire form. Limits that are the
    /// receiver's choice (maximum frame and block lengths) are not checked here; ``PeerSession``
    /// keeps its own requests within them.
    ///
    /// ```swift
    /// var out: [UInt8] = []
    /// Message.keepalive.encode(into: &out)   // [0, 0, 0, 1, 0x0A]
    /// ```
    ///
    /// - Parameter buffer: The bytes to append to.
    public func encode(into buffer: inout [UInt8]) {
        let start = buffer.count
        buffer.append(contentsOf: [0, 0, 0, 0])
        buffer.append(type.rawValue)
        switch self {
        case .hello(let hello):
            buffer.appendU16(hello.version)
            buffer.append(contentsOf: hello.bundleID.bytes)
            buffer.appendString16(hello.host)
            buffer.appendString16(hello.site)
            buffer.appendU16(hello.listenPort)
            buffer.append(hello.role.rawValue)
        case .haveAll, .haveNone, .keepalive:
            break
        case .bitfield(let bitfield):
            buffer.appendU32(UInt32(bitfield.count))
            buffer.append(contentsOf: bitfield.bytes)
        case .have(let chunk):
            buffer.appendU32(chunk)
        case .request(let block), .cancel(let block), .reject(let block):
            buffer.appendU32(block.chunk)
            buffer.appendU32(block.offset)
            buffer.appendU32(block.length)
        case .piece(let piece):
            buffer.appendU32(piece.chunk)
            buffer.appendU32(piece.offset)
            buffer.append(contentsOf: piece.bytes)
        case .goodbye(let goodbye):
            buffer.appendU16(goodbye.reason.rawValue)
            buffer.appendString16(goodbye.text)
        }
        let length = buffer.count - start - PeerProtocol.lengthFieldSize
        precondition(length <= Int(UInt32.max), "a \(type) message of \(length) bytes cannot be framed")
        buffer.storeU32(UInt32(length), at: start)
    }

    /// This message as one complete frame.
    public func encoded() -> [UInt8] {
        var buffer: [UInt8] = []
        encode(into: &buffer)
        return buffer
    }
}

extension Array where Element == UInt8 {
    mutating func appendU16(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    mutating func appendU32(_ value: UInt32) {
        append(UInt8(truncatingIfNeeded: value >> 24))
        append(UInt8(truncatingIfNeeded: value >> 16))
        append(UInt8(truncatingIfNeeded: value >> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    /// A `u16` byte count followed by the UTF-8 bytes. Callers guarantee the string fits (the
    /// validating initialisers of `Hello` and `Goodbye` do).
    mutating func appendString16(_ string: String) {
        let utf8 = string.utf8
        appendU16(UInt16(utf8.count))
        append(contentsOf: utf8)
    }

    mutating func storeU32(_ value: UInt32, at index: Int) {
        self[index] = UInt8(truncatingIfNeeded: value >> 24)
        self[index + 1] = UInt8(truncatingIfNeeded: value >> 16)
        self[index + 2] = UInt8(truncatingIfNeeded: value >> 8)
        self[index + 3] = UInt8(truncatingIfNeeded: value)
    }
}
