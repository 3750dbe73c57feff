import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto
import ShoalStorage
import ShoalTestKit
import Testing

@Suite(.serialized) struct RoundTripTests {
    static let region = 64 << 10

    /// Sizes around the region size, empty-ish and all-zero images.
    static let cases: [(String, [UInt8])] = [
        ("empty", []),
        ("one byte", [42]),
        ("4095 bytes", TestData.mixedImage(4095, seed: 1)),
        ("exactly one region", TestData.mixedImage(region, seed: 2)),
        ("region + 1", TestData.mixedImage(region + 1, seed: 3)),
        ("odd size, many regions", TestData.mixedImage(5 * region + 12_345, seed: 4)),
        ("all zeros", [UInt8](repeating: 0, count: 3 * region + 512)),
        ("incompressible", TestData.random(2 * region + 100, seed: 5)),
    ]

    @Test(arguments: 0..<cases.count)
    func createVerifyApply(_ which: Int) throws {
        let (label, image) = RoundTripTests.cases[which]
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(image, in: dir, regionSize: RoundTripTests.region)
            let file = try BundleFile(path: made.bundle)
            #expect(file.manifest.imageSize == UInt64(image.count), "\(label)")
            #expect(file.manifest.imageDigest == SHA256.hash(image))
            #expect(file.bundleID == made.result.bundleID)
            _ = try BundleVerifier().verify(file)
            let target = dir.file("target.img")
            let result = try BundleApplier(options: .init()).apply(bundle: file, to: target)
            #expect(try TestData.read(target) == image, "\(label)")
            #expect(result.report?.chunksWritten == file.manifest.frames.count)
            // The zeros were not written as data.
            if image.allSatisfy({ $0 == 0 }) { #expect(result.report?.bytesWritten == 0) }
            // Again: the resume log says complete and the target is re-checked, not rewritten.
            let again = try BundleApplier(options: .init()).apply(bundle: file, to: target)
            #expect(again.alreadyComplete)
        }
    }

    /// Found by a full run: the writer's threads could still hold the target (and its lock) for a
    /// moment after `apply` returned, so an immediate second apply saw "locked by another shoal".
    @Test func applyingAgainRightAwayNeverFindsTheTargetClaimed() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.mixedImage(2 * RoundTripTests.region + 5, seed: 8), in: dir, regionSize: RoundTripTests.region)
            let file = try BundleFile(path: made.bundle)
            for round in 0..<40 {
                let target = dir.file("t\(round % 2).img")
                if round % 2 == 0 {
                    try? FileManager.default.removeItem(atPath: target)
                    try? FileManager.default.removeItem(atPath: target + ".shoal-resume")
                }
                _ = try BundleApplier(options: .init()).apply(bundle: file, to: target)
                let again = try BundleApplier(options: .init()).apply(bundle: file, to: target)
                #expect(again.alreadyComplete)
            }
        }
    }

    @Test func stockZstdReproducesTheImage() throws {
        let zstd = try #require(ChildProcess.which("zstd"), "the zstd tool is needed (apt-get install zstd)")
        try TemporaryDirectory.with { dir in
            for (i, (_, image)) in RoundTripTests.cases.enumerated() {
                let made = try TestBundles.make(image, in: dir, name: "case\(i)", regionSize: RoundTripTests.region)
                let out = dir.file("case\(i).out")
                let r = try ChildProcess.run(zstd, ["-d", "-q", "-f", made.bundle, "-o", out])
                #expect(r.status == 0, "\(r.stderr)")
                #expect(try TestData.read(out) == image, "case \(i)")
            }
        }
    }

    @Test func seekTableLocatesEveryRegion() throws {
        // What a seekable-format reader does: find a region from the seek table alone.
        try TemporaryDirectory.with { dir in
            let image = TestData.mixedImage(7 * RoundTripTests.region + 99, seed: 9)
            let made = try TestBundles.make(image, in: dir, regionSize: RoundTripTests.region)
            let bytes = try TestData.read(made.bundle)
            let (_, tableSize) = try SeekTable.frameSize(fromFooter: Array(bytes.suffix(9)))
            let table = try SeekTable.parse(Array(bytes.suffix(tableSize)))
            #expect(table.entries.reduce(0) { $0 + Int($1.compressedSize) } == bytes.count - tableSize)
            var compressedOffset = 0, decodedOffset = 0
            let decoder = ZstdDecoder(maxWindowBytes: RoundTripTests.region)
            for entry in table.entries {
                if entry.decompressedSize > 0 {
                    var out = [UInt8](repeating: 0, count: Int(entry.decompressedSize))
                    try bytes[compressedOffset..<compressedOffset + Int(entry.compressedSize)].withUnsafeBytes { f in
                        try out.withUnsafeMutableBytes { try decoder.decode(frame: f, into: $0) }
                    }
                    #expect(out == Array(image[decodedOffset..<decodedOffset + out.count]))
                }
                compressedOffset += Int(entry.compressedSize)
                decodedOffset += Int(entry.decompressedSize)
            }
            #expect(decodedOffset == image.count)
        }
    }

    @Test func applyOverAnOldTargetClearsItsZeroRegions() throws {
        try TemporaryDirectory.with { dir in
            var image = TestData.mixedImage(6 * RoundTripTests.region, seed: 11)
            image.replaceSubrange(RoundTripTests.region..<3 * RoundTripTests.region, with: [UInt8](repeating: 0, count: 2 * RoundTripTests.region))
            let made = try TestBundles.make(image, in: dir, regionSize: RoundTripTests.region)
            let target = dir.file("old.img")
            try TestData.write(TestData.random(image.count + 5000, seed: 99), to: target)  // larger, full of garbage
            let result = try BundleApplier(options: .init()).apply(bundle: try BundleFile(path: made.bundle), to: target)
            #expect(try TestData.read(target) == image)
            #expect(result.report!.bytesZeroed >= UInt64(2 * RoundTripTests.region))
        }
    }

    @Test func bufferedFallbackWithoutODirect() throws {
        try TemporaryDirectory.with { dir in
            let image = TestData.mixedImage(3 * RoundTripTests.region + 7, seed: 12)
            let made = try TestBundles.make(image, in: dir, regionSize: RoundTripTests.region)
            var options = BundleApplier.Options()
            options.useDirectIO = false
            let result = try BundleApplier(options: options).apply(bundle: try BundleFile(path: made.bundle), to: dir.file("t.img"))
            #expect(result.report?.directIO == false)
            #expect(try TestData.read(dir.file("t.img")) == image)
        }
    }

    @Test func tmpfsRefusesODirectAndStillWorks() throws {
        // /dev/shm is tmpfs, which refuses O_DIRECT at open: the writer must fall back cleanly.
        guard FileManager.default.fileExists(atPath: "/dev/shm") else { return }
        let dir = "/dev/shm/shoal-test-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try TemporaryDirectory.with { tmp in
            let image = TestData.mixedImage(4 * RoundTripTests.region + 3, seed: 13)
            let made = try TestBundles.make(image, in: tmp, regionSize: RoundTripTests.region)
            let result = try BundleApplier(options: .init()).apply(bundle: try BundleFile(path: made.bundle), to: dir + "/t.img")
            #expect(try TestData.read(dir + "/t.img") == image)
            #expect(result.report?.chunksWritten == 5)
        }
    }
}

@Suite(.serialized) struct StagingWriterTests {
    @Test func chunksInAnyOrderWithDuplicatesFromManyThreads() throws {
        try TemporaryDirectory.with { dir in
            let region = 64 << 10
            let image = TestData.mixedImage(40 * region + 1234, seed: 21)
            let made = try TestBundles.make(image, in: dir, regionSize: region)
            let file = try BundleFile(path: made.bundle)
            let target = try StagingTarget(path: dir.file("t.img"), imageSize: file.manifest.imageSize)
            let log = try ResumeLog(path: dir.file("t.resume"), bundleID: file.bundleID, frameCount: file.manifest.frames.count, targetIdentity: target.identity)
            var options = StagingWriter.Options()
            options.buffers = 3
            options.hashWindow = 1
            let writer = try StagingWriter(bundle: file.signedManifest, target: target, resumeLog: log, key: nil, options: options)
            var shuffled = Array(0..<file.manifest.frames.count).reversed() + [3, 7, 0]
            shuffled.swapAt(2, 30)
            let order = shuffled
            let chunks = try order.map { try file.readFrame($0) }
            DispatchQueue.concurrentPerform(iterations: 3) { w in
                for k in stride(from: w, to: order.count, by: 3) { try! writer.write(chunk: order[k], stored: chunks[k]) }
            }
            let report = try writer.finish()
            #expect(report.chunksWritten == file.manifest.frames.count)
            #expect(report.bytesReadBack > 0)  // out-of-order chunks were hashed from the target
            #expect(try TestData.read(dir.file("t.img")) == image)
            #expect(log.isComplete)
        }
    }

    @Test func aCorruptChunkIsNeverWrittenAndCanBeRetried() throws {
        try TemporaryDirectory.with { dir in
            let region = 64 << 10
            let image = TestData.random(4 * region, seed: 22)
            let made = try TestBundles.make(image, in: dir, regionSize: region)
            let file = try BundleFile(path: made.bundle)
            let target = try StagingTarget(path: dir.file("t.img"), imageSize: file.manifest.imageSize)
            let log = try ResumeLog(path: dir.file("t.resume"), bundleID: file.bundleID, frameCount: 4, targetIdentity: target.identity)
            let writer = try StagingWriter(bundle: file.signedManifest, target: target, resumeLog: log, key: nil)
            var bad = try file.readFrame(2)
            bad[bad.count / 2] ^= 0x40
            do {
                try writer.write(chunk: 2, stored: bad)
                Issue.record("corrupt chunk accepted")
            } catch let BundleError.chunkMismatch(index, why) {
                #expect(index == 2)
                #expect(why.contains("SHA-256"))
            }
            // Nothing of chunk 2 reached the target (it is still a hole of zeros).
            let t = try TestData.read(dir.file("t.img"))
            #expect(t[2 * region..<3 * region].allSatisfy { $0 == 0 })
            #expect(writer.missingChunks == [0, 1, 2, 3])
            for i in 0..<4 { try writer.write(chunk: i, stored: try file.readFrame(i)) }
            _ = try writer.finish()
            #expect(try TestData.read(dir.file("t.img")) == image)
        }
    }

    @Test func finishWithMissingChunksFails() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.random(3 * 4096 * 16, seed: 23), in: dir, regionSize: 4096 * 16)
            let file = try BundleFile(path: made.bundle)
            let target = try StagingTarget(path: dir.file("t.img"), imageSize: file.manifest.imageSize)
            let log = try ResumeLog(path: dir.file("t.resume"), bundleID: file.bundleID, frameCount: 3, targetIdentity: target.identity)
            let writer = try StagingWriter(bundle: file.signedManifest, target: target, resumeLog: log, key: nil)
            try writer.write(chunk: 0, stored: try file.readFrame(0))
            #expect(throws: StorageError.self) { try writer.finish() }
            #expect(!log.isComplete)
        }
    }
}

struct ZeroRunsTests {
    @Test func everyPatternOfEightBlocks() {
        let block = 4096
        for pattern in 0..<256 {
            var region = [UInt8](repeating: 0, count: 8 * block - 100)
            for b in 0..<8 where pattern & (1 << b) != 0 {
                let i = min(region.count - 1, b * block + (pattern * 37) % block)
                region[i] = 1
            }
            let runs = region.withUnsafeBytes { ZeroRuns.split($0, blockSize: block) }
            var offset = 0
            for (k, run) in runs.enumerated() {
                #expect(run.offset == offset)
                if k > 0 { #expect(runs[k - 1].isZero != run.isZero) }
                let slice = region[run.offset..<run.offset + run.length]
                #expect(run.isZero == slice.allSatisfy { $0 == 0 } || !run.isZero)
                if run.isZero { #expect(slice.allSatisfy { $0 == 0 }) }
                offset += run.length
            }
            #expect(offset == region.count)
        }
    }
}
