import ArgumentParser
import Foundation
import ShoalBundle
import ShoalCrypto
import ShoalStorage

struct BundleInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a bundle's manifest (structure and signature are checked; frames are not — use verify)."
    )

    @Argument(help: "Bundle file.") var bundle: String
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "List every frame.") var frames = false

    func run() throws {
        try reportingErrors {
            let file = try BundleFile(path: bundle)
            let m = file.manifest
            let signer = file.signedManifest.signer
            if json {
                var object: [String: Any] = [
                    "bundle_id": file.bundleID.hex, "format_version": Int(Manifest.formatVersion), "name": m.name,
                    "created_at": Format.date(m.createdAt), "image_size": m.imageSize, "image_sha256": m.imageDigest.hex,
                    "region_size": m.regionSize, "frame_count": m.frames.count, "bundle_size": file.fileLength,
                    "compression_level": Int(m.compressionLevel), "encrypted": m.isEncrypted,
                    "signed": signer != nil, "readable_by_stock_zstd": !m.isEncrypted,
                ]
                if let signer { object["signer"] = signer.fingerprint }
                if m.isEncrypted { object["key_id"] = Hex.encode(m.keyID) }
                if frames {
                    object["frames"] = m.frames.enumerated().map { i, f in
                        [
                            "index": i, "offset": f.offset, "stored_length": f.storedLength, "decoded_length": f.decodedLength,
                            "stored_sha256": f.storedDigest.hex, "decoded_sha256": f.decodedDigest.hex,
                        ] as [String: Any]
                    }
                }
                print(jsonString(object))
                return
            }
            print("bundle:      \(bundle)")
            print("id:          \(file.bundleID.hex)")
            print("name:        \(m.name)")
            print("created:     \(Format.date(m.createdAt))")
            print("format:      version \(Manifest.formatVersion), zstd level \(m.compressionLevel)")
            print("image:       \(m.imageSize) bytes (\(Format.bytes(m.imageSize))), sha256 \(m.imageDigest.hex)")
            print("chunks:      \(m.frames.count) × \(Format.bytes(UInt64(m.regionSize)))")
            print(String(format: "stored:      %@ (ratio %.2f)", Format.bytes(file.fileLength), Double(m.imageSize) / Double(max(1, file.fileLength))))
            if let signer {
                print("signature:   Ed25519, valid, signer \(signer.fingerprint)")
            } else {
                print("signature:   UNSIGNED (hosts given --trust refuse it)")
            }
            if m.isEncrypted {
                print("encryption:  AES-256-GCM per frame, key id \(Hex.encode(m.keyID))")
                print("stock zstd:  NOT readable (frames are sealed); apply with --key")
            } else {
                print("encryption:  none")
                print("stock zstd:  readable (`zstd -d` reproduces the image)")
            }
            if frames {
                print("")
                print("index  offset        stored    decoded   stored-sha256  decoded-sha256")
                for (i, f) in m.frames.enumerated() {
                    print(String(format: "%5d  %12llu  %8u  %8u  %@   %@", i, f.offset, f.storedLength, f.decodedLength, f.storedDigest.shortHex, f.decodedDigest.shortHex))
                }
            }
        }
    }
}
