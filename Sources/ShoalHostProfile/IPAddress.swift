import Foundation
import ShoalCrypto

/// An IPv4 or IPv6 address, parsed and printed in canonical form (dotted quad; RFC 5952 for IPv6).
///
/// The profile keeps addresses as text in its JSON, but everything that enters it goes through this
/// type, so a bad address from a captured file fails at capture time, not when the new OS boots.
///
/// ```swift
/// let a = try IPAddress(parsing: "2001:DB8:0:0::1")   // a.description == "2001:db8::1"
/// ```
public struct IPAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    public enum Family: String, Hashable, Sendable, Codable { case ipv4, ipv6 }

    /// 4 bytes for IPv4, 16 for IPv6, network order.
    public let bytes: [UInt8]

    public var family: Family { bytes.count == 4 ? .ipv4 : .ipv6 }

    public init(bytes: [UInt8]) throws(HostProfileError) {
        guard bytes.count == 4 || bytes.count == 16 else {
            throw .invalidValue("an IP address has 4 or 16 bytes, not \(bytes.count)")
        }
        self.bytes = bytes
    }

    /// Parses dotted-quad IPv4 or any RFC 4291 text form of IPv6 (with `::` and an embedded IPv4 tail).
    /// A zone suffix (`%eth0`) is rejected: profiles carry no link-local addresses.
    public init(parsing text: String) throws(HostProfileError) {
        if let v4 = IPAddress.parseIPv4(Substring(text)) {
            bytes = v4
        } else if let v6 = IPAddress.parseIPv6(text) {
            bytes = v6
        } else {
            throw .invalidValue("'\(text)' is not an IPv4 or IPv6 address")
        }
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try IPAddress(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// 127.0.0.0/8 or ::1.
    public var isLoopback: Bool {
        family == .ipv4 ? bytes[0] == 127 : bytes == [UInt8](repeating: 0, count: 15) + [1]
    }

    /// 169.254.0.0/16 or fe80::/10: valid on one link only, generated anew by every OS, never carried over.
    public var isLinkLocal: Bool {
        family == .ipv4 ? (bytes[0] == 169 && bytes[1] == 254) : (bytes[0] == 0xfe && bytes[1] & 0xc0 == 0x80)
    }

    /// 224.0.0.0/4 or ff00::/8.
    public var isMulticast: Bool { family == .ipv4 ? bytes[0] & 0xf0 == 0xe0 : bytes[0] == 0xff }

    /// The all-zero address (`0.0.0.0`, `::`).
    public var isUnspecified: Bool { bytes.allSatisfy { $0 == 0 } }

    public var description: String {
        if family == .ipv4 { return bytes.map(String.init).joined(separator: ".") }
        var groups: [UInt16] = []
        for i in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(bytes[i]) << 8 | UInt16(bytes[i + 1])) }
        // RFC 5952: compress the longest run (first if tied) of two or more zero groups.
        var bestStart = -1, bestLength = 0, i = 0
        while i < 8 {
            if groups[i] == 0 {
                var j = i
                while j < 8 && groups[j] == 0 { j += 1 }
                if j - i > bestLength { bestStart = i; bestLength = j - i }
                i = j
            } else {
                i += 1
            }
        }
        func hex(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        if bestLength < 2 { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            // No leading zeros (ambiguous octal in some parsers), digits only, 0...255.
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }),
                p.count == 1 || p.first != "0", let v = UInt8(p)
            else { return nil }
            out.append(v)
        }
        return out
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        guard text.contains(":"), !text.contains("%") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String, allowV4Tail: Bool) -> [UInt8]? {
            if part.isEmpty { return [] }
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            var out: [UInt8] = []
            for (index, f) in fields.enumerated() {
                if index == fields.count - 1, allowV4Tail, f.contains(".") {
                    guard let v4 = parseIPv4(f) else { return nil }
                    out += v4
                    continue
                }
                guard (1...4).contains(f.count), let v = UInt16(f, radix: 16) else { return nil }
                out += [UInt8(v >> 8), UInt8(v & 0xff)]
            }
            return out
        }
        if halves.count == 1 {
            guard let all = groups(halves[0], allowV4Tail: true), all.count == 16 else { return nil }
            return all
        }
        guard let head = groups(halves[0], allowV4Tail: false), let tail = groups(halves[1], allowV4Tail: true),
            head.count + tail.count <= 14
        else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

/// An address with its prefix length, as written in CIDR notation (`192.0.2.10/24`, `2001:db8::10/64`).
///
/// This is an *interface* address: the host part is kept (unlike a route destination, which
/// ``IPNetwork/network`` normalises).
public struct IPNetwork: Hashable, Sendable, CustomStringConvertible, Codable {
    public let address: IPAddress
    public let prefixLength: Int

    public var family: IPAddress.Family { address.family }

    public init(address: IPAddress, prefixLength: Int) throws(HostProfileError) {
        let maxLength = address.family == .ipv4 ? 32 : 128
        guard (0...maxLength).contains(prefixLength) else {
            throw .invalidValue("prefix length /\(prefixLength) out of range for \(address)")
        }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `ADDRESS/PREFIX`; a bare address gets the full-length prefix (/32 or /128).
    public init(parsing text: String) throws(HostProfileError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { throw .invalidValue("'\(text)' is not in CIDR notation") }
        let address = try IPAddress(parsing: String(parts[0]))
        var length = address.family == .ipv4 ? 32 : 128
        if parts.count == 2 {
            guard let l = Int(parts[1]), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }) else {
                throw .invalidValue("'\(text)' has no valid prefix length")
            }
            length = l
        }
        try self.init(address: address, prefixLength: length)
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try IPNetwork(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// The network itself, host bits cleared (`192.0.2.10/24` → `192.0.2.0/24`).
    public var network: IPNetwork {
        var b = address.bytes
        for i in 0..<b.count {
            let bitsHere = max(0, min(8, prefixLength - i * 8))
            b[i] &= bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bitsHere))
        }
        return try! IPNetwork(address: IPAddress(bytes: b), prefixLength: prefixLength)
    }

    /// True when `other` lies in this network.
    public func contains(_ other: IPAddress) -> Bool {
        guard other.family == family else { return false }
        return (try? IPNetwork(address: other, prefixLength: prefixLength).network) == network
    }

    /// The dotted netmask for an IPv4 network (`255.255.255.0` for /24), for formats that want one.
    public var ipv4Netmask: String? {
        guard family == .ipv4 else { return nil }
        let mask: UInt32 = prefixLength == 0 ? 0 : UInt32.max << (32 - UInt32(prefixLength))
        return [24, 16, 8, 0].map { String((mask >> UInt32($0)) & 0xff) }.joined(separator: ".")
    }
}

/// An Ethernet MAC address; the key by which interfaces are matched in the new OS, since interface
/// names change between operating systems (and between kernels of the same one).
public struct MACAddress: Hashable, Sendable, CustomStringConvertible, Codable {
    public let bytes: [UInt8]

    /// Accepts `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF` and `aabb.ccdd.eeff`.
    public init(parsing text: String) throws(HostProfileError) {
        let hexDigits = text.filter { $0 != ":" && $0 != "-" && $0 != "." }
        let separators = text.filter { $0 == ":" || $0 == "-" || $0 == "." }
        guard hexDigits.count == 12, separators.count == 5 || separators.count == 2 || separators.isEmpty,
            let raw = Hex.decode(String(hexDigits))
        else { throw .invalidValue("'\(text)' is not a MAC address") }
        bytes = raw
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { self = try MACAddress(parsing: text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }

    /// Lowercase, colon-separated: what Linux tools print and accept.
    public var description: String { bytes.map { Hex.encode([$0]) }.joined(separator: ":") }

    /// Uppercase, dash-separated: what Windows (unattend `Identifier`) expects.
    public var windowsForm: String { bytes.map { Hex.encode([$0]).uppercased() }.joined(separator: "-") }

    /// All zero (loopback, tunnels): not a usable identity.
    public var isZero: Bool { bytes.allSatisfy { $0 == 0 } }
}
