/// A fixed-size set of chunk indices, stored exactly as it travels on the wire.
///
/// Bit *i* is bit `7 - i % 8` of byte `i / 8` (most significant bit first, as in BitTorrent), and the
/// spare bits of the last byte are always zero. A peer announces the chunks it holds with one
/// bitfield right after its hello; ``PeerSession`` keeps one for each side.
///
/// ```swift
/// var have = Bitfield(count: 10)
/// have[3] = true
/// have.setCount            // 1
/// have.bytes               // [0b0001_0000, 0b0000_0000]
/// let copy = try Bitfield(count: 10, bytes: have.bytes)
/// ```
public struct Bitfield: Hashable, Sendable, CustomStringConvertible {
    /// The largest count a bitfield can have: its count travels as a `u32`.
    public static let maxCount = Int(UInt32.max)

    /// Number of chunks (bits).
    public let count: Int
    /// Number of set bits, kept up to date on every change.
    public private(set) var setCount: Int
    /// The wire form: `(count + 7) / 8` bytes, most significant bit first, spare bits zero.
    public private(set) var bytes: [UInt8]

    /// An empty bitfield of `count` bits.
    ///
    /// - Parameter count: The number of chunks; `0...Bitfield.maxCount` (a precondition).
    public init(count: Int) {
        precondition(count >= 0 && count <= Bitfield.maxCount, "bitfield count \(count) out of range")
        self.count = count
        self.setCount = 0
        self.bytes = [UInt8](repeating: 0, count: Bitfield.byteCount(for: count))
    }

    /// A bitfield of `count` bits, all set (what a seed holds).
    public static func full(count: Int) -> Bitfield {
        var field = Bitfield(count: count)
        field.bytes = [UInt8](repeating: 0xFF, count: field.bytes.count)
        field.clearSpareBits()
        field.setCount = count
        return field
    }

    /// Decodes the wire form of a bitfield, checking that it is internally consistent.
    ///
    /// - Parameters:
    ///   - count: The number of bits, as announced next to the bytes.
    ///   - bytes: Exactly `(count + 7) / 8` bytes.
    /// - Throws: ``WireError/Code/badBitfield`` if the byte count is wrong or a spare bit is set.
    public init(count: Int, bytes: some Collection<UInt8>) throws(WireError) {
        guard count >= 0 && count <= Bitfield.maxCount else {
            throw WireError(.badBitfield, "bitfield count \(count) out of range")
        }
        let expected = Bitfield.byteCount(for: count)
        guard bytes.count == expected else {
            throw WireError(.badBitfield, "bitfield of \(count) chunks needs \(expected) bytes, got \(bytes.count)")
        }
        let storage = Array(bytes)
        if let last = storage.last, last & Bitfield.spareMask(for: count) != 0 {
            throw WireError(.badBitfield, "bitfield of \(count) chunks has spare bits set in its last byte")
        }
        self.count = count
        self.bytes = storage
        self.setCount = storage.reduce(0) { $0 + $1.nonzeroBitCount }
    }

    /// Whether chunk `index` is in the set. `index` must be in `0..<count` (a precondition).
    public subscript(index: Int) -> Bool {
        get {
            precondition(index >= 0 && index < count, "bit \(index) out of range 0..<\(count)")
            return bytes[index >> 3] & Bitfield.mask(index) != 0
        }
        set {
            precondition(index >= 0 && index < count, "bit \(index) out of range 0..<\(count)")
            let mask = Bitfield.mask(index)
            let old = bytes[index >> 3] & mask != 0
            guard old != newValue else { return }
            if newValue {
                bytes[index >> 3] |= mask
                setCount += 1
            } else {
                bytes[index >> 3] &= ~mask
                setCount -= 1
            }
        }
    }

    /// Whether `index` is in `0..<count` and set; never traps (for indices taken from the wire).
    public func contains(_ index: UInt32) -> Bool {
        Int(index) < count && self[Int(index)]
    }

    /// Every bit is set (vacuously true for a count of zero).
    public var isFull: Bool { setCount == count }
    /// No bit is set.
    public var isEmpty: Bool { setCount == 0 }

    public var description: String { "Bitfield(\(setCount)/\(count))" }

    static func byteCount(for count: Int) -> Int { count / 8 + (count % 8 == 0 ? 0 : 1) }

    private static func mask(_ index: Int) -> UInt8 { 0x80 >> UInt8(index & 7) }

    /// The bits of the last byte that lie beyond `count`.
    private static func spareMask(for count: Int) -> UInt8 {
        let used = count & 7
        return used == 0 ? 0 : 0xFF >> UInt8(used)
    }

    private mutating func clearSpareBits() {
        guard let last = bytes.indices.last else { return }
        bytes[last] &= ~Bitfield.spareMask(for: count)
    }
}
