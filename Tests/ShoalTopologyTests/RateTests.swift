import ShoalTopology
import Testing

struct RateTests {
    @Test(arguments: [
        ("100Mbit", 100_000_000), ("50Mbit/s", 50_000_000), ("1Gbit", 1_000_000_000), ("2.5Gbit", 2_500_000_000),
        ("800kbit", 800_000), ("12.5MB/s", 100_000_000), ("100 Mbit/s", 100_000_000), ("  7bit  ", 7),
        (".5Gbit", 500_000_000), ("3.Mbit", 3_000_000), ("1.000Mbit", 1_000_000), ("0.001Gbit", 1_000_000),
        ("007kbit", 7_000), ("0.125B", 1), ("1.5KiB/s", 12_288), ("18446744073709551615bit", UInt64.max),
    ] as [(String, UInt64)])
    func parsesExamples(text: String, bits: UInt64) throws {
        #expect(try Rate.parse(text).bitsPerSecond == bits)
    }

    /// Every unit, bare and with `/s`, at 1 and at 3.
    @Test func everyUnitHasItsValue() throws {
        let k: UInt64 = 1000, ki: UInt64 = 1024
        let expected: [String: UInt64] = [
            "bit": 1, "kbit": k, "Kbit": k, "Mbit": k * k, "mbit": k * k, "Gbit": k * k * k, "gbit": k * k * k,
            "Tbit": k * k * k * k, "tbit": k * k * k * k,
            "Kibit": ki, "Mibit": ki * ki, "Gibit": ki * ki * ki, "Tibit": ki * ki * ki * ki,
            "B": 8, "kB": 8 * k, "KB": 8 * k, "MB": 8 * k * k, "GB": 8 * k * k * k, "TB": 8 * k * k * k * k,
            "KiB": 8 * ki, "MiB": 8 * ki * ki, "GiB": 8 * ki * ki * ki, "TiB": 8 * ki * ki * ki * ki,
        ]
        #expect(Set(Rate.units.map(\.name)) == Set(expected.keys))
        for (unit, bits) in expected {
            #expect(try Rate.parse("1\(unit)").bitsPerSecond == bits, "\(unit)")
            #expect(try Rate.parse("1\(unit)/s").bitsPerSecond == bits, "\(unit)/s")
            #expect(try Rate.parse("3 \(unit)/s").bitsPerSecond == 3 * bits, "3 \(unit)/s")
        }
    }

    @Test(arguments: [
        ("Mbps", "is not a rate"), ("100Mbps", "unknown unit \"Mbps\""), ("1MBps", "unknown unit \"MBps\""),
        ("1kbps", "unknown unit \"kbps\""), ("1Mb", "unknown unit \"Mb\""), ("1mb", "unknown unit \"mb\""),
        ("1MBit", "unknown unit \"MBit\""), ("1mB", "unknown unit \"mB\""), ("1 bits", "unknown unit \"bits\""),
        ("1Mbit/sec", "unknown unit \"Mbit/sec\""), ("1e6bit", "unknown unit \"e6bit\""), ("1.2.3Mbit", "unknown unit \".3Mbit\""),
        ("100", "has no unit"), ("12.5", "has no unit"), ("", "empty rate"), ("   ", "empty rate"),
        ("Mbit", "is not a rate"), ("fast", "is not a rate"), ("+5Mbit", "is not a rate"), ("./s", "is not a rate"),
        ("0Mbit", "must be greater than 0"), ("0.0Gbit", "must be greater than 0"), ("-5Mbit", "must be greater than 0"),
        ("0.5bit", "not a whole number of bits per second"), ("0.1KiB/s", "not a whole number of bits per second"),
        ("1.0000000001kbit", "not a whole number of bits per second"),
        ("18446744073709551616bit", "too large"), ("3000000TB", "too large"), ("99999999999999999999999Mbit", "too large"),
        ("1.0000000000000000001Gbit", "too many decimal places"),
    ])
    func refusesBadRates(text: String, message: String) {
        do {
            let rate = try Rate.parse(text)
            Issue.record("\"\(text)\" parsed as \(rate)")
        } catch let error as TopologyError {
            #expect(error.message.contains(message), "\(error)")
            #expect(error.path == nil)
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test func unknownUnitErrorListsTheUnits() {
        #expect(throws: TopologyError.self) { try Rate.parse("10Mbps") }
        let error = #expect(throws: TopologyError.self) { try Rate.parse("10Mbps") }
        #expect(error?.description.hasPrefix("unknown unit \"Mbps\"; use bit, kbit, Mbit") == true)
    }

    @Test(arguments: [
        (100_000_000, "100Mbit/s"), (2_500_000_000, "2.5Gbit/s"), (800_000, "800kbit/s"), (999, "999bit/s"),
        (1, "1bit/s"), (1_000, "1kbit/s"), (1_000_001, "1.000001Mbit/s"), (12_300_000_000_000, "12.3Tbit/s"),
        (UInt64.max, "18446744.073709551615Tbit/s"),
    ] as [(UInt64, String)])
    func describesExactlyAndRoundTrips(bits: UInt64, text: String) throws {
        let rate = Rate(bitsPerSecond: bits)
        #expect(rate.description == text)
        #expect(try Rate.parse(rate.description) == rate)
    }

    @Test func helpers() {
        #expect(Rate.mbit(50).bitsPerSecond == 50_000_000)
        #expect(Rate.mbit(100).bytesPerSecond == 12_500_000)
        #expect(Rate.mbit(1) < Rate.mbit(2))
    }
}
