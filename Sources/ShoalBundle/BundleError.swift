/// Why a bundle (or one of its frames) was refused.
///
/// Each case maps to a distinct process exit code in the `shoal` tool (see `exitCode`),
/// so that scripts driving a fleet can tell "not a bundle" from "bad signature".
public enum BundleError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file does not end with a zstd seek table followed by a Shoal manifest.
    case notABundle(String)
    /// The file ends early or its frames do not add up to its length.
    case truncated(String)
    /// The manifest is structurally invalid.
    case malformedManifest(String)
    /// This build cannot read this format version.
    case unsupportedVersion(UInt16)
    /// The signature does not verify against the key embedded in the manifest.
    case badSignature
    /// A trusted key was given but the bundle is unsigned or signed by another key.
    case untrusted(String)
    /// A frame's bytes do not match the manifest.
    case chunkMismatch(index: Int, String)
    /// The bundle is encrypted and no key, or the wrong key, was given.
    case keyRequired(String)
    /// The decoded image does not match the manifest's image digest.
    case imageMismatch(String)

    public var description: String {
        switch self {
        case .notABundle(let why): return "not a Shoal bundle: \(why)"
        case .truncated(let why): return "truncated bundle: \(why)"
        case .malformedManifest(let why): return "malformed manifest: \(why)"
        case .unsupportedVersion(let v): return "unsupported bundle format version \(v) (this build reads version \(Manifest.formatVersion))"
        case .badSignature: return "bad signature: the manifest does not verify against its signer key"
        case .untrusted(let why): return "untrusted bundle: \(why)"
        case .chunkMismatch(let index, let why): return "chunk \(index) is corrupt: \(why)"
        case .keyRequired(let why): return "cannot decrypt: \(why)"
        case .imageMismatch(let why): return "image mismatch: \(why)"
        }
    }

    /// Process exit code used by the `shoal` tool for this error.
    public var exitCode: Int32 {
        switch self {
        case .notABundle: return 10
        case .truncated: return 11
        case .malformedManifest, .unsupportedVersion: return 12
        case .badSignature: return 13
        case .untrusted: return 14
        case .chunkMismatch: return 15
        case .keyRequired: return 16
        case .imageMismatch: return 17
        }
    }
}
