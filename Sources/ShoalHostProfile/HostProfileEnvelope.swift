import Foundation
import ShoalCrypto

/// The on-disk form of a ``HostProfile``: a short text header with the body's SHA-256 and length,
/// then the profile as JSON.
///
/// ```text
/// SHOAL-HOST-PROFILE 1
/// sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
/// bytes 5123
///
/// {"dns":{…},"formatVersion":1,"hostname":"web1",…}
/// ```
///
/// The profile is the one thing a converted host cannot be rebuilt without, and it sits on a disk
/// that is rebooted across, so a torn or bit-flipped copy must be caught, and caught with a message
/// that says which: the length catches truncation (``HostProfileError/envelopeTruncated(expected:actual:)``),
/// the checksum catches corruption. The header is text so `head -3` on the staging disk tells an
/// operator what is there. JSON keys are sorted, so the same profile always gives the same bytes.
public enum HostProfileEnvelope {
    public static let magic = "SHOAL-HOST-PROFILE"
    public static let version = 1

    /// Encodes `profile` into envelope bytes.
    /// - Throws: ``HostProfileError/invalidValue(_:)`` when the profile does not validate.
    public static func encode(_ profile: HostProfile) throws(HostProfileError) -> Data {
        try profile.validate()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let body: Data
        do { body = try encoder.encode(profile) } catch { throw .invalidValue("profile not encodable: \(error)") }
        let header = "\(magic) \(version)\nsha256 \(SHA256.hash(Array(body)).hex)\nbytes \(body.count)\n\n"
        return Data(header.utf8) + body
    }

    /// Decodes and checks envelope bytes.
    /// - Throws: ``HostProfileError/notAnEnvelope(_:)``, ``HostProfileError/unsupportedEnvelopeVersion(_:)``,
    ///   ``HostProfileError/envelopeTruncated(expected:actual:)``, ``HostProfileError/envelopeTrailingBytes(expected:actual:)``,
    ///   ``HostProfileError/envelopeChecksumMismatch(expected:actual:)`` or ``HostProfileError/envelopeUndecodable(_:)``.
    public static func decode(_ data: Data) throws(HostProfileError) -> HostProfile {
        let bytes = [UInt8](data)
        // The header is at most a few hundred bytes; find the blank line that ends it.
        let limit = min(bytes.count, 512)
        var headerEnd: Int?
        var i = 0
        while i + 1 < limit {
            if bytes[i] == 0x0a && bytes[i + 1] == 0x0a { headerEnd = i; break }
            i += 1
        }
        guard bytes.starts(with: Array(magic.utf8)) else {
            throw .notAnEnvelope(bytes.isEmpty ? "the file is empty" : "it does not start with '\(magic)'")
        }
        guard let headerEnd else {
            throw .notAnEnvelope(
                bytes.count < 512 ? "its header ends after \(bytes.count) bytes: the file was truncated" : "no end of header in the first 512 bytes")
        }
        let lines = String(decoding: bytes[0..<headerEnd], as: UTF8.self).split(separator: "\n").map(String.init)
        guard lines.count == 3 else { throw .notAnEnvelope("header has \(lines.count) lines, expected 3") }
        let first = lines[0].split(separator: " ")
        guard first.count == 2, first[0] == magic, let v = Int(first[1]) else {
            throw .notAnEnvelope("first line is '\(lines[0])'")
        }
        guard v <= version, v >= 1 else { throw .unsupportedEnvelopeVersion(v) }
        guard lines[1].hasPrefix("sha256 "), let expected = Digest(hex: String(lines[1].dropFirst(7))) else {
            throw .notAnEnvelope("second line is not 'sha256 <64 hex digits>'")
        }
        guard lines[2].hasPrefix("bytes "), let length = Int(lines[2].dropFirst(6)), length >= 0 else {
            throw .notAnEnvelope("third line is not 'bytes <count>'")
        }
        let body = bytes[(headerEnd + 2)...]
        if body.count < length { throw .envelopeTruncated(expected: length, actual: body.count) }
        if body.count > length { throw .envelopeTrailingBytes(expected: length, actual: body.count) }
        let actual = SHA256.hash(body)
        guard actual == expected else { throw .envelopeChecksumMismatch(expected: expected.hex, actual: actual.hex) }
        let profile: HostProfile
        do { profile = try JSONDecoder().decode(HostProfile.self, from: Data(body)) } catch {
            throw .envelopeUndecodable(String(describing: error))
        }
        guard profile.formatVersion <= HostProfile.currentFormatVersion else {
            throw .unsupportedEnvelopeVersion(profile.formatVersion)
        }
        do { try profile.validate() } catch { throw .envelopeUndecodable(error.description) }
        return profile
    }
}
