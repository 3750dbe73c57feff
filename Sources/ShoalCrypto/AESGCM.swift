import CShoalNative

/// A 256-bit symmetric key for sealing bundle frames with AES-256-GCM.
public struct SymmetricKey: Sendable, Equatable {
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws {
        guard bytes.count == 32 else {
            throw CryptoError("an AES-256 key must be 32 bytes, got \(bytes.count)", drainingOpenSSLQueue: false)
        }
        self.bytes = bytes
    }

    public static func random() -> SymmetricKey { try! SymmetricKey(bytes: SecureRandom.bytes(32)) }

    /// Parses a key file: 64 hex digits (whitespace ignored) or exactly 32 raw bytes.
    public init(keyFileContents data: [UInt8]) throws {
        let text = String(decoding: data, as: UTF8.self).filter { !$0.isWhitespace }
        if text.count == 64, let raw = Hex.decode(text) {
            try self.init(bytes: raw)
        } else if data.count == 32 {
            try self.init(bytes: data)
        } else {
            throw CryptoError("a key file must hold 64 hex digits or 32 raw bytes", drainingOpenSSLQueue: false)
        }
    }

    /// A public, non-secret identifier for this key: the first 16 bytes of SHA-256("shoal.key-id\0" ‖ key).
    /// Bundles record it so that a wrong key is reported as such rather than as corruption.
    public var keyID: [UInt8] {
        Array(SHA256.hash(Array("shoal.key-id\u{0}".utf8) + bytes).bytes.prefix(16))
    }
}

/// AES-256-GCM with a 12-byte nonce and a 16-byte tag (OpenSSL EVP; uses AES-NI).
public enum AESGCM {
    public static let nonceSize = 12
    public static let tagSize = 16

    /// Seals `plaintext`; returns `nonce ‖ ciphertext ‖ tag`.
    public static func seal(_ plaintext: UnsafeRawBufferPointer, key: SymmetricKey, nonce: [UInt8], aad: [UInt8]) throws -> [UInt8] {
        precondition(nonce.count == nonceSize)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key.bytes, nonce) == 1 else { throw CryptoError("EVP_EncryptInit_ex") }
        var outLength: Int32 = 0
        if !aad.isEmpty {
            guard EVP_EncryptUpdate(ctx, nil, &outLength, aad, Int32(aad.count)) == 1 else { throw CryptoError("EVP_EncryptUpdate(aad)") }
        }
        var out = [UInt8](repeating: 0, count: nonceSize + plaintext.count + tagSize)
        out.replaceSubrange(0..<nonceSize, with: nonce)
        try out.withUnsafeMutableBufferPointer { o in
            let body = o.baseAddress! + nonceSize
            if plaintext.count > 0 {
                guard EVP_EncryptUpdate(ctx, body, &outLength, plaintext.bindMemory(to: UInt8.self).baseAddress, Int32(plaintext.count)) == 1 else {
                    throw CryptoError("EVP_EncryptUpdate")
                }
            }
            var finalLength: Int32 = 0
            guard EVP_EncryptFinal_ex(ctx, body + Int(outLength), &finalLength) == 1 else { throw CryptoError("EVP_EncryptFinal_ex") }
            guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, Int32(tagSize), body + plaintext.count) == 1 else {
                throw CryptoError("EVP_CTRL_GCM_GET_TAG")
            }
        }
        return out
    }

    /// Opens `nonce ‖ ciphertext ‖ tag` into `output` (which must hold at least `sealed.count - 28` bytes).
    /// - Returns: the plaintext length, or nil when authentication fails (wrong key, wrong AAD or tampered bytes).
    public static func open(_ sealed: UnsafeRawBufferPointer, key: SymmetricKey, aad: [UInt8], into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard sealed.count >= nonceSize + tagSize else { return nil }
        let bodyCount = sealed.count - nonceSize - tagSize
        guard output.count >= bodyCount, let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let base = sealed.bindMemory(to: UInt8.self).baseAddress!
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key.bytes, base) == 1 else { return nil }
        var outLength: Int32 = 0
        if !aad.isEmpty { guard EVP_DecryptUpdate(ctx, nil, &outLength, aad, Int32(aad.count)) == 1 else { return nil } }
        let out = output.bindMemory(to: UInt8.self).baseAddress!
        if bodyCount > 0 {
            guard EVP_DecryptUpdate(ctx, out, &outLength, base + nonceSize, Int32(bodyCount)) == 1 else { return nil }
        }
        let tag = UnsafeMutableRawPointer(mutating: base + nonceSize + bodyCount)
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, Int32(tagSize), tag) == 1 else { return nil }
        var finalLength: Int32 = 0
        let ok = EVP_DecryptFinal_ex(ctx, out + Int(outLength), &finalLength)
        if ok != 1 { _ = CryptoError.drainQueue(); return nil }
        return bodyCount
    }
}
