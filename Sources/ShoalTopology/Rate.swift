/// A link rate in bits per second.
///
/// Rates are written as a decimal number, optional spaces, and a unit, optionally followed by
/// `/s`: `100Mbit`, `50Mbit/s`, `1Gbit`, `2.5Gbit`, `800kbit`, `12.5MB/s`. Units:
///
/// | unit                                   | bits per second                      |
/// |----------------------------------------|--------------------------------------|
/// | `bit`                                  | 1                                    |
/// | `kbit` `Kbit`                          | 1 000                                |
/// | `Mbit` `mbit`                          | 1 000 000                            |
/// | `Gbit` `gbit`                          | 1 000 000 000                        |
/// | `Tbit` `tbit`                          | 1 000 000 000 000                    |
/// | `Kibit` `Mibit` `Gibit` `Tibit`        | 1024, 1024², 1024³, 1024⁴            |
/// | `B`                                    | 8 (bytes)                            |
/// | `kB` `KB`, `MB`, `GB`, `TB`            | 8 × 1000, 1000², 1000³, 1000⁴        |
/// | `KiB` `MiB` `GiB` `TiB`                | 8 × 1024, 1024², 1024³, 1024⁴        |
///
/// `bps`-style units (`Mbps`, `MBps`, `kbps`) are refused on purpose: `tc` reads `mbps` as
/// megabytes per second while most people mean megabits, so the file must say which.
/// The value must come out as a whole number of bits per second greater than zero and must fit
/// in a `UInt64`; the arithmetic is exact (no floating point), so `12.5MB/s` is exactly
/// 100 000 000 bit/s.
public struct Rate: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The rate in bits per second.
    public var bitsPerSecond: UInt64

    /// A rate of `bitsPerSecond` bits per second (not validated; `parse` refuses zero).
    public init(bitsPerSecond: UInt64) {
        self.bitsPerSecond = bitsPerSecond
    }

    /// Shorthand for decimal megabits per second (`Rate.mbit(100)` is 100 Mbit/s).
    public static func mbit(_ megabits: UInt64) -> Rate { Rate(bitsPerSecond: megabits * 1_000_000) }

    /// The rate in bytes per second.
    public var bytesPerSecond: Double { Double(bitsPerSecond) / 8 }

    public static func < (lhs: Rate, rhs: Rate) -> Bool { lhs.bitsPerSecond < rhs.bitsPerSecond }

    /// The rate with the largest decimal bit unit that keeps it at least 1, written exactly:
    /// `100Mbit/s`, `2.5Gbit/s`, `800kbit/s`, `1234bit/s`. `Rate.parse(r.description) == r`.
    public var description: String {
        let units: [(String, UInt64)] = [("Tbit", 1_000_000_000_000), ("Gbit", 1_000_000_000), ("Mbit", 1_000_000), ("kbit", 1_000)]
        for (name, scale) in units where bitsPerSecond >= scale {
            return Rate.decimal(bitsPerSecond, scale: scale) + name + "/s"
        }
        return "\(bitsPerSecond)bit/s"
    }

    /// `value / scale` written exactly with no trailing zeros (`scale` is a power of ten).
    private static func decimal(_ value: UInt64, scale: UInt64) -> String {
        let whole = value / scale
        var fraction = value % scale
        guard fraction != 0 else { return "\(whole)" }
        var width = String(scale).count - 1
        while fraction % 10 == 0 { fraction /= 10; width -= 1 }
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: width - digits.count) + digits
    }

    /// Every accepted unit (without the optional `/s`) and its size in bits.
    public static let units: [(name: String, bits: UInt64)] = {
        let k: UInt64 = 1000, ki: UInt64 = 1024
        var table: [(String, UInt64)] = [
            ("bit", 1), ("kbit", k), ("Kbit", k), ("Mbit", k * k), ("mbit", k * k),
            ("Gbit", k * k * k), ("gbit", k * k * k), ("Tbit", k * k * k * k), ("tbit", k * k * k * k),
            ("Kibit", ki), ("Mibit", ki * ki), ("Gibit", ki * ki * ki), ("Tibit", ki * ki * ki * ki),
            ("B", 8), ("kB", 8 * k), ("KB", 8 * k), ("MB", 8 * k * k), ("GB", 8 * k * k * k), ("TB", 8 * k * k * k * k),
            ("KiB", 8 * ki), ("MiB", 8 * ki * ki), ("GiB", 8 * ki * ki * ki), ("TiB", 8 * ki * ki * ki * ki),
        ]
        table.sort { $0.1 < $1.1 }
        return table
    }()

    private static let unitHint = "use bit, kbit, Mbit, Gbit, Tbit (bits), B, kB, MB, GB, TB (bytes) or Kibit/KiB, Mibit/MiB, Gibit/GiB, Tibit/TiB, optionally followed by /s"

    /// Parses a rate such as `100Mbit`, `50Mbit/s` or `12.5MB/s` (see the type's documentation).
    ///
    /// - Throws: `TopologyError` (with no path) naming what is wrong: a missing or unknown unit,
    ///   a malformed number, zero, a fraction of a bit, or a value too large for `UInt64`.
    public static func parse(_ text: String) throws -> Rate {
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else { throw TopologyError(message: "empty rate; write e.g. 100Mbit or 12.5MB/s") }
        let scalars = Array(trimmed.unicodeScalars)
        var i = 0
        var whole = "", fraction = ""
        while i < scalars.count, scalars[i].isASCIIDigit { whole.unicodeScalars.append(scalars[i]); i += 1 }
        if i < scalars.count, scalars[i] == "." {
            i += 1
            while i < scalars.count, scalars[i].isASCIIDigit { fraction.unicodeScalars.append(scalars[i]); i += 1 }
        }
        if trimmed.hasPrefix("-") {
            throw TopologyError(message: "rate \"\(trimmed)\" must be greater than 0")
        }
        guard !whole.isEmpty || !fraction.isEmpty else {
            throw TopologyError(message: "\"\(trimmed)\" is not a rate; write a number and a unit, e.g. 100Mbit or 12.5MB/s")
        }
        let unitText = String(String.UnicodeScalarView(scalars[i...])).trimmingSpaces
        guard !unitText.isEmpty else {
            throw TopologyError(message: "rate \"\(trimmed)\" has no unit; write e.g. \(trimmed)Mbit (bits) or \(trimmed)MB/s (bytes)")
        }
        let unitName = unitText.hasSuffix("/s") ? String(unitText.dropLast(2)) : unitText
        guard let unit = units.first(where: { $0.name == unitName }) else {
            throw TopologyError(message: "unknown unit \"\(unitText)\"; \(unitHint)")
        }
        // Exact decimal arithmetic: value = mantissa / 10^places × unit bits.
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let tooLarge = TopologyError(message: "rate \"\(trimmed)\" is too large")
        guard fraction.count <= 18 else {
            throw TopologyError(message: "rate \"\(trimmed)\" has too many decimal places")
        }
        guard let mantissa = UInt64(whole.isEmpty && fraction.isEmpty ? "0" : (whole + fraction)) else { throw tooLarge }
        var denominator: UInt64 = 1
        for _ in 0..<fraction.count { denominator *= 10 }
        let common = gcd(unit.bits, denominator)
        let (perUnit, reducedDenominator) = (unit.bits / common, denominator / common)
        guard mantissa % reducedDenominator == 0 else {
            throw TopologyError(message: "rate \"\(trimmed)\" is not a whole number of bits per second")
        }
        let (bits, overflow) = (mantissa / reducedDenominator).multipliedReportingOverflow(by: perUnit)
        guard !overflow else { throw tooLarge }
        guard bits > 0 else { throw TopologyError(message: "rate \"\(trimmed)\" must be greater than 0") }
        return Rate(bitsPerSecond: bits)
    }

    private static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return a
    }
}

extension Unicode.Scalar {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension String {
    /// The string without leading and trailing spaces, tabs and newlines (no Foundation needed).
    var trimmingSpaces: String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[first...last])
    }
}
