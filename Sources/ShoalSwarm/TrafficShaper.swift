/// A token bucket: `rate` bytes per second, at most `burst` bytes saved up. Time is a value in
/// seconds from any fixed origin, so the logic is pure and testable.
///
/// Spending may take the balance below zero (a 256 KiB block is sent whole as soon as there is
/// any credit); the debt is paid back before the next spend, so the long-run rate is exact.
public struct TokenBucket: Hashable, Sendable {
    public let rate: Double
    public let burst: Double
    public private(set) var tokens: Double
    private var last: Double

    /// A full bucket of `bitsPerSecond`; `burst` defaults to 20 ms of traffic, at least 16 KiB.
    public init(bitsPerSecond: UInt64, burst: Double? = nil, now: Double) {
        rate = max(1, Double(bitsPerSecond) / 8)
        self.burst = burst ?? max(16 * 1024, rate * 0.02)
        tokens = self.burst
        last = now
    }

    mutating func refill(_ now: Double) {
        guard now > last else { return }
        tokens = min(burst, tokens + (now - last) * rate)
        last = now
    }

    /// Seconds until a spend is allowed (0: now).
    public mutating func delay(now: Double) -> Double {
        refill(now)
        return tokens > 0 ? 0 : (-tokens + 1) / rate
    }

    public mutating func spend(_ bytes: Int, now: Double) {
        refill(now)
        tokens -= Double(bytes)
    }
}

/// A machine's caps as token buckets: all traffic each way, and the part that crosses its site's
/// WAN link. A transfer is allowed when every bucket it passes through has credit.
public struct TrafficShaper: Hashable, Sendable {
    public var up: TokenBucket?
    public var down: TokenBucket?
    public var wanUp: TokenBucket?
    public var wanDown: TokenBucket?

    /// No caps.
    public init() {}

    public init(up: UInt64?, down: UInt64?, wanUp: UInt64?, wanDown: UInt64?, now: Double) {
        self.up = up.map { TokenBucket(bitsPerSecond: $0, now: now) }
        self.down = down.map { TokenBucket(bitsPerSecond: $0, now: now) }
        self.wanUp = wanUp.map { TokenBucket(bitsPerSecond: $0, now: now) }
        self.wanDown = wanDown.map { TokenBucket(bitsPerSecond: $0, now: now) }
    }

    public var isUnlimited: Bool { up == nil && down == nil && wanUp == nil && wanDown == nil }

    /// Seconds to wait before sending to a peer (0: now).
    public mutating func sendDelay(offSite: Bool, now: Double) -> Double {
        max(up?.delay(now: now) ?? 0, offSite ? (wanUp?.delay(now: now) ?? 0) : 0)
    }

    public mutating func sent(_ bytes: Int, offSite: Bool, now: Double) {
        up?.spend(bytes, now: now)
        if offSite { wanUp?.spend(bytes, now: now) }
    }

    /// Seconds to wait before asking a peer for more (0: now). Receiving is paced by requesting.
    public mutating func receiveDelay(offSite: Bool, now: Double) -> Double {
        max(down?.delay(now: now) ?? 0, offSite ? (wanDown?.delay(now: now) ?? 0) : 0)
    }

    public mutating func requested(_ bytes: Int, offSite: Bool, now: Double) {
        down?.spend(bytes, now: now)
        if offSite { wanDown?.spend(bytes, now: now) }
    }
}
