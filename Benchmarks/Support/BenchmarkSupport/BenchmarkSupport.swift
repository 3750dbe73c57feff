import Benchmark
import Foundation
import Glibc

extension BenchmarkMetric {
    /// Bytes processed per second of the measured section, in MiB/s (larger is better).
    ///
    /// package-benchmark's own `.throughput` counts iterations per second; this custom metric
    /// turns that into a byte rate using the byte count each benchmark states in its name.
    public static let mibPerSecond: BenchmarkMetric = .custom("MiB/s", polarity: .prefersLarger, useScalingFactor: false)
}

/// A monotonic stopwatch (CLOCK_MONOTONIC), for the byte-rate metric.
public struct Stopwatch {
    private let start: UInt64

    public init() { start = Stopwatch.now() }

    public var elapsedNanoseconds: UInt64 { Stopwatch.now() - start }

    private static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

extension Benchmark {
    /// Records `bytes` processed in the time since `stopwatch` started as a `.mibPerSecond` sample.
    public func recordBytes(_ bytes: Int, since stopwatch: Stopwatch) {
        let seconds: Double = Double(max(1, stopwatch.elapsedNanoseconds)) / 1e9
        let mebibytes: Double = Double(bytes) / 1_048_576
        let mibPerSecond: Double = mebibytes / seconds
        measurement(.mibPerSecond, Int(mibPerSecond.rounded()))
    }
}

public enum BenchmarkData {
    public static let mebibyte = 1 << 20

    /// Deterministic incompressible bytes (SplitMix64).
    public static func randomBytes(count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { b in
            var i = 0
            while i < count {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                z ^= z >> 31
                withUnsafeBytes(of: z.littleEndian) { w in
                    for j in 0..<min(8, count - i) { b[i + j] = w[j] }
                }
                i += 8
            }
        }
        return out
    }

    /// A fresh directory under /tmp (mkdtemp), named after `label`.
    public static func makeTemporaryDirectory(_ label: String) -> String {
        var template = Array("/tmp/shoal-bench-\(label)-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { fatalError("mkdtemp failed: errno \(errno)") }
        return String(cString: p)
    }

    /// Removes `path` and everything under it, ignoring errors.
    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Reads a whole file into memory.
    public static func readFile(_ path: String) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { fatalError("cannot read \(path)") }
        return [UInt8](data)
    }
}
