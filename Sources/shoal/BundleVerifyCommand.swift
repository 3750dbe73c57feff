import ArgumentParser
import Foundation
import ShoalBundle
import ShoalCrypto
import ShoalStorage

struct BundleVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check a bundle: structure, signature, every frame, and the whole image.",
        discussion: """
            Exits 0 only if everything checks. With --trust, an unsigned bundle or one signed by \
            another key is refused. Encrypted bundles: without --key only the stored frames are \
            checked (their SHA-256 is over the sealed bytes); with --key every frame is also decoded.
            """
    )

    @Argument(help: "Bundle file.") var bundle: String
    @Option(name: .long, help: "Trusted Ed25519 public key (PEM); repeatable.") var trust: [String] = []
    @Option(help: "Key file of an encrypted bundle.") var key: String?

    func run() throws {
        try reportingErrors {
            let file = try BundleFile(path: bundle)
            var verifier = BundleVerifier(trustedKeys: try trust.map(KeyFiles.publicKey))
            if let key { verifier.key = try KeyFiles.symmetricKey(key) }
            let line = Terminal.ProgressLine("verifying")
            let m = file.manifest
            let result = try verifier.verify(file) { done, total in
                line.update(done: UInt64(done) * UInt64(m.regionSize), total: UInt64(total) * UInt64(m.regionSize))
            }
            line.finish()
            print("bundle \(file.bundleID.hex): OK")
            print("  \(result.framesChecked) frames checked\(result.decoded ? ", decoded and image SHA-256 matched" : " (encrypted, no key: stored bytes only)")")
            if let signer = file.signedManifest.signer {
                print("  signature valid, signer \(signer.fingerprint)\(trust.isEmpty ? " (no --trust given: signer not checked against a trusted key)" : ", trusted")")
            } else {
                print("  UNSIGNED")
            }
            print(String(format: "  %.2f s, %@", result.seconds, Format.rate(m.imageSize, result.seconds)))
        }
    }
}
