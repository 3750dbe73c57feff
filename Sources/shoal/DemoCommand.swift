import ArgumentParser
import Foundation
import ShoalBundle
import ShoalCrypto
import ShoalStorage

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole bundle path on an embedded sample: make an image, bundle, verify, apply.",
        discussion: """
            Makes a deterministic disk-like sample image, a signing key, a signed bundle, verifies \
            it against the key, applies it to a target file with io_uring, and checks that the \
            target is byte-for-byte the image (and, if the `zstd` tool is installed, that stock \
            `zstd -d` reproduces it too). Prints what happened and how fast.
            """
    )

    @Option(help: "Working directory (default: a new directory under /tmp, removed afterwards).") var dir: String?
    @Option(help: "Sample image size.") var size = ByteSize(argument: "512M")!
    @Option(help: "Chunk size.") var chunkSize = ByteSize(argument: "4M")!
    @Flag(help: "Keep the working directory.") var keep = false

    func run() throws {
        try reportingErrors {
            let work = dir ?? NSTemporaryDirectory() + "shoal-demo-\(getpid())"
            try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
            defer { if !keep && dir == nil { try? FileManager.default.removeItem(atPath: work) } }
            let image = work + "/sample.img", bundle = work + "/sample.shoal", target = work + "/staging.img"
            for p in [bundle, target, target + ".shoal-resume"] { try? FileManager.default.removeItem(atPath: p) }

            print("1. sample image: \(Format.bytes(size.bytes)) of disk-like data → \(image)")
            try SampleImage.write(to: image, size: size.bytes)

            let key = Ed25519PrivateKey()
            print("2. signing key: Ed25519, fingerprint \(key.publicKey.fingerprint)")

            var options = BundleCreator.Options(name: "shoal-demo-sample")
            options.regionSize = Int(chunkSize.bytes)
            options.signingKey = key
            let line = Terminal.ProgressLine("compressing")
            let created = try BundleCreator(options: options).create(image: image, output: bundle) { line.update(done: $0, total: $1) }
            line.finish()
            print(String(format: "3. bundle create: %@ → %@ (%.2f×) in %.2f s, %@, %d chunks, id %@",
                         Format.bytes(size.bytes), Format.bytes(created.fileLength), Double(size.bytes) / Double(created.fileLength),
                         created.seconds, Format.rate(size.bytes, created.seconds), created.manifest.frames.count, created.bundleID.shortHex))

            let file = try BundleFile(path: bundle)
            let verified = try BundleVerifier(trustedKeys: [key.publicKey]).verify(file)
            print(String(format: "4. bundle verify --trust: signature valid, %d frames and image SHA-256 OK in %.2f s, %@",
                         verified.framesChecked, verified.seconds, Format.rate(size.bytes, verified.seconds)))

            var applyOptions = BundleApplier.Options()
            applyOptions.trustedKeys = [key.publicKey]
            let applyLine = Terminal.ProgressLine("applying")
            let applied = try BundleApplier(options: applyOptions).apply(bundle: file, to: target) { applyLine.update(done: $0.bytesDone, total: $0.imageSize) }
            applyLine.finish()
            let r = applied.report!
            print(String(format: "5. bundle apply → %@: %d chunks, %@ written%@, %@ of zeros punched, synced, image SHA-256 verified in %.2f s, %@",
                         target, r.chunksWritten, Format.bytes(r.bytesWritten), r.directIO ? " with O_DIRECT" : "", Format.bytes(r.bytesZeroed),
                         applied.seconds, Format.rate(size.bytes, applied.seconds)))

            let same = try filesEqual(image, target)
            print("6. target equals the image byte for byte: \(same ? "yes" : "NO")")
            guard same else { throw CLIError(message: "the applied target differs from the image") }
            if let zstd = which("zstd") {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: zstd)
                p.arguments = ["-d", "-q", "-f", bundle, "-o", work + "/zstd-out.img"]
                try p.run()
                p.waitUntilExit()
                let ok = try p.terminationStatus == 0 && filesEqual(image, work + "/zstd-out.img")
                print("7. stock `zstd -d` reproduces the image: \(ok ? "yes" : "NO")")
                try? FileManager.default.removeItem(atPath: work + "/zstd-out.img")
                guard ok else { throw CLIError(message: "zstd -d did not reproduce the image") }
            }
            print(keep || dir != nil ? "files kept in \(work)" : "done (temporary files removed; --keep to keep them)")
        }
    }

    private func filesEqual(_ a: String, _ b: String) throws -> Bool {
        guard let fa = FileHandle(forReadingAtPath: a), let fb = FileHandle(forReadingAtPath: b) else { return false }
        defer { try? fa.close(); try? fb.close() }
        while true {
            let da = fa.readData(ofLength: 4 << 20), db = fb.readData(ofLength: 4 << 20)
            if da != db { return false }
            if da.isEmpty { return true }
        }
    }

    private func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }
}
