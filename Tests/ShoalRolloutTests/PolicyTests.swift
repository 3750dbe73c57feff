import Foundation
import Testing

@testable import ShoalRollout

struct PolicyTests {
    func decode(_ json: String) throws -> RolloutPolicy {
        try JSONDecoder().decode(RolloutPolicy.self, from: Data(json.utf8))
    }

    @Test func defaults() throws {
        let p = RolloutPolicy()
        #expect(p.waves == [.count(1), .count(5), .percent(10), .percent(50), .percent(100)])
        #expect(p.waveScope == .perSite && p.canaryPerSite && p.order == .interleaveSites && p.onFailure == .leaveInStaging)
        #expect(p.maxUnavailablePerSite == .percent(10) && p.maxUnavailablePerRack == .count(1))
        #expect(p.maxConcurrent == 50 && p.failureBudget == .percent(5) && p.minHostsBeforeJudging == 10)
        #expect(p.healthDeadlineSeconds == 3600 && p.soakSeconds == 300 && p.windows.isEmpty)
        #expect(p.agentHealthTimeoutSeconds == nil && p.agentHealthPollSeconds == nil && p.agentBootAttempts == nil)
        try p.validate()
    }

    @Test func missingKeysTakeDefaults() throws {
        #expect(try decode("{}") == RolloutPolicy())
        let p = try decode(#"{"waves": [2, "25%"], "maxConcurrent": 7, "windows": [{"days": ["sat"], "start": "22:00", "durationMinutes": 120}]}"#)
        var expected = RolloutPolicy()
        expected.waves = [.count(2), .percent(25)]
        expected.maxConcurrent = 7
        expected.windows = [MaintenanceWindow(days: [.sat], start: "22:00", durationMinutes: 120)]
        #expect(p == expected)
    }

    @Test func windowDaysMayBeLeftOut() throws {
        let p = try decode(#"{"windows": [{"start": "01:30", "durationMinutes": 30}]}"#)
        #expect(p.windows == [MaintenanceWindow(days: [], start: "01:30", durationMinutes: 30)])
    }

    @Test func roundTrip() throws {
        var p = RolloutPolicy()
        p.waveScope = .fleet
        p.agentBootAttempts = 3
        p.failureBudget = 2
        let back = try decode(String(decoding: try JSONEncoder().encode(p), as: UTF8.self))
        #expect(back == p)
    }

    @Test func unknownKeyIsNamed() throws {
        do {
            _ = try decode(#"{"waves": [1], "maxConcurent": 5}"#)
            Issue.record("decoded a policy with an unknown key")
        } catch let e as RolloutError {
            #expect(e.description.contains("\"maxConcurent\""))
            #expect(e.description.contains("maxConcurrent"))  // lists the known keys
        }
    }

    @Test func wrongTypeIsAnError() {
        #expect(throws: (any Error).self) { try decode(#"{"maxConcurrent": "many"}"#) }
        #expect(throws: (any Error).self) { try decode(#"{"waveScope": "galaxy"}"#) }
    }

    @Test func validateRefuses() {
        let cases: [(String, (inout RolloutPolicy) -> Void, String)] = [
        ("empty ramp", { (p: inout RolloutPolicy) in p.waves = [] }, "waves"),
        ("zero wave", { (p: inout RolloutPolicy) in p.waves = [1, 0] }, "waves[1]"),
        ("negative wave", { (p: inout RolloutPolicy) in p.waves = [-1] }, "waves[0]"),
        ("0%", { (p: inout RolloutPolicy) in p.waves = ["0%"] }, "waves[0]"),
        ("101%", { (p: inout RolloutPolicy) in p.waves = ["101%"] }, "waves[0]"),
        ("site cap 0", { (p: inout RolloutPolicy) in p.maxUnavailablePerSite = 0 }, "maxUnavailablePerSite"),
        ("rack cap 0%", { (p: inout RolloutPolicy) in p.maxUnavailablePerRack = "0%" }, "maxUnavailablePerRack"),
        ("budget -1", { (p: inout RolloutPolicy) in p.failureBudget = -1 }, "failureBudget"),
        ("budget 150%", { (p: inout RolloutPolicy) in p.failureBudget = "150%" }, "failureBudget"),
        ("maxConcurrent 0", { (p: inout RolloutPolicy) in p.maxConcurrent = 0 }, "maxConcurrent"),
        ("min hosts -1", { (p: inout RolloutPolicy) in p.minHostsBeforeJudging = -1 }, "minHostsBeforeJudging"),
        ("deadline 0", { (p: inout RolloutPolicy) in p.healthDeadlineSeconds = 0 }, "healthDeadlineSeconds"),
        ("soak -1", { (p: inout RolloutPolicy) in p.soakSeconds = -1 }, "soakSeconds"),
        ("soak nan", { (p: inout RolloutPolicy) in p.soakSeconds = .nan }, "soakSeconds"),
        ("bad HH:MM", { (p: inout RolloutPolicy) in p.windows = [MaintenanceWindow(start: "24:00", durationMinutes: 60)] }, "windows[0].start"),
        ("bad HH:MM 2", { (p: inout RolloutPolicy) in p.windows = [MaintenanceWindow(start: "9:00", durationMinutes: 60)] }, "windows[0].start"),
        ("zero window", { (p: inout RolloutPolicy) in p.windows = [MaintenanceWindow(start: "09:00", durationMinutes: 0)] }, "windows[0].durationMinutes"),
        ("health timeout", { (p: inout RolloutPolicy) in p.agentHealthTimeoutSeconds = -5 }, "agentHealthTimeoutSeconds"),
        ("boot attempts", { (p: inout RolloutPolicy) in p.agentBootAttempts = 0 }, "agentBootAttempts"),
        ]
        for (name, change, field) in cases {
            var p = RolloutPolicy()
            change(&p)
            do {
                try p.validate()
                Issue.record("\(name): accepted")
            } catch {
                #expect(error.description.hasPrefix("invalid rollout policy: \(field)"), "\(name): \(error)")
            }
        }
    }

    @Test func validateAcceptsEdges() throws {
        var p = RolloutPolicy()
        p.waves = ["100%", "0.5%", 1]
        p.failureBudget = 0
        p.minHostsBeforeJudging = 0
        p.soakSeconds = 0
        p.windows = [MaintenanceWindow(days: [.mon], start: "23:59", durationMinutes: 10_080)]
        try p.validate()
    }

    @Test func specValidation() throws {
        let hosts = makeHosts(sites: ["a"], perSite: 2)
        try makeSpec(hosts).validate()
        func refused(_ s: RolloutSpec, _ text: String) {
            #expect(throws: RolloutError.self) { try s.validate() }
            do { try s.validate() } catch { #expect(error.description.contains(text), "\(error)") }
        }
        var s = makeSpec(hosts)
        s.id = "bad id"
        refused(s, "id \"bad id\"")
        s.id = String(repeating: "x", count: 65)
        refused(s, "1…64")
        s.id = ""
        refused(s, "1…64")
        s = makeSpec(hosts)
        s.targetBundle = nil
        refused(s, "targetBundle")
        s.kind = .maintenance
        refused(s, "maintenanceBundle")
        s.maintenanceBundle = "memtest"
        try s.validate()
        s = makeSpec([])
        refused(s, "no hosts")
        s = makeSpec(hosts + [hosts[0]])
        refused(s, "a1 is listed twice")
        s = makeSpec(hosts) { $0.maxConcurrent = 0 }
        refused(s, "maxConcurrent")
        s = makeSpec(hosts)
        s.id = "Rollout_2026.11-22"
        try s.validate()
        #expect(throws: RolloutError.self) { _ = try RolloutEngine.create(makeSpec([]), now: 0) }
    }
}
