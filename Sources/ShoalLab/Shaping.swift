import ShoalTopology

/// How a link end is shaped: an HTB root qdisc with one class at the link's rate (`rate` =
/// `ceil`), and a leaf queue under it.
///
/// ```
/// tc qdisc add dev X root handle 1: htb default 1
/// tc class add dev X parent 1: classid 1:1 htb rate R ceil R burst B cburst B quantum Q
/// tc qdisc add dev X parent 1:1 handle 10: bfifo limit L
/// ```
public struct Shaping: Sendable, Hashable {
    /// The queue under the HTB class.
    public enum LeafQueue: Sendable, Hashable {
        /// A byte-limited FIFO holding at most `maxDelay` seconds of traffic at the link's rate
        /// (at least 256 KiB): bounded queueing delay, enough buffer for TCP at full rate.
        case bfifo(maxDelay: Double)
        /// A packet-limited FIFO of `limit` packets.
        case pfifo(limit: Int)
        /// HTB's default leaf (a `pfifo` as long as the device's `txqueuelen`).
        case htbDefault
    }

    /// The shaped rate in bits per second.
    public var rate: Rate
    /// The leaf queue.
    public var leaf: LeafQueue

    /// A shaping of `rate` with the given leaf queue.
    public init(rate: Rate, leaf: LeafQueue = .bfifo(maxDelay: 0.1)) {
        self.rate = rate
        self.leaf = leaf
    }

    /// The rate in bytes per second (what HTB counts in).
    public var bytesPerSecond: UInt64 { rate.bitsPerSecond / 8 }

    /// The HTB burst and cburst in bytes: two milliseconds at the rate, at least 1600 bytes (one
    /// full-size frame and change), so the class never throttles below one packet.
    public var burstBytes: UInt64 { max(1600, rate.bitsPerSecond / 8 / 500) }

    /// The HTB quantum in bytes: a tenth of a second's bytes clamped to 1600 … 200 000 (which
    /// keeps `tc` from warning that the default quantum is too big or too small).
    public var quantumBytes: UInt64 { min(200_000, max(1600, bytesPerSecond / 10)) }

    /// The `bfifo` limit in bytes for `.bfifo(maxDelay:)`.
    public func fifoLimitBytes(maxDelay: Double) -> UInt64 {
        let bytes = Double(bytesPerSecond) * max(0, maxDelay)
        return UInt64(min(Double(UInt32.max), max(262_144, bytes)))
    }

    /// The `tc` argument lists that install this shaping on `interface` in `namespace`.
    public func commands(namespace: String, interface: String) -> [[String]] {
        let dev = ["-n", namespace]
        var commands: [[String]] = [
            dev + ["qdisc", "add", "dev", interface, "root", "handle", "1:", "htb", "default", "1"],
            dev + ["class", "add", "dev", interface, "parent", "1:", "classid", "1:1", "htb",
                   "rate", "\(rate.bitsPerSecond)bit", "ceil", "\(rate.bitsPerSecond)bit",
                   "burst", "\(burstBytes)b", "cburst", "\(burstBytes)b", "quantum", "\(quantumBytes)"],
        ]
        switch leaf {
        case .bfifo(let maxDelay):
            commands.append(dev + ["qdisc", "add", "dev", interface, "parent", "1:1", "handle", "10:", "bfifo",
                                   "limit", "\(fifoLimitBytes(maxDelay: maxDelay))"])
        case .pfifo(let limit):
            commands.append(dev + ["qdisc", "add", "dev", interface, "parent", "1:1", "handle", "10:", "pfifo",
                                   "limit", "\(max(1, limit))"])
        case .htbDefault:
            break
        }
        return commands
    }

    /// The rate and ceil of class `1:1` in `tc class show` output, in bits per second, or `nil`
    /// if the output has no such HTB class. `tc` prints rates such as `20Mbit`, `1Gbit`,
    /// `123456Kbit`, `800bit` (decimal units; `Kibit`-style with `-iec`).
    public static func parseClass(_ output: String) -> (rate: UInt64, ceil: UInt64)? {
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ").map(String.init)
            guard words.count > 2, words[0] == "class", words[1] == "htb", words[2] == "1:1" else { continue }
            func value(after key: String) -> UInt64? {
                guard let index = words.firstIndex(of: key), index + 1 < words.count else { return nil }
                return parseTCRate(words[index + 1])
            }
            if let rate = value(after: "rate"), let ceil = value(after: "ceil") { return (rate, ceil) }
        }
        return nil
    }

    /// A rate as `tc` prints it (`20Mbit`, `1.5Gbit`, `800bit`, `10Mibit`), in bits per second.
    public static func parseTCRate(_ text: String) -> UInt64? {
        guard text.hasSuffix("bit") else { return nil }
        var body = String(text.dropLast(3))
        var base: Double = 1000
        if body.hasSuffix("i") { base = 1024; body.removeLast() }
        var scale: Double = 1
        if let last = body.last, let power = ["K": 1, "k": 1, "M": 2, "m": 2, "G": 3, "g": 3, "T": 4, "t": 4][last] {
            scale = pow(base, Double(power))
            body.removeLast()
        }
        guard let number = Double(body), number >= 0 else { return nil }
        return UInt64((number * scale).rounded())
    }

    /// Whether `actual` (read back from `tc`) is this shaping's rate, allowing for `tc`'s
    /// byte-per-second storage and its printing, which drops digits (`123456789bit` prints as
    /// `123456Kbit`): within 0.2 % or 8 bit/s.
    public func matches(_ actual: UInt64) -> Bool {
        let expected = Double(rate.bitsPerSecond)
        return abs(Double(actual) - expected) <= max(8, expected * 0.002)
    }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    for _ in 0..<Int(exponent) { result *= base }
    return result
}
