import ArgumentParser
import Foundation
import ShoalBundle
import ShoalCrypto
import ShoalStorage

struct BundleApplyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "apply",
        abstract: "Write a bundle's image onto a target file or block device.",
        discussion: """
            Every chunk is checked against the manifest before it is decoded; decoding runs on all \
            cores; writes go through io_uring (O_DIRECT where possible); all-zero regions are punched \
            or discarded, not written. Progress is kept in a resume file (next to a file target, under \
            /var/lib/shoal/apply/ for a device): after a crash, run the same command again. Success \
            means every chunk written, data synced and the whole image's SHA-256 checked.

            Refused with a distinct exit code: a mounted or busy target (21), a target too small (22), \
            an untrusted or bad signature when --trust is given (14/13), not a bundle (10), a truncated \
            bundle (11), a corrupt chunk (15, naming the chunk), a missing or wrong --key (16).
            """
    )

    @Argument(help: "Bundle file.") var bundle: String
    @Option(help: "Target: a file (created or resized to the image size) or a block device.") var to: String
    @Option(name: .long, help: "Trusted Ed25519 public key (PEM); repeatable. Unsigned bundles are then refused.") var trust: [String] = []
    @Option(help: "Key file of an encrypted bundle.") var key: String?
    @Option(help: "Resume file (default: TARGET.shoal-resume, or /var/lib/shoal/apply/… for a device).") var resumeFile: String?
    @Option(help: "Decode threads (default: all cores).") var threads: Int?
    @Option(help: "Limit the write rate, e.g. 200M (bytes of image per second).") var maxRate: ByteSize?
    @Flag(help: "Do not use O_DIRECT (write through the page cache).") var noDirect = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try reportingErrors {
            let file = try BundleFile(path: bundle)
            var options = BundleApplier.Options()
            options.trustedKeys = try trust.map(KeyFiles.publicKey)
            if let key { options.key = try KeyFiles.symmetricKey(key) }
            options.resumePath = resumeFile
            options.useDirectIO = !noDirect
            if let threads { options.workers = max(1, threads) }
            options.writer.maxBytesPerSecond = maxRate?.bytes
            // Ctrl-C / SIGTERM: finish the chunks in flight, sync, record them, exit 130.
            let cancellation = ApplyCancellation()
            options.cancellation = cancellation
            let signalSources = [SIGINT, SIGTERM].map { sig -> any DispatchSourceSignal in
                signal(sig, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
                source.setEventHandler { cancellation.cancel() }
                source.resume()
                return source
            }
            defer { signalSources.forEach { $0.cancel() } }
            if !json, file.signedManifest.signer == nil, trust.isEmpty {
                Terminal.note("warning: the bundle is unsigned; give --trust KEY to refuse unsigned bundles")
            }
            let line = Terminal.ProgressLine("applying")
            let result = try BundleApplier(options: options).apply(bundle: file, to: to) { p in
                line.update(done: p.bytesDone, total: p.imageSize)
            }
            line.finish()
            let m = file.manifest
            if json {
                var object: [String: Any] = [
                    "bundle_id": result.bundleID.hex, "target": result.target, "target_kind": result.targetKind.rawValue,
                    "image_size": m.imageSize, "image_sha256": m.imageDigest.hex, "seconds": result.seconds,
                    "already_complete": result.alreadyComplete, "resume_file": result.resumePath,
                    "throughput_mb_s": result.seconds > 0 ? Double(m.imageSize) / result.seconds / 1e6 : 0,
                ]
                if let r = result.report {
                    object["chunks"] = r.chunks
                    object["chunks_already_done"] = r.chunksAlreadyDone
                    object["chunks_written"] = r.chunksWritten
                    object["bytes_written"] = r.bytesWritten
                    object["bytes_zeroed"] = r.bytesZeroed
                    object["bytes_read_back"] = r.bytesReadBack
                    object["direct_io"] = r.directIO
                    object["syncs"] = r.syncs
                }
                print(jsonString(object))
                return
            }
            if let why = result.discardedResume { Terminal.note("ignored the old resume file: \(why)") }
            print("target:     \(result.target) (\(result.targetKind.rawValue))")
            print("bundle:     \(result.bundleID.hex)")
            if result.alreadyComplete {
                print("status:     already applied; target re-checked, SHA-256 matches")
            } else if let r = result.report {
                if r.chunksAlreadyDone > 0 {
                    print("resumed:    \(r.chunksAlreadyDone) of \(r.chunks) chunks were already done")
                }
                print("chunks:     \(r.chunksWritten) written and verified (\(r.chunks) in the image)")
                print("data:       \(Format.bytes(r.bytesWritten)) written\(r.directIO ? " (O_DIRECT, io_uring)" : " (page cache, io_uring)"), \(Format.bytes(r.bytesZeroed)) of zeros punched/skipped")
                print("image:      \(Format.bytes(m.imageSize)), SHA-256 \(m.imageDigest.shortHex)… verified, data synced")
            }
            print(String(format: "time:       %.2f s, %@", result.seconds, Format.rate(m.imageSize, result.seconds)))
        }
    }
}
