/// Everything that can go wrong while capturing, storing, detecting or rendering a host profile.
///
/// Each case carries what an operator needs to act on it; `description` is the message the agent
/// logs and the CLI prints.
public enum HostProfileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Output of a capture command (`ip -j …`) or a captured file could not be understood.
    /// `source` names the command or file, `reason` what was wrong.
    case unparsable(source: String, reason: String)
    /// A value in the profile is not valid (an address, a MAC, a path).
    case invalidValue(String)
    /// A required file was missing from the captured tree (for example `/etc/hostname`).
    case missingFile(String)
    /// A file could not be read from a ``FileSource``.
    case unreadable(path: String, reason: String)
    /// The stored envelope does not start like a host profile envelope.
    case notAnEnvelope(String)
    /// The envelope was written by a newer Shoal.
    case unsupportedEnvelopeVersion(Int)
    /// The envelope is shorter than its header says (a torn write, a truncated copy).
    case envelopeTruncated(expected: Int, actual: Int)
    /// The envelope is longer than its header says.
    case envelopeTrailingBytes(expected: Int, actual: Int)
    /// The body's SHA-256 does not match the header: the envelope was corrupted.
    case envelopeChecksumMismatch(expected: String, actual: String)
    /// The body matched its checksum but could not be decoded as a profile.
    case envelopeUndecodable(String)
    /// No network configuration system was recognised in the target root.
    case targetFormatUnknown(String)
    /// The profile cannot be expressed in the requested format (for example a Windows ComputerName
    /// longer than 15 characters).
    case unrenderable(format: String, reason: String)

    public var description: String {
        switch self {
        case .unparsable(let source, let reason): return "cannot parse \(source): \(reason)"
        case .invalidValue(let what): return "invalid value: \(what)"
        case .missingFile(let path): return "missing file in captured tree: \(path)"
        case .unreadable(let path, let reason): return "cannot read \(path): \(reason)"
        case .notAnEnvelope(let why): return "not a Shoal host profile envelope: \(why)"
        case .unsupportedEnvelopeVersion(let v):
            return "host profile envelope version \(v) is newer than this Shoal understands (1)"
        case .envelopeTruncated(let expected, let actual):
            return "host profile envelope truncated: body has \(actual) of \(expected) bytes"
        case .envelopeTrailingBytes(let expected, let actual):
            return "host profile envelope has \(actual - expected) unexpected bytes after its \(expected)-byte body"
        case .envelopeChecksumMismatch(let expected, let actual):
            return "host profile envelope corrupt: SHA-256 of body is \(actual), header says \(expected)"
        case .envelopeUndecodable(let why): return "host profile envelope checksum ok but body undecodable: \(why)"
        case .targetFormatUnknown(let why): return "cannot tell the target's network configuration system: \(why)"
        case .unrenderable(let format, let reason): return "cannot render the profile as \(format): \(reason)"
        }
    }
}
