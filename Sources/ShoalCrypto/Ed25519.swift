import CShoalNative

/// An Ed25519 public key (32 raw bytes), used to check bundle signatures.
public struct Ed25519PublicKey: Hashable, Sendable {
    public let rawRepresentation: [UInt8]

    public init(rawRepresentation: some Collection<UInt8>) throws {
        guard rawRepresentation.count == 32 else {
            throw CryptoError("Ed25519 public key must be 32 bytes, got \(rawRepresentation.count)", drainingOpenSSLQueue: false)
        }
        self.rawRepresentation = Array(rawRepresentation)
    }

    /// Reads a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as written by `shoal keys generate` or
    /// `openssl pkey -pubout`.
    public init(pem: String) throws {
        let pkey = try PEM.readKey(pem, isPrivate: false)
        defer { EVP_PKEY_free(pkey) }
        guard EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 else {
            throw CryptoError("the public key is not an Ed25519 key", drainingOpenSSLQueue: false)
        }
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(pkey, &raw, &length) == 1, length == 32 else {
            throw CryptoError("EVP_PKEY_get_raw_public_key")
        }
        self.rawRepresentation = raw
    }

    public var pemRepresentation: String {
        let pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, rawRepresentation, 32)!
        defer { EVP_PKEY_free(pkey) }
        return PEM.write { bio in PEM_write_bio_PUBKEY(bio, pkey) }
    }

    /// Short fingerprint for display: the first 16 hex digits of SHA-256 over the raw key.
    public var fingerprint: String { String(SHA256.hash(rawRepresentation).hex.prefix(16)) }

    /// True when `signature` is a valid Ed25519 signature of `message` by this key.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        guard let pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, rawRepresentation, 32) else {
            _ = CryptoError.drainQueue()
            return false
        }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, pkey) == 1 else {
            _ = CryptoError.drainQueue()
            return false
        }
        let ok = signature.withUnsafeBytes { sig in
            message.withUnsafeBytes { msg in
                EVP_DigestVerify(
                    ctx, sig.bindMemory(to: UInt8.self).baseAddress, sig.count,
                    msg.bindMemory(to: UInt8.self).baseAddress, msg.count)
            }
        }
        if ok != 1 { _ = CryptoError.drainQueue() }
        return ok == 1
    }
}

/// An Ed25519 private (signing) key.
public struct Ed25519PrivateKey: Sendable {
    private let seed: [UInt8]
    public let publicKey: Ed25519PublicKey

    /// A fresh key from OpenSSL's DRBG.
    public init() {
        try! self.init(seed: SecureRandom.bytes(32))
    }

    public init(seed: [UInt8]) throws {
        guard seed.count == 32 else { throw CryptoError("Ed25519 private key must be 32 bytes", drainingOpenSSLQueue: false) }
        guard let pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw CryptoError("EVP_PKEY_new_raw_private_key")
        }
        defer { EVP_PKEY_free(pkey) }
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(pkey, &raw, &length) == 1 else { throw CryptoError("EVP_PKEY_get_raw_public_key") }
        self.seed = seed
        self.publicKey = try Ed25519PublicKey(rawRepresentation: raw)
    }

    /// Reads a PEM `PRIVATE KEY` (PKCS#8), as written by `shoal keys generate` or `openssl genpkey -algorithm ed25519`.
    public init(pem: String) throws {
        let pkey = try PEM.readKey(pem, isPrivate: true)
        defer { EVP_PKEY_free(pkey) }
        guard EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519 else {
            throw CryptoError("the private key is not an Ed25519 key", drainingOpenSSLQueue: false)
        }
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_private_key(pkey, &raw, &length) == 1, length == 32 else {
            throw CryptoError("EVP_PKEY_get_raw_private_key")
        }
        try self.init(seed: raw)
    }

    public var pemRepresentation: String {
        let pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32)!
        defer { EVP_PKEY_free(pkey) }
        return PEM.write { bio in PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) }
    }

    /// Signs `message` (Ed25519 is deterministic: the same message gives the same signature).
    public func signature(for message: [UInt8]) throws -> [UInt8] {
        guard let pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else {
            throw CryptoError("EVP_PKEY_new_raw_private_key")
        }
        defer { EVP_PKEY_free(pkey) }
        guard let ctx = EVP_MD_CTX_new() else { throw CryptoError("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestSignInit(ctx, nil, nil, nil, pkey) == 1 else { throw CryptoError("EVP_DigestSignInit") }
        var sig = [UInt8](repeating: 0, count: 64)
        var sigLength = 64
        let ok = message.withUnsafeBytes { msg in
            EVP_DigestSign(ctx, &sig, &sigLength, msg.bindMemory(to: UInt8.self).baseAddress, msg.count)
        }
        guard ok == 1, sigLength == 64 else { throw CryptoError("EVP_DigestSign") }
        return sig
    }
}

/// PEM helpers over OpenSSL memory BIOs, shared by the modules that wrap OpenSSL.
public enum PEM {
    static func readKey(_ pem: String, isPrivate: Bool) throws -> OpaquePointer {
        var bytes = Array(pem.utf8)
        let key: OpaquePointer? = bytes.withUnsafeMutableBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return isPrivate ? PEM_read_bio_PrivateKey(bio, nil, nil, nil) : PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let key else {
            throw CryptoError(isPrivate ? "not a PEM private key" : "not a PEM public key")
        }
        return key
    }

    /// Runs `body` against a fresh memory BIO and returns what it wrote (PEM text).
    public static func write(_ body: (OpaquePointer) -> Int32) -> String {
        let bio = BIO_new(BIO_s_mem())!
        defer { BIO_free(bio) }
        precondition(body(bio) == 1, "PEM write failed")
        var pointer: UnsafeMutablePointer<CChar>? = nil
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard let pointer, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: Int(length)), as: UTF8.self)
    }
}
