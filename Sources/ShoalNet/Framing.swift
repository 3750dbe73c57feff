import NIOCore

/// Splits a byte stream into frames of `u32` big-endian length + body (the control protocol).
/// A length above `maxFrameLength` is refused before the body is buffered.
public struct LengthPrefixedFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer
    public let maxFrameLength: Int

    public init(maxFrameLength: Int) { self.maxFrameLength = maxFrameLength }

    public struct FrameTooLarge: Error, CustomStringConvertible {
        public var length: Int
        public var description: String { "control frame of \(length) bytes exceeds the limit" }
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= maxFrameLength else { throw FrameTooLarge(length: Int(length)) }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        context.fireChannelRead(wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }
}

/// Host and port from "host:port", "[v6]:port" or a bare port (then `defaultHost`).
public func parseHostPort(_ text: String, defaultHost: String = "127.0.0.1") -> (String, Int)? {
    if let port = Int(text) { return (defaultHost, port) }
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
        let host = String(text[text.index(after: text.startIndex)..<close])
        let rest = text[text.index(after: close)...]
        guard rest.hasPrefix(":"), let port = Int(rest.dropFirst()) else { return nil }
        return (host, port)
    }
    guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]) else { return nil }
    return (String(text[..<colon]), port)
}
