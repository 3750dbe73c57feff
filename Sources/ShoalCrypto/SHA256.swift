import CShoalNative

/// A SHA-256 digest: 32 bytes, printed as lowercase hex.
public struct Digest: Hashable, Sendable, CustomStringConvertible, Comparable {
    public static let byteCount = 32
    public private(set) var bytes: [UInt8]

    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Digest.byteCount else { return nil }
        self.bytes = Array(bytes)
    }

    public init?(hex: String) {
        guard let raw = Hex.decode(hex), raw.count == Digest.byteCount else { return nil }
        self.bytes = raw
    }

    public static let zero = Digest(bytes: [UInt8](repeating: 0, count: 32))!

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
    public var shortHex: String { String(hex.prefix(12)) }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.bytes.lexicographicallyPrecedes(rhs.bytes) }
}

/// Incremental SHA-256 over OpenSSL's EVP interface (uses SHA-NI where the CPU has it).
///
/// Not thread-safe: use from one thread at a time.
public final class SHA256Hasher: @unchecked Sendable {
    // Invariant: callers serialise access (one owner thread at a time).
    private let context: OpaquePointer

    public init() {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new failed: out of memory") }
        self.context = ctx
        precondition(EVP_DigestInit_ex(ctx, EVP_sha256(), nil) == 1, "EVP_DigestInit_ex(sha256) failed")
    }

    deinit { EVP_MD_CTX_free(context) }

    public func update(_ buffer: UnsafeRawBufferPointer) {
        guard let base = buffer.baseAddress, buffer.count > 0 else { return }
        precondition(EVP_DigestUpdate(context, base, buffer.count) == 1, "EVP_DigestUpdate failed")
    }

    public func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// Finishes the digest and resets the hasher for reuse.
    public func finalize() -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        precondition(EVP_DigestFinal_ex(context, &out, &length) == 1 && length == 32, "EVP_DigestFinal_ex failed")
        precondition(EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1, "EVP_DigestInit_ex(sha256) failed")
        return Digest(bytes: out)!
    }
}

public enum SHA256 {
    /// One-shot SHA-256.
    public static func hash(_ buffer: UnsafeRawBufferPointer) -> Digest {
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let ok = EVP_Digest(buffer.baseAddress, buffer.count, &out, &length, EVP_sha256(), nil)
        precondition(ok == 1 && length == 32, "EVP_Digest(sha256) failed")
        return Digest(bytes: out)!
    }

    public static func hash(_ bytes: [UInt8]) -> Digest {
        bytes.withUnsafeBytes { hash($0) }
    }

    public static func hash(_ bytes: ArraySlice<UInt8>) -> Digest {
        bytes.withUnsafeBytes { hash($0) }
    }
}

/// Lowercase hexadecimal encoding.
public enum Hex {
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let chars = Array(text.utf8)
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
