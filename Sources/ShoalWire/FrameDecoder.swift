/// Turns a byte stream from a peer into ``Message``s, one frame at a time.
///
/// Feed bytes as they arrive, in pieces of any size, then call ``next()`` until it returns `nil`
/// (it needs more bytes). The decoder checks each frame's length field as soon as its 4 bytes are
/// in, and its type byte as soon as that is in, so an oversized or unknown frame is refused before
/// its body is buffered. It never holds more than one incomplete frame plus what the caller fed in
/// one go, never traps on any input, and allocates no more than the frames it is given.
///
/// The first error is final: ``next()`` throws it again on every later call and ``feed(_:)``
/// drops further bytes. The connection is then closed with the error's description as the reason.
///
/// ```swift
/// var decoder = FrameDecoder()
/// decoder.feed(bytesFromTLS)
/// while let message = try decoder.next() {
///     actions += session.receive(message, now: now)
/// }
/// ```
public struct FrameDecoder: Sendable {
    /// The largest length field accepted (type byte + payload).
    public let maxFrameLength: Int
    /// The largest block accepted in a request, cancel, reject or piece.
    public let maxBlockLength: Int
    /// The error that stopped this decoder, if any.
    public private(set) var error: WireError?

    private var buffer: [UInt8] = []
    private var readIndex = 0

    /// Makes a decoder with the given limits.
    ///
    /// - Parameters:
    ///   - maxFrameLength: The largest length field accepted, `1...UInt32.max`. The default,
    ///     1 MiB + 64, fits a piece of the default block size and a bitfield of 8 Mi chunks.
    ///   - maxBlockLength: The largest block accepted, at least 1. Default 256 KiB.
    public init(
        maxFrameLength: Int = PeerProtocol.defaultMaxFrameLength,
        maxBlockLength: Int = PeerProtocol.defaultMaxBlockLength
    ) {
        precondition(maxFrameLength >= 1 && UInt64(maxFrameLength) <= UInt64(UInt32.max), "maxFrameLength out of range")
        precondition(maxBlockLength >= 1, "maxBlockLength must be positive")
        self.maxFrameLength = maxFrameLength
        self.maxBlockLength = maxBlockLength
    }

    /// Bytes fed but not yet returned as messages (part of a frame, or frames not yet asked for).
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// Appends bytes received from the peer. Ignored once the decoder has failed.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        guard error == nil, !bytes.isEmpty else { return }
        if readIndex > 0 && readIndex >= buffer.count - readIndex {
            // At least half of the buffer is consumed: moving the rest down is amortised O(1) per byte.
            buffer.removeSubrange(0..<readIndex)
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Returns the next complete message, or `nil` if more bytes are needed.
    ///
    /// - Returns: The decoded message, or `nil` when the buffered bytes do not hold a whole frame.
    /// - Throws: A ``WireError`` if the frame is oversized, empty, of an unknown type or malformed.
    ///   After that every call throws the same error.
    public mutating func next() throws(WireError) -> Message? {
        if let error { throw error }
        let available = buffer.count - readIndex
        guard available >= PeerProtocol.lengthFieldSize else { return nil }
        let length = buffer[readIndex..<readIndex + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        guard UInt64(length) <= UInt64(maxFrameLength) else {
            throw fail(WireError(.frameTooLarge, "frame length \(length) exceeds the maximum \(maxFrameLength)"))
        }
        guard length > 0 else {
            throw fail(WireError(.emptyFrame, "frame length 0: a frame holds at least its type byte"))
        }
        guard available > PeerProtocol.lengthFieldSize else { return nil }
        let typeByte = buffer[readIndex + 4]
        guard MessageType(rawValue: typeByte) != nil else {
            throw fail(WireError(.unknownMessageType, "unknown message type 0x\(hex2(typeByte)) in a frame of \(length) bytes"))
        }
        let frameEnd = Int(length) + PeerProtocol.lengthFieldSize  // ≤ maxFrameLength + 4, no overflow
        guard available >= frameEnd else { return nil }
        let payload = buffer[(readIndex + 5)..<(readIndex + frameEnd)]
        let message: Message
        do {
            message = try Message.decode(typeByte: typeByte, payload: payload, maxBlockLength: maxBlockLength)
        } catch {
            throw fail(error)
        }
        readIndex += frameEnd
        if readIndex == buffer.count {
            // Keep a piece-sized buffer for the next frame; let a rare large one (a bitfield) go.
            buffer.removeAll(keepingCapacity: buffer.capacity <= 512 << 10)
            readIndex = 0
        }
        return message
    }

    /// Call when the stream has ended: throws if it ended in the middle of a frame.
    ///
    /// - Throws: ``WireError/Code/truncatedFrame`` if bytes of an incomplete frame are buffered, or
    ///   the error the decoder already failed with.
    public mutating func finish() throws(WireError) {
        if let error { throw error }
        guard bufferedByteCount == 0 else {
            throw fail(WireError(.truncatedFrame, "stream ended inside a frame (\(bufferedByteCount) bytes buffered)"))
        }
    }

    private mutating func fail(_ error: WireError) -> WireError {
        self.error = error
        buffer = []
        readIndex = 0
        return error
    }
}
