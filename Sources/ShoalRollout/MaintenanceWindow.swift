/// A day of the week (UTC).
public enum Weekday: String, Codable, Hashable, Sendable, CaseIterable {
    case mon, tue, wed, thu, fri, sat, sun

    /// The weekday of a day counted from 1970-01-01 (a Thursday).
    static func of(day: Int) -> Weekday {
        let i = ((day + 3) % 7 + 7) % 7  // 0 = Monday
        return allCases[i]
    }
}

/// A recurring stretch of time in which new waves may start.
///
/// The window opens at `start` (UTC, `"HH:MM"`) on each of `days` (every day when empty) and stays
/// open `durationMinutes`; it may run past midnight into the next day(s). `days` names the day the
/// window opens: `fri 22:00 for 240 min` covers Saturday 00:00–02:00 too.
///
/// ```swift
/// let w = MaintenanceWindow(days: [.sat, .sun], start: "22:00", durationMinutes: 360)
/// w.contains(unixTime)
/// ```
public struct MaintenanceWindow: Codable, Hashable, Sendable {
    public var days: [Weekday]
    public var start: String
    public var durationMinutes: Int

    public init(days: [Weekday] = [], start: String, durationMinutes: Int) {
        self.days = days
        self.start = start
        self.durationMinutes = durationMinutes
    }

    private enum CodingKeys: String, CodingKey {
        case days, start, durationMinutes
    }

    /// `days` may be left out (every day).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        days = try c.decodeIfPresent([Weekday].self, forKey: .days) ?? []
        start = try c.decode(String.self, forKey: .start)
        durationMinutes = try c.decode(Int.self, forKey: .durationMinutes)
    }

    /// Minutes after midnight of `start`, or nil when it is not `HH:MM` with HH 00–23, MM 00–59.
    public var startMinute: Int? {
        let parts = start.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].count == 2, parts[1].count == 2,
            parts.allSatisfy({ $0.allSatisfy { $0.isASCII && $0.isNumber } }),
            let h = Int(parts[0]), let m = Int(parts[1]), (0..<24).contains(h), (0..<60).contains(m)
        else { return nil }
        return h * 60 + m
    }

    /// True when `unixTime` (seconds since 1970-01-01 UTC) falls inside an opening of this window.
    /// An opening covers [open, open + duration).
    public func contains(_ unixTime: Double) -> Bool {
        guard let startMinute, durationMinutes > 0, unixTime.isFinite else { return false }
        let day = Int((unixTime / 86_400).rounded(.down))
        // An opening that started up to `durationMinutes` ago may still be open.
        let lookBack = (startMinute + durationMinutes - 1) / 1_440
        for back in 0...lookBack {
            let d = day - back
            if !days.isEmpty && !days.contains(Weekday.of(day: d)) { continue }
            let open = Double(d) * 86_400 + Double(startMinute) * 60
            if unixTime >= open && unixTime < open + Double(durationMinutes) * 60 { return true }
        }
        return false
    }

    func validate(_ field: String) throws(RolloutError) {
        guard startMinute != nil else {
            throw .invalidPolicy("\(field).start \"\(start)\" is not a UTC time HH:MM (00:00–23:59)")
        }
        guard (1...10_080).contains(durationMinutes) else {
            throw .invalidPolicy("\(field).durationMinutes \(durationMinutes) must be 1…10080 (one week)")
        }
    }
}
