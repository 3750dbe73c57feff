/// A number of hosts, either absolute (`5`) or relative to a total (`"10%"`).
///
/// In JSON an amount is a number (`5`) or a string (`"5"`, `"10%"`); it is written back as a
/// number for a count and as a string for a percentage.
///
/// ```swift
/// let a = try Amount(parsing: "10%")
/// a.resolve(of: 7, rounding: .down, atLeast: 1)   // 1
/// ```
public enum Amount: Codable, Hashable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral,
    ExpressibleByStringLiteral
{
    case count(Int)
    case percent(Double)

    /// How a percentage that does not come out whole is turned into a host count.
    public enum Rounding: String, Codable, Hashable, Sendable {
        case up, down
    }

    /// Reads `"5"` or `"10%"` (surrounding spaces allowed).
    ///
    /// - Throws: ``RolloutError/invalidAmount(_:)`` when the text is neither a whole number nor a
    ///   number followed by `%`. Ranges are checked by the policy's `validate()`.
    public init(parsing text: String) throws(RolloutError) {
        let t = text.trimmingSpaces
        if t.hasSuffix("%") {
            let number = String(t.dropLast()).trimmingSpaces
            guard let p = Double(number), p.isFinite else {
                throw .invalidAmount("\"\(text)\" is not a percentage like \"10%\"")
            }
            self = .percent(p)
        } else if let n = Int(t) {
            self = .count(n)
        } else {
            throw .invalidAmount("\"\(text)\" is neither a host count like 5 nor a percentage like \"10%\"")
        }
    }

    public init(integerLiteral value: Int) { self = .count(value) }

    /// For literals in code only; an unreadable literal is a programming error.
    public init(stringLiteral value: String) {
        do { self = try Amount(parsing: value) } catch { preconditionFailure("\(error)") }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) {
            self = .count(n)
        } else if let s = try? c.decode(String.self) {
            self = try Amount(parsing: s)
        } else {
            throw RolloutError.invalidAmount("expected a host count like 5 or a percentage like \"10%\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .count(let n): try c.encode(n)
        case .percent: try c.encode(description)
        }
    }

    /// `5` or `10%` (`12.5%` when the percentage is not whole).
    public var description: String {
        switch self {
        case .count(let n): return "\(n)"
        case .percent(let p):
            if p == p.rounded(), abs(p) < 1e15 { return "\(Int(p))%" }
            return "\(p)%"
        }
    }

    /// The number of hosts this amount stands for out of `total`.
    ///
    /// A count is taken as it is; a percentage of `total` is rounded as asked. The result is never
    /// below `atLeast`.
    ///
    /// - Parameters:
    ///   - total: the hosts the percentage is taken of.
    ///   - rounding: `.up` or `.down` for a percentage that does not come out whole.
    ///   - atLeast: the smallest result.
    /// - Returns: the host count.
    public func resolve(of total: Int, rounding: Rounding, atLeast: Int = 0) -> Int {
        let n: Int
        switch self {
        case .count(let c): n = c
        case .percent(let p):
            // 10% of 30 is 3.0000000000000004 in binary floating point; a small tolerance keeps
            // whole results whole in both directions.
            let x = Double(total) * p / 100
            switch rounding {
            case .up: n = Int((x - 1e-9).rounded(.up))
            case .down: n = Int((x + 1e-9).rounded(.down))
            }
        }
        return max(n, atLeast)
    }

    /// Range check shared by the policy fields; `zeroAllowed` for the failure budget.
    func check(_ field: String, zeroAllowed: Bool = false) throws(RolloutError) {
        switch self {
        case .count(let n):
            if n < 0 || (n == 0 && !zeroAllowed) {
                throw .invalidPolicy("\(field): \(n) must be \(zeroAllowed ? "0 or more" : "at least 1") host\(zeroAllowed ? "s" : "")")
            }
        case .percent(let p):
            let ok = p.isFinite && p <= 100 && (zeroAllowed ? p >= 0 : p > 0)
            if !ok {
                throw .invalidPolicy("\(field): \(description) must be a percentage in \(zeroAllowed ? "[0, 100]" : "(0, 100]")")
            }
        }
    }
}

extension String {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\n" { s = s.dropLast() }
        return String(s)
    }
}
