import Testing

@testable import ShoalRollout

struct WindowTests {
    // 2026-11-20 is a Friday; 00:00 UTC that day:
    static let friday: Double = 1_795_132_800

    func at(_ dayOffset: Int, _ h: Int, _ m: Int) -> Double { Self.friday + Double(dayOffset) * 86_400 + Double(h * 3600 + m * 60) }

    @Test func weekdayOfKnownDates() {
        #expect(Weekday.of(day: 0) == .thu)  // 1970-01-01
        #expect(Weekday.of(day: Int(Self.friday / 86_400)) == .fri)
        #expect(Weekday.of(day: -1) == .wed)
        #expect(formatUTC(Self.friday + 3723) == "2026-11-20T01:02:03Z")
        #expect(formatUTC(0) == "1970-01-01T00:00:00Z")
        #expect(formatUTC(951_825_600) == "2000-02-29T12:00:00Z")
    }

    @Test func insideAndOutside() {
        let w = MaintenanceWindow(start: "09:30", durationMinutes: 60)
        #expect(!w.contains(at(0, 9, 29)))
        #expect(w.contains(at(0, 9, 30)))
        #expect(w.contains(at(0, 10, 29)))
        #expect(!w.contains(at(0, 10, 30)))  // the end is excluded
        #expect(w.contains(at(3, 10, 0)))  // every day when days is empty
    }

    @Test func crossingMidnight() {
        let w = MaintenanceWindow(days: [.fri], start: "22:00", durationMinutes: 240)
        #expect(!w.contains(at(0, 21, 59)))
        #expect(w.contains(at(0, 22, 0)))
        #expect(w.contains(at(0, 23, 59)))
        #expect(w.contains(at(1, 0, 0)))  // Saturday morning belongs to Friday's opening
        #expect(w.contains(at(1, 1, 59)))
        #expect(!w.contains(at(1, 2, 0)))
        #expect(!w.contains(at(1, 22, 30)))  // Saturday itself has no opening
        #expect(!w.contains(at(0, 1, 0)))  // Friday 01:00 would be Thursday's opening
    }

    @Test func weekdays() {
        let w = MaintenanceWindow(days: [.sat, .sun], start: "00:00", durationMinutes: 1_440)
        let expected: [Bool] = [false, true, true, false, false, false, false]  // fri, sat, sun, mon, …
        for d in 0..<7 { #expect(w.contains(at(d, 12, 0)) == expected[d], "day \(d)") }
    }

    @Test func multiDayWindow() {
        let w = MaintenanceWindow(days: [.fri], start: "18:00", durationMinutes: 3 * 1_440)
        #expect(w.contains(at(3, 17, 59)))  // Monday
        #expect(!w.contains(at(3, 18, 0)))
    }

    @Test func startParsing() {
        #expect(MaintenanceWindow(start: "00:00", durationMinutes: 1).startMinute == 0)
        #expect(MaintenanceWindow(start: "23:59", durationMinutes: 1).startMinute == 1_439)
        for bad in ["24:00", "12:60", "1:00", "12:5", "ab:cd", "12-00", "", "+1:00", "12:00:00"] {
            #expect(MaintenanceWindow(start: bad, durationMinutes: 1).startMinute == nil, "\(bad)")
        }
    }

    @Test func newWavesOnlyInsideAWindow() throws {
        var f = try Fleet(makeSpec(makeHosts(sites: ["a"], perSite: 2)) {
            open(&$0)
            $0.windows = [MaintenanceWindow(start: "09:00", durationMinutes: 60)]
        })
        f.now = at(0, 8, 0)
        #expect(f.advance().isEmpty)
        #expect(f.r.waves.isEmpty)
        f.now = at(0, 9, 0)
        #expect(f.advance().count == 1)
    }
}
