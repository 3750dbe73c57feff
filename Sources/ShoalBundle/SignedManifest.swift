import ShoalCrypto

/// A manifest as it travels: the encoded body plus an optional Ed25519 signature.
///
/// The bundle id is SHA-256 over `encodedPayload()`, so it names one exact manifest
/// and one exact signature.
public struct SignedManifest: Equatable, Sendable {
    /// Skippable-frame magic of the manifest frame (one of zstd's 16 user skippable magics).
    public static let skippableMagic: UInt32 = 0x184D_2A5B
    static let signatureDomain = Array("shoal-manifest-v1\u{0}".utf8)

    public enum Signature: Equatable, Sendable {
        case unsigned
        case ed25519(signer: Ed25519PublicKey, signature: [UInt8])
    }

    public let body: [UInt8]
    public let manifest: Manifest
    public let signature: Signature

    /// Encodes and optionally signs `manifest`.
    public init(manifest: Manifest, signingKey: Ed25519PrivateKey?) throws {
        let body = manifest.encoded()
        self.body = body
        self.manifest = manifest
        if let key = signingKey {
            self.signature = .ed25519(signer: key.publicKey, signature: try key.signature(for: SignedManifest.signatureDomain + body))
        } else {
            self.signature = .unsigned
        }
    }

    private init(body: [UInt8], manifest: Manifest, signature: Signature) {
        self.body = body
        self.manifest = manifest
        self.signature = signature
    }

    public var isSigned: Bool { if case .unsigned = signature { false } else { true } }

    public var signer: Ed25519PublicKey? {
        if case .ed25519(let signer, _) = signature { signer } else { nil }
    }

    /// `u32 bodyLength ‖ body ‖ u8 scheme ‖ [32-byte signer key ‖ 64-byte signature]`.
    public func encodedPayload() -> [UInt8] {
        var w = ByteWriter(capacity: body.count + 101)
        w.u32(UInt32(body.count))
        w.raw(body)
        switch signature {
        case .unsigned:
            w.u8(0)
        case .ed25519(let signer, let sig):
            w.u8(1)
            w.raw(signer.rawRepresentation)
            w.raw(sig)
        }
        return w.bytes
    }

    /// The manifest as a zstd skippable frame.
    public func encodedFrame() -> [UInt8] {
        let payload = encodedPayload()
        var w = ByteWriter(capacity: payload.count + 8)
        w.u32(SignedManifest.skippableMagic)
        w.u32(UInt32(payload.count))
        w.raw(payload)
        return w.bytes
    }

    /// The bundle id: SHA-256 of the signed manifest payload.
    public var bundleID: Digest { SHA256.hash(encodedPayload()) }

    /// Parses a manifest skippable frame. Checks structure and, when signed, that the signature
    /// verifies against the embedded signer key (a bad signature is never silently accepted).
    /// Whether that signer is *trusted* is a separate question: see `checkTrust(_:)`.
    public static func decode(frame bytes: [UInt8]) throws -> SignedManifest {
        guard bytes.count >= 8, bytes.u32LE(at: 0) == skippableMagic else {
            throw BundleError.notABundle("no Shoal manifest frame before the seek table")
        }
        guard Int(bytes.u32LE(at: 4)) == bytes.count - 8 else {
            throw BundleError.notABundle("manifest frame length does not match the seek table")
        }
        return try decode(payload: Array(bytes[8...]))
    }

    public static func decode(payload: [UInt8]) throws -> SignedManifest {
        var r = ByteReader(payload)
        do {
            let length = Int(try r.u32())
            guard length <= Manifest.maximumEncodedSize else { throw BundleError.malformedManifest("manifest of \(length) bytes is too large") }
            let body = Array(try r.raw(length))
            let scheme = try r.u8()
            let manifest = try Manifest.decode(body)
            let signature: Signature
            switch scheme {
            case 0:
                signature = .unsigned
            case 1:
                let signer = try Ed25519PublicKey(rawRepresentation: try r.raw(32))
                let sig = Array(try r.raw(64))
                guard signer.isValidSignature(sig, for: signatureDomain + body) else { throw BundleError.badSignature }
                signature = .ed25519(signer: signer, signature: sig)
            default:
                throw BundleError.malformedManifest("unknown signature scheme \(scheme)")
            }
            guard r.remaining == 0 else { throw BundleError.malformedManifest("\(r.remaining) unexpected bytes after the signature") }
            return SignedManifest(body: body, manifest: manifest, signature: signature)
        } catch is ByteReader.Truncated {
            throw BundleError.malformedManifest("manifest frame ends early")
        } catch let error as CryptoError {
            throw BundleError.malformedManifest(error.description)
        }
    }

    /// Throws `untrusted` unless the manifest is signed by one of `trustedKeys`.
    /// With no trusted keys given, any bundle (signed or not) passes.
    public func checkTrust(_ trustedKeys: [Ed25519PublicKey]) throws {
        guard !trustedKeys.isEmpty else { return }
        guard let signer else { throw BundleError.untrusted("the bundle is unsigned and a trusted key was given") }
        guard trustedKeys.contains(signer) else {
            throw BundleError.untrusted("signed by key \(signer.fingerprint), which is not among the trusted keys")
        }
    }
}
