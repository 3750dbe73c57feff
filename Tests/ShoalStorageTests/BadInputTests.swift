import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto
import ShoalStorage
import ShoalTestKit
import Testing

/// Every kind of bad input gets its own error, and nothing is lost or half-written.
@Suite(.serialized) struct BadInputTests {
    let region = 64 << 10

    func expectBundleError(_ body: () throws -> Void, _ check: (BundleError) -> Bool, sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            try body()
            Issue.record("no error thrown", sourceLocation: sourceLocation)
        } catch let error as BundleError {
            #expect(check(error), "unexpected \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test func filesThatAreNotBundles() throws {
        try TemporaryDirectory.with { dir in
            try TestData.write(TestData.random(100_000, seed: 1), to: dir.file("random"))
            expectBundleError({ _ = try BundleFile(path: dir.file("random")) }) { if case .notABundle = $0 { true } else { false } }
            try TestData.write([], to: dir.file("empty"))
            expectBundleError({ _ = try BundleFile(path: dir.file("empty")) }) { if case .notABundle = $0 { true } else { false } }
            // A plain zstd file is named as such.
            let image = TestData.mixedImage(100_000, seed: 2)
            try TestData.write(image, to: dir.file("plain"))
            if let zstd = ChildProcess.which("zstd") {
                _ = try ChildProcess.run(zstd, ["-q", "-f", dir.file("plain"), "-o", dir.file("plain.zst")])
                expectBundleError({ _ = try BundleFile(path: dir.file("plain.zst")) }) { $0.description.contains("plain zstd") }
            }
        }
    }

    @Test func truncatedAnywhereIsTruncated() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.mixedImage(5 * region, seed: 3), in: dir, regionSize: region)
            let full = try TestData.read(made.bundle)
            for cut in [UInt64(BundleLayout.headerFrameSize), 1000, UInt64(full.count / 2), UInt64(full.count - 10), UInt64(full.count - 1)] {
                try TestData.write(Array(full.prefix(Int(cut))), to: dir.file("cut"))
                expectBundleError({ _ = try BundleFile(path: dir.file("cut")) }) { if case .truncated = $0 { true } else { false } }
            }
        }
    }

    @Test func aFlippedBitInAFrameNamesTheChunk() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.mixedImage(6 * region, seed: 4), in: dir, regionSize: region)
            let frame = try BundleFile(path: made.bundle).manifest.frames[3]
            try TestBundles.flipBit(in: made.bundle, at: frame.offset + UInt64(frame.storedLength / 2))
            let file = try BundleFile(path: made.bundle)  // the manifest is intact
            expectBundleError({ _ = try BundleVerifier().verify(file) }) { $0 == .chunkMismatch(index: 3, "") || { if case .chunkMismatch(3, _) = $0 { true } else { false } }($0) }
            // Apply stops at the corrupt chunk; the target never gets its bytes and the run is not complete.
            let target = dir.file("t.img")
            expectBundleError({ _ = try BundleApplier(options: .init()).apply(bundle: file, to: target) }) {
                if case .chunkMismatch(3, _) = $0 { true } else { false }
            }
            let t = try TestData.read(target)
            #expect(t[3 * region..<4 * region].allSatisfy { $0 == 0 })
        }
    }

    @Test func aFlippedBitInTheManifestOrSeekTable() throws {
        try TemporaryDirectory.with { dir in
            let key = Ed25519PrivateKey()
            let made = try TestBundles.make(TestData.mixedImage(3 * region, seed: 5), in: dir, regionSize: region, signingKey: key)
            let original = try TestData.read(made.bundle)
            let file = try BundleFile(path: made.bundle)
            let manifestStart = UInt64(BundleLayout.headerFrameSize) + file.manifest.storedSize
            // Inside the signed body: a bad signature (or a malformed manifest); never accepted.
            try TestBundles.flipBit(in: made.bundle, at: manifestStart + 8 + 4 + 40)
            expectBundleError({ _ = try BundleFile(path: made.bundle) }) { $0 == .badSignature }
            // Inside the seek table: it no longer matches the manifest.
            try TestData.write(original, to: made.bundle)
            try TestBundles.flipBit(in: made.bundle, at: UInt64(original.count - 9 - 6))
            expectBundleError({ _ = try BundleFile(path: made.bundle) }) { if case .notABundle = $0 { true } else { false } }
        }
    }

    @Test func signaturesAndTrust() throws {
        try TemporaryDirectory.with { dir in
            let key = Ed25519PrivateKey(), other = Ed25519PrivateKey()
            let signed = try TestBundles.make(TestData.mixedImage(2 * region, seed: 6), in: dir, name: "signed", regionSize: region, signingKey: key)
            let unsigned = try TestBundles.make(TestData.mixedImage(2 * region, seed: 6), in: dir, name: "unsigned", regionSize: region)
            var options = BundleApplier.Options()
            options.trustedKeys = [key.publicKey]
            _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: signed.bundle), to: dir.file("a.img"))
            expectBundleError({ _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: unsigned.bundle), to: dir.file("b.img")) }) {
                if case .untrusted = $0 { true } else { false }
            }
            options.trustedKeys = [other.publicKey]
            expectBundleError({ _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: signed.bundle), to: dir.file("c.img")) }) {
                if case .untrusted = $0 { true } else { false }
            }
            // Refused before the target is touched.
            #expect(!FileManager.default.fileExists(atPath: dir.file("b.img")))
            #expect(!FileManager.default.fileExists(atPath: dir.file("c.img")))
        }
    }

    @Test func encryptedBundles() throws {
        try TemporaryDirectory.with { dir in
            let key = SymmetricKey.random()
            let image = TestData.mixedImage(4 * region + 5, seed: 7)
            let made = try TestBundles.make(image, in: dir, regionSize: region, encryptionKey: key)
            let file = try BundleFile(path: made.bundle)
            #expect(file.manifest.isEncrypted)
            #expect(file.manifest.keyID == key.keyID)
            // Any peer can check stored frames without the key.
            let partial = try BundleVerifier().verify(file)
            #expect(!partial.decoded)
            #expect(try BundleVerifier(key: key).verify(file).decoded)
            var options = BundleApplier.Options()
            expectBundleError({ _ = try BundleApplier(options: options).apply(bundle: file, to: dir.file("nokey.img")) }) {
                if case .keyRequired = $0 { true } else { false }
            }
            options.key = SymmetricKey.random()
            expectBundleError({ _ = try BundleApplier(options: options).apply(bundle: file, to: dir.file("wrong.img")) }) {
                if case .keyRequired(let why) = $0 { why.contains("wrong key") } else { false }
            }
            options.key = key
            _ = try BundleApplier(options: options).apply(bundle: file, to: dir.file("right.img"))
            #expect(try TestData.read(dir.file("right.img")) == image)
            // Stock zstd cannot read a sealed bundle (and says so by failing).
            if let zstd = ChildProcess.which("zstd") {
                let r = try ChildProcess.run(zstd, ["-d", "-q", "-f", made.bundle, "-o", dir.file("z.out")])
                #expect(r.status != 0)
            }
        }
    }

    @Test func resumeLogSurvivesATornSlot() throws {
        try TemporaryDirectory.with { dir in
            let id = SHA256.hash([1])
            let path = dir.file("r")
            do {
                let log = try ResumeLog(path: path, bundleID: id, frameCount: 20, targetIdentity: (1, 2))
                try log.markDone([1, 2, 3])  // sequence 1 → slot 1
                try log.markDone([10])  // sequence 2 → slot 0
            }
            // Tear the newest slot (slot 0): the older one (slot 1) is used.
            try TestBundles.flipBit(in: path, at: 40)
            do {
                let log = try ResumeLog(path: path, bundleID: id, frameCount: 20, targetIdentity: (1, 2))
                #expect(log.done.indices.filter { log.done[$0] } == [1, 2, 3])
            }
            // Another bundle or another target: progress is not reused, and the reason is given.
            let other = try ResumeLog(path: path, bundleID: SHA256.hash([2]), frameCount: 20, targetIdentity: (1, 2))
            #expect(other.doneCount == 0)
            #expect(other.discardedReason != nil)
        }
    }

    @Test func aSecondApplyToTheSameTargetIsRefused() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.mixedImage(2 * region, seed: 8), in: dir, regionSize: region)
            let file = try BundleFile(path: made.bundle)
            let first = try StagingTarget(path: dir.file("t.img"), imageSize: file.manifest.imageSize)
            #expect(throws: StorageError.self) { _ = try StagingTarget(path: dir.file("t.img"), imageSize: file.manifest.imageSize) }
            _ = first
        }
    }

    @Test func theBundleItselfIsNeverATarget() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.mixedImage(2 * region, seed: 9), in: dir, regionSize: region)
            let before = try TestData.read(made.bundle)
            #expect(throws: StorageError.badTarget("\(made.bundle) is the bundle itself")) {
                _ = try BundleApplier(options: .init()).apply(bundle: try BundleFile(path: made.bundle), to: made.bundle)
            }
            #expect(try TestData.read(made.bundle) == before)
        }
    }

    @Test func notAFileOrDevice() throws {
        _ = TemporaryDirectory.with { dir in
            #expect(throws: StorageError.badTarget("\(dir.path) is neither a regular file nor a block device")) {
                _ = try StagingTarget(path: dir.path, imageSize: 10)
            }
        }
    }
}

/// Tests that need root: loop devices, mounts, a full file system.
@Suite(.serialized, .enabled(if: LoopDevice.isAvailable, "needs root and losetup (loop devices); skipped"))
struct BlockDeviceTests {
    let region = 64 << 10

    @Test func applyToALoopDevice() throws {
        try TemporaryDirectory.with { dir in
            var image = TestData.mixedImage(20 * region + 512, seed: 31)
            image.replaceSubrange(2 * region..<5 * region, with: [UInt8](repeating: 0, count: 3 * region))
            let made = try TestBundles.make(image, in: dir, regionSize: region)
            // The device starts full of garbage, so zero regions must really be zeroed.
            try TestData.write(TestData.random(32 << 20, seed: 32), to: dir.file("disk"))
            let loop = try LoopDevice.attach(backingFile: dir.file("disk"), size: 32 << 20)
            defer { loop.detach() }
            var options = BundleApplier.Options()
            options.resumePath = dir.file("loop.resume")
            let result = try BundleApplier(options: options).apply(bundle: try BundleFile(path: made.bundle), to: loop.device)
            #expect(result.targetKind == .blockDevice)
            #expect(result.report?.bytesZeroed ?? 0 >= UInt64(3 * region))
            let fd = open(loop.device, O_RDONLY)
            defer { close(fd) }
            var back = [UInt8](repeating: 1, count: image.count)
            #expect(pread(fd, &back, image.count, 0) == image.count)
            #expect(back == image)
        }
    }

    @Test func aTooSmallDeviceIsRefused() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.mixedImage(40 * region, seed: 33), in: dir, regionSize: region)
            let loop = try LoopDevice.attach(backingFile: dir.file("small"), size: 1 << 20)
            defer { loop.detach() }
            var options = BundleApplier.Options()
            options.resumePath = dir.file("r")
            #expect(throws: StorageError.self) {
                _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: made.bundle), to: loop.device)
            }
            do {
                _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: made.bundle), to: loop.device)
            } catch let e as StorageError {
                #expect(e.exitCode == 22, "\(e)")
            }
        }
    }

    @Test func aMountedDeviceAndAFileBackingALoopDeviceAreRefused() throws {
        try TemporaryDirectory.with { dir in
            let made = try TestBundles.make(TestData.mixedImage(4 * region, seed: 34), in: dir, regionSize: region)
            let loop = try LoopDevice.attach(backingFile: dir.file("fs"), size: 16 << 20)
            defer { loop.detach() }
            try ChildProcess.sh("mkfs.ext4 -q -F \(loop.device)")
            try FileManager.default.createDirectory(atPath: dir.file("mnt"), withIntermediateDirectories: true)
            try ChildProcess.sh("mount \(loop.device) \(dir.file("mnt"))")
            defer { _ = try? ChildProcess.sh("umount \(dir.file("mnt"))") }
            var options = BundleApplier.Options()
            options.resumePath = dir.file("r")
            do {
                _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: made.bundle), to: loop.device)
                Issue.record("applied to a mounted device")
            } catch let e as StorageError {
                #expect(e.exitCode == 21 && e.description.contains("mounted"), "\(e)")
            }
            do {
                _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: made.bundle), to: dir.file("fs"))
                Issue.record("applied to a file that backs a loop device")
            } catch let e as StorageError {
                #expect(e.exitCode == 21 && e.description.contains("loop"), "\(e)")
            }
            // Packing a mounted device is refused too (its contents could change while read).
            #expect(throws: StorageError.self) {
                _ = try BundleCreator(options: .init(name: "x")).create(image: loop.device, output: dir.file("fs.shoal"))
            }
            #expect(!FileManager.default.fileExists(atPath: dir.file("fs.shoal")))
            // The mounted file system is untouched.
            #expect(try ChildProcess.sh("ls \(dir.file("mnt"))").contains("lost+found"))
        }
    }

    @Test func aFullFileSystemIsReportedAndProgressIsKept() throws {
        try TemporaryDirectory.with { dir in
            let mnt = dir.file("small-fs")
            try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
            try ChildProcess.sh("mount -t tmpfs -o size=2m tmpfs \(mnt)")
            defer { _ = try? ChildProcess.sh("umount \(mnt)") }
            let image = TestData.random(64 * region, seed: 35)  // 4 MiB of incompressible data
            let made = try TestBundles.make(image, in: dir, regionSize: region)
            var options = BundleApplier.Options()
            options.resumePath = dir.file("r")
            do {
                _ = try BundleApplier(options: options).apply(bundle: try BundleFile(path: made.bundle), to: mnt + "/t.img")
                Issue.record("a 4 MiB image fit in 2 MiB")
            } catch let e as StorageError {
                #expect(e.exitCode == 24, "\(e)")
            }
            // The bundle is intact and the resume log is not marked complete.
            _ = try BundleVerifier().verify(try BundleFile(path: made.bundle))
            let file = try BundleFile(path: made.bundle)
            var st = stat()
            stat(mnt + "/t.img", &st)
            let log = try ResumeLog(path: dir.file("r"), bundleID: file.bundleID, frameCount: file.manifest.frames.count, targetIdentity: (UInt64(st.st_dev), UInt64(st.st_ino)))
            #expect(!log.isComplete)
        }
    }
}

/// Random damage anywhere in a bundle: never a crash, always a clear error or a correct result.
struct MutationTests {
    @Test func randomMutationsNeverCrash() throws {
        try TemporaryDirectory.with { dir in
            let image = TestData.mixedImage(5 * 16384 + 77, seed: 41)
            let made = try TestBundles.make(image, in: dir, regionSize: 16384, signingKey: Ed25519PrivateKey())
            let original = try TestData.read(made.bundle)
            var rng = SystemRandomNumberGenerator()
            var outcomes: [String: Int] = [:]
            for round in 0..<400 {
                var bytes = original
                switch round % 4 {
                case 0:  // flip bytes in the last 600 bytes (manifest, seek table)
                    for _ in 0..<Int.random(in: 1...4, using: &rng) {
                        bytes[bytes.count - Int.random(in: 1...min(600, bytes.count), using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                    }
                case 1:  // flip bytes anywhere
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                case 2:  // truncate
                    bytes.removeLast(Int.random(in: 1..<bytes.count, using: &rng))
                default:  // overwrite a 4-byte little-endian length field in the trailer with a huge value
                    let at = bytes.count - Int.random(in: 9...min(400, bytes.count), using: &rng)
                    for k in 0..<4 where at + k < bytes.count { bytes[at + k] = 0xFF }
                }
                try TestData.write(bytes, to: dir.file("m"))
                do {
                    let file = try BundleFile(path: dir.file("m"))
                    _ = try BundleVerifier().verify(file)
                    // Accepted: then it must still decode to exactly the image.
                    try? FileManager.default.removeItem(atPath: dir.file("out"))
                    try? FileManager.default.removeItem(atPath: dir.file("out.shoal-resume"))
                    _ = try BundleApplier(options: .init()).apply(bundle: file, to: dir.file("out"))
                    #expect(try TestData.read(dir.file("out")) == image)
                    outcomes["accepted", default: 0] += 1
                } catch let e as BundleError {
                    outcomes["exit \(e.exitCode)", default: 0] += 1
                }
            }
            #expect(outcomes["accepted", default: 0] < 400)
        }
    }
}
