// zstd on one 4 MiB region of disk-image-like data (SampleImage), at level 3 (the default).
import Benchmark
import BenchmarkSupport
import ShoalBundle
import ShoalStorage

let benchmarks: @Sendable () -> Void = {
    let regionSize = 4 * BenchmarkData.mebibyte
    let level: Int32 = 3
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mibPerSecond, .mallocCountTotal],
        warmupIterations: 3,
        maxDuration: .seconds(3),
        maxIterations: 1_000
    )

    // One region of the deterministic sample image (zeros, text, structured binary and random
    // runs in 64 KiB blocks), produced by the same generator the demo and tests use.
    let directory = BenchmarkData.makeTemporaryDirectory("zstd")
    let imagePath = directory + "/region.img"
    do {
        try SampleImage.write(to: imagePath, size: UInt64(regionSize))
    } catch {
        fatalError("SampleImage.write: \(error)")
    }
    let region = BenchmarkData.readFile(imagePath)
    BenchmarkData.removeTree(directory)
    precondition(region.count == regionSize)

    let frame = region.withUnsafeBytes { ZstdCompressor(level: level).compress($0) }

    let compressor = ZstdCompressor(level: level)
    Benchmark("zstd compress 4MiB sample region (level 3)", configuration: configuration) { benchmark in
        region.withUnsafeBytes { input in
            let stopwatch = Stopwatch()
            blackHole(compressor.compress(input))
            benchmark.recordBytes(regionSize, since: stopwatch)
        }
    }

    let decoder = ZstdDecoder(maxWindowBytes: regionSize)
    let output = AlignedBuffer(capacity: regionSize)
    // Check once that the frame decodes back to the region.
    do {
        try frame.withUnsafeBytes { try decoder.decode(frame: $0, into: output.bytes(count: regionSize)) }
    } catch {
        fatalError("zstd decode failed: \(error)")
    }
    precondition(region.withUnsafeBytes { $0.elementsEqual(UnsafeRawBufferPointer(output.bytes(count: regionSize))) })

    Benchmark("zstd decode 4MiB sample region (level 3) into AlignedBuffer", configuration: configuration) { benchmark in
        frame.withUnsafeBytes { input in
            let stopwatch = Stopwatch()
            do {
                try decoder.decode(frame: input, into: output.bytes(count: regionSize))
            } catch {
                benchmark.error("zstd decode failed: \(error)")
            }
            benchmark.recordBytes(regionSize, since: stopwatch)
        }
        blackHole(output.pointer)
    }
}
