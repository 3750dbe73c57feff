/// Why a peer-protocol byte stream was refused.
///
/// Thrown by ``FrameDecoder/next()`` (and the validating initialisers). Every error means the
/// connection is no longer usable: the decoder stays failed and the caller closes the connection,
/// logging ``description`` as the reason (and usually sending it as the text of a
/// `goodbye(protocolError)`, see ``PeerSession/decodingFailed(_:now:)``).
///
/// ```swift
/// do {
///     while let message = try decoder.next() { … }
/// } catch {
///     logger.info("closing peer connection", metadata: ["reason": "\(error)"])
/// }
/// ```
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of failure; stable and suitable for metrics dimensions or tests.
    public let code: Code
    /// What exactly was wrong, for logs: names the message type and the offending field.
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    /// A kind of ``WireError``. A struct over a private enum so that new kinds can be added without
    /// breaking exhaustive `switch`es in other modules.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Value: Hashable, Sendable {
            case frameTooLarge, emptyFrame, unknownMessageType, malformedPayload, trailingBytes
            case badString, badBitfield, truncatedFrame
        }

        private let value: Value
        private init(_ value: Value) { self.value = value }

        /// The length field announces more than the decoder's maximum frame length.
        public static let frameTooLarge = Code(.frameTooLarge)
        /// The length field is zero: there is no message type byte.
        public static let emptyFrame = Code(.emptyFrame)
        /// The message type byte is not one this version defines.
        public static let unknownMessageType = Code(.unknownMessageType)
        /// The payload is too short or a field holds a value outside its range.
        public static let malformedPayload = Code(.malformedPayload)
        /// The frame holds bytes after the last field of its message.
        public static let trailingBytes = Code(.trailingBytes)
        /// A string field is empty where it must not be, too long, not UTF-8 or holds control characters.
        public static let badString = Code(.badString)
        /// A bitfield's byte count does not match its chunk count, or its spare bits are not zero.
        public static let badBitfield = Code(.badBitfield)
        /// The stream ended in the middle of a frame (see ``FrameDecoder/finish()``).
        public static let truncatedFrame = Code(.truncatedFrame)

        public var description: String {
            switch value {
            case .frameTooLarge: return "frame too large"
            case .emptyFrame: return "empty frame"
            case .unknownMessageType: return "unknown message type"
            case .malformedPayload: return "malformed payload"
            case .trailingBytes: return "trailing bytes"
            case .badString: return "bad string"
            case .badBitfield: return "bad bitfield"
            case .truncatedFrame: return "truncated frame"
            }
        }
    }
}
