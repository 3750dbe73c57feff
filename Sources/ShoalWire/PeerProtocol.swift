/// Constants of the Shoal peer protocol, version 1.
///
/// The protocol is documented byte by byte in `docs/PEER-PROTOCOL.md`. Every frame is
/// `u32 length (big-endian) ‖ u8 message type ‖ payload`, where `length` counts the type byte and the
/// payload. This namespace holds the numbers both sides must agree on and the defaults for the limits
/// that each receiver enforces on its own.
public enum PeerProtocol {
    /// The protocol version this build speaks. Peers must send exactly this value in their hello.
    public static let version: UInt16 = 1

    /// Bytes in the frame header's length field.
    public static let lengthFieldSize = 4

    /// Default limit on a frame's length field (type byte + payload): 1 MiB + 64 bytes.
    ///
    /// Large enough for a bitfield of 8 Mi chunks (1 MiB of bits) and for any piece of the default
    /// maximum block size, small enough that one connection cannot make the receiver buffer more.
    public static let defaultMaxFrameLength = 1 << 20 + 64

    /// Default limit on the length of a requested, cancelled, rejected or delivered block: 256 KiB.
    public static let defaultMaxBlockLength = 256 << 10

    /// Longest host or site name, in UTF-8 bytes.
    public static let maxNameLength = 255

    /// Longest goodbye text, in UTF-8 bytes.
    public static let maxGoodbyeTextLength = 1024
}
