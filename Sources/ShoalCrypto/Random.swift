import CShoalNative

public enum SecureRandom {
    /// Cryptographically secure random bytes from OpenSSL's DRBG.
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        precondition(count == 0 || RAND_bytes(&out, Int32(count)) == 1, "RAND_bytes failed")
        return out
    }
}
