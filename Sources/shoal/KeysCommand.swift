import ArgumentParser
import Foundation
import ShoalCrypto

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Make signing keys and bundle encryption keys.",
        subcommands: [Generate.self, Secret.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate an Ed25519 key pair for signing bundles.",
            discussion: """
                Writes DIR/shoal-signing.key (PKCS#8 PEM, mode 0600: keep it on the build host) and \
                DIR/shoal-signing.pub (SubjectPublicKeyInfo PEM: give it to every host as --trust). \
                Both are readable by `openssl pkey`.
                """
        )
        @Option(help: "Directory to write the key pair into (created if missing).") var out: String
        @Flag(help: "Replace existing key files.") var force = false

        func run() throws {
            try reportingErrors {
                try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
                let key = Ed25519PrivateKey()
                let priv = (out as NSString).appendingPathComponent("shoal-signing.key")
                let pub = (out as NSString).appendingPathComponent("shoal-signing.pub")
                try KeyFiles.write(key.pemRepresentation, to: priv, mode: 0o600, force: force)
                try KeyFiles.write(key.publicKey.pemRepresentation, to: pub, mode: 0o644, force: force)
                print("private key: \(priv)")
                print("public key:  \(pub)")
                print("fingerprint: \(key.publicKey.fingerprint)")
            }
        }
    }

    struct Secret: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a 256-bit key for encrypting bundles at rest (bundle create --encrypt).",
            discussion: "Writes 64 hex digits, mode 0600. Only hosts given this file (apply --key) can decode the bundle."
        )
        @Option(help: "Key file to write.") var out: String
        @Flag(help: "Replace an existing key file.") var force = false

        func run() throws {
            try reportingErrors {
                let key = SymmetricKey.random()
                try KeyFiles.write(Hex.encode(key.bytes) + "\n", to: out, mode: 0o600, force: force)
                print("key:    \(out)")
                print("key id: \(Hex.encode(key.keyID))")
            }
        }
    }
}
