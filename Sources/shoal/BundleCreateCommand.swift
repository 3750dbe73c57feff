import ArgumentParser
import Foundation
import ShoalBundle
import ShoalCrypto
import ShoalStorage

struct BundleCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Pack an image (file or block device) into a bundle.",
        discussion: """
            The image is cut into regions of --chunk-size bytes, each compressed on its own (on all \
            cores) so that any region can be fetched, checked and written independently. The result \
            is written as BUNDLE.partial and renamed only when complete.
            """
    )

    @Argument(help: "Image to pack: a regular file or a block device.") var image: String
    @Option(name: [.customShort("o"), .long], help: "Bundle file to write.") var output: String
    @Option(help: "Region (chunk) size, a multiple of 4 KiB: 4M, 1M, 16M …") var chunkSize = ByteSize(argument: "4M")!
    @Option(help: "zstd compression level (1–19; negative for faster).") var level: Int32 = 3
    @Option(help: "Ed25519 private key (PEM) to sign the manifest with.") var sign: String?
    @Option(help: "Bundle name recorded in the manifest (default: the image's file name).") var name: String?
    @Option(help: "Seal every frame with AES-256-GCM using this key file (see `shoal keys secret`).") var encrypt: String?
    @Option(help: "Compression threads (default: all cores).") var threads: Int?
    @Flag(help: "Pack a block device even if it is mounted (only safe when mounted read-only).") var allowMounted = false
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard chunkSize.bytes >= 4096, chunkSize.bytes % 4096 == 0, chunkSize.bytes <= 1 << 30 else {
            throw ValidationError("--chunk-size must be a multiple of 4 KiB between 4 KiB and 1 GiB")
        }
        guard ZstdCompressor.levelRange.contains(level) else {
            throw ValidationError("--level must be within \(ZstdCompressor.levelRange)")
        }
    }

    func run() throws {
        try reportingErrors {
            var options = BundleCreator.Options(name: name ?? (image as NSString).lastPathComponent)
            options.regionSize = Int(chunkSize.bytes)
            options.level = level
            if let sign { options.signingKey = try KeyFiles.privateKey(sign) }
            if let encrypt { options.encryptionKey = try KeyFiles.symmetricKey(encrypt) }
            if let threads { options.workers = max(1, threads) }
            options.allowMountedImage = allowMounted
            let line = Terminal.ProgressLine("compressing")
            let result = try BundleCreator(options: options).create(image: image, output: output) { done, total in
                line.update(done: done, total: total)
            }
            line.finish()
            let m = result.manifest
            if json {
                print(jsonString([
                    "bundle": result.path, "bundle_id": result.bundleID.hex, "image_size": m.imageSize,
                    "bundle_size": result.fileLength, "frames": m.frames.count, "seconds": result.seconds,
                    "signed": options.signingKey != nil, "encrypted": m.isEncrypted,
                ] as [String: Any]))
                return
            }
            print("bundle:    \(result.path)")
            print("id:        \(result.bundleID.hex)")
            print("image:     \(Format.bytes(m.imageSize)) in \(m.frames.count) chunks of \(Format.bytes(UInt64(m.regionSize)))")
            print(String(format: "size:      %@ (%.2f× smaller)", Format.bytes(result.fileLength), Double(m.imageSize) / Double(max(1, result.fileLength))))
            print("signed:    \(options.signingKey.map { "yes, key \($0.publicKey.fingerprint)" } ?? "no (hosts given --trust will refuse it)")")
            print("encrypted: \(m.isEncrypted ? "yes (AES-256-GCM; stock zstd cannot read it)" : "no")")
            print(String(format: "time:      %.2f s, %@", result.seconds, Format.rate(m.imageSize, result.seconds)))
        }
    }
}
