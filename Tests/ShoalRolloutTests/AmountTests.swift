import Foundation
import Testing

@testable import ShoalRollout

struct AmountTests {
    @Test func parsing() throws {
        #expect(try Amount(parsing: "5") == .count(5))
        #expect(try Amount(parsing: " 10% ") == .percent(10))
        #expect(try Amount(parsing: "12.5%") == .percent(12.5))
        #expect(try Amount(parsing: "0") == .count(0))
        for bad in ["", "%", "abc", "5.5", "ten%", "5 %x", "1e400%"] {
            #expect(throws: RolloutError.self, "\(bad)") { try Amount(parsing: bad) }
        }
    }

    @Test func description() throws {
        #expect(Amount.count(5).description == "5")
        #expect(Amount.percent(10).description == "10%")
        #expect(Amount.percent(12.5).description == "12.5%")
        for text in ["5", "10%", "12.5%", "100%"] { #expect(try Amount(parsing: text).description == text) }
    }

    @Test func rounding() {
        #expect(Amount.percent(50).resolve(of: 3, rounding: .up) == 2)
        #expect(Amount.percent(50).resolve(of: 3, rounding: .down) == 1)
        #expect(Amount.percent(10).resolve(of: 7, rounding: .down) == 0)
        #expect(Amount.percent(10).resolve(of: 7, rounding: .down, atLeast: 1) == 1)
        #expect(Amount.percent(10).resolve(of: 7, rounding: .up) == 1)
        // 10% of 30 is 3.0000000000000004 in floating point: still 3 rounded up.
        #expect(Amount.percent(10).resolve(of: 30, rounding: .up) == 3)
        #expect(Amount.percent(70).resolve(of: 10, rounding: .down) == 7)
        #expect(Amount.percent(100).resolve(of: 1000, rounding: .up) == 1000)
        #expect(Amount.count(5).resolve(of: 3, rounding: .up) == 5)
        #expect(Amount.count(0).resolve(of: 3, rounding: .up, atLeast: 1) == 1)
    }

    @Test func roundingExhaustive() {
        // Against exact integer arithmetic for whole percentages.
        for total in 0...200 {
            for pct in 1...100 {
                let a = Amount.percent(Double(pct))
                #expect(a.resolve(of: total, rounding: .down) == total * pct / 100)
                #expect(a.resolve(of: total, rounding: .up) == (total * pct + 99) / 100)
            }
        }
    }

    @Test func codable() throws {
        let json = #"[5, "10%", "7", 12]"#
        let a = try JSONDecoder().decode([Amount].self, from: Data(json.utf8))
        #expect(a == [.count(5), .percent(10), .count(7), .count(12)])
        let out = String(decoding: try JSONEncoder().encode(a), as: UTF8.self)
        #expect(out == #"[5,"10%",7,12]"#)
        #expect(throws: (any Error).self) { try JSONDecoder().decode([Amount].self, from: Data(#"["x"]"#.utf8)) }
        #expect(throws: (any Error).self) { try JSONDecoder().decode([Amount].self, from: Data("[true]".utf8)) }
    }
}
