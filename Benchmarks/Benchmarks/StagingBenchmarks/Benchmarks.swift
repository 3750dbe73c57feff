// The apply path end to end on a 64 MiB sample image: decode, zero detection, io_uring writes
// (O_DIRECT where the file system allows), fdatasync, whole-image SHA-256 and the resume log.
//
// The bundle is built once per benchmark (in its setup, outside any measurement) into a
// directory under /tmp; every iteration writes a fresh target file next to it.
import Benchmark
import BenchmarkSupport
import Glibc
import ShoalBundle
import ShoalCrypto
import ShoalStorage

/// A 64 MiB sample image turned into a bundle under /tmp, with its stored frames in memory.
final class StagingFixture {
    static let imageSize = 64 * BenchmarkData.mebibyte

    private(set) var directory = ""
    private(set) var bundle: BundleFile!
    /// Stored (compressed) frames, read once so the writer benchmark does not measure bundle
    /// reads (left empty for the apply benchmark, which reads the bundle file itself).
    private(set) var storedFrames: [[UInt8]] = []
    private let keepFramesInMemory: Bool

    init(keepFramesInMemory: Bool) { self.keepFramesInMemory = keepFramesInMemory }

    var targetPath: String { directory + "/target.img" }
    var resumePath: String { StagingTarget.defaultResumePath(forTarget: targetPath, isBlockDevice: false) }

    func build() throws {
        remove()
        directory = BenchmarkData.makeTemporaryDirectory("staging")
        let imagePath = directory + "/sample.img"
        let bundlePath = directory + "/sample.shoal"
        try SampleImage.write(to: imagePath, size: UInt64(Self.imageSize))
        var options = BundleCreator.Options(name: "benchmark-64MiB")
        options.createdAt = 0
        _ = try BundleCreator(options: options).create(image: imagePath, output: bundlePath)
        unlink(imagePath)
        let bundle = try BundleFile(path: bundlePath)
        if keepFramesInMemory {
            storedFrames = try (0..<bundle.manifest.frames.count).map { try bundle.readFrame($0) }
        }
        self.bundle = bundle
    }

    /// Deletes the previous iteration's target and resume log; returns the target path.
    func freshTarget() -> String {
        unlink(targetPath)
        unlink(resumePath)
        return targetPath
    }

    func remove() {
        guard !directory.isEmpty else { return }
        BenchmarkData.removeTree(directory)
        directory = ""
        bundle = nil
        storedFrames = []
    }
}

/// Feeds every stored frame, in order from this one thread, to a new StagingWriter and waits
/// for it to finish (the writer's own I/O and hasher threads do the rest). The writer is released
/// on return, as it is inside `BundleApplier.apply`.
func writeAll(_ fixture: StagingFixture, target: StagingTarget, resumeLog: ResumeLog) throws -> StagingWriter.Report {
    let writer = try StagingWriter(bundle: fixture.bundle.signedManifest, target: target, resumeLog: resumeLog, key: nil)
    for (index, stored) in fixture.storedFrames.enumerated() {
        try writer.write(chunk: index, stored: stored)
    }
    return try writer.finish()
}

let benchmarks: @Sendable () -> Void = {
    let imageSize = StagingFixture.imageSize
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mibPerSecond, .peakMemoryResident, .mallocCountTotal],
        timeUnits: .milliseconds,
        warmupIterations: 1,
        maxDuration: .seconds(8),
        maxIterations: 25
    )

    let writerFixture = StagingFixture(keepFramesInMemory: true)
    Benchmark("StagingWriter write+finish 64MiB (io_uring)", configuration: configuration) { benchmark in
        do {
            let fixture = writerFixture
            let path = fixture.freshTarget()
            let manifest = fixture.bundle.manifest
            let target = try StagingTarget(path: path, imageSize: manifest.imageSize, useDirectIO: true)
            let log = try ResumeLog(
                path: fixture.resumePath, bundleID: fixture.bundle.bundleID,
                frameCount: manifest.frames.count, targetIdentity: target.identity)

            benchmark.startMeasurement()
            let stopwatch = Stopwatch()
            let report = try writeAll(fixture, target: target, resumeLog: log)
            benchmark.stopMeasurement()

            benchmark.recordBytes(imageSize, since: stopwatch)
            if report.imageDigest != manifest.imageDigest || report.chunksWritten != manifest.frames.count {
                benchmark.error("unexpected report: \(report)")
            }
        } catch {
            benchmark.error("StagingWriter failed: \(error)")
        }
    } setup: {
        try writerFixture.build()
    } teardown: {
        writerFixture.remove()
    }

    let applyFixture = StagingFixture(keepFramesInMemory: false)
    Benchmark("BundleApplier.apply 64MiB", configuration: configuration) { benchmark in
        do {
            let fixture = applyFixture
            let path = fixture.freshTarget()

            benchmark.startMeasurement()
            let stopwatch = Stopwatch()
            let result = try BundleApplier(options: .init()).apply(bundle: fixture.bundle, to: path)
            benchmark.stopMeasurement()

            benchmark.recordBytes(imageSize, since: stopwatch)
            if result.alreadyComplete || result.report?.imageDigest != fixture.bundle.manifest.imageDigest {
                benchmark.error("unexpected apply result: \(result)")
            }
        } catch {
            benchmark.error("BundleApplier.apply failed: \(error)")
        }
    } setup: {
        try applyFixture.build()
    } teardown: {
        applyFixture.remove()
    }
}
