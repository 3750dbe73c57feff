// SHA-256 and zero-run detection: the per-chunk CPU work every peer does on 4 MiB regions.
import Benchmark
import BenchmarkSupport
import ShoalCrypto
import ShoalStorage

let benchmarks: @Sendable () -> Void = {
    let regionSize = 4 * BenchmarkData.mebibyte
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mibPerSecond, .mallocCountTotal],
        warmupIterations: 5,
        maxDuration: .seconds(2),
        maxIterations: 2_000
    )

    // Incompressible bytes: SHA-256 cost does not depend on content.
    let random = BenchmarkData.randomBytes(count: regionSize, seed: 1)

    // Half zero: 64 KiB data blocks alternating with 64 KiB zero blocks, split at the
    // StagingWriter's default zero-detection granularity (64 KiB), so 64 runs come out.
    let zeroBlock = 64 << 10
    var halfZero = [UInt8](repeating: 0, count: regionSize)
    for block in stride(from: 0, to: regionSize, by: 2 * zeroBlock) {
        halfZero.replaceSubrange(block..<block + zeroBlock, with: random[block..<block + zeroBlock])
    }
    let expectedRuns = regionSize / zeroBlock
    let halfZeroRuns = halfZero.withUnsafeBytes { ZeroRuns.split($0, blockSize: zeroBlock) }
    precondition(halfZeroRuns.count == expectedRuns, "half-zero buffer split into \(halfZeroRuns.count) runs, expected \(expectedRuns)")

    Benchmark("SHA256.hash 4MiB", configuration: configuration) { benchmark in
        random.withUnsafeBytes { buffer in
            let stopwatch = Stopwatch()
            blackHole(SHA256.hash(buffer))
            benchmark.recordBytes(regionSize, since: stopwatch)
        }
    }

    // The hasher thread's path: the whole-image digest, fed region by region.
    let hasher = SHA256Hasher()
    Benchmark("SHA256Hasher 4MiB (64KiB updates)", configuration: configuration) { benchmark in
        random.withUnsafeBytes { buffer in
            let stopwatch = Stopwatch()
            var offset = 0
            while offset < regionSize {
                hasher.update(UnsafeRawBufferPointer(rebasing: buffer[offset..<offset + zeroBlock]))
                offset += zeroBlock
            }
            blackHole(hasher.finalize())
            benchmark.recordBytes(regionSize, since: stopwatch)
        }
    }

    Benchmark("ZeroRuns.split 4MiB half-zero (64KiB blocks)", configuration: configuration) { benchmark in
        halfZero.withUnsafeBytes { buffer in
            let stopwatch = Stopwatch()
            blackHole(ZeroRuns.split(buffer, blockSize: zeroBlock))
            benchmark.recordBytes(regionSize, since: stopwatch)
        }
    }
}
