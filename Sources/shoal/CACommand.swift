import ArgumentParser
import Foundation
import ShoalTLS

struct CACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "The fleet certificate authority: every connection is checked against it.",
        discussion: """
            Every peer-to-peer and host-to-coordinator connection is TLS 1.3 with certificates from \
            this CA, checked in both directions. A host certificate names the host, its site and its \
            role; a peer whose certificate is missing, from another CA, expired, or whose claimed site \
            contradicts its certificate is refused before anything is served.
            """,
        subcommands: [Init.self, Issue.self, Show.self]
    )

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a new fleet CA in DIR (ca.pem, and ca.key with mode 0600: keep it off the hosts).")
        @Option(help: "Directory for the CA.") var dir: String
        @Option(help: "CA name (certificate subject).") var name = "Shoal fleet CA"
        @Option(help: "Validity in days.") var days = 3650

        func run() throws {
            try reportingErrors {
                do {
                    let ca = try FleetCA.create(name: name, days: days)
                    try ca.save(directory: dir)
                    print("CA:  \(dir)/\(FleetCA.certificateFile) (give to every host)")
                    print("key: \(dir)/\(FleetCA.keyFile) (0600; needed only to issue certificates)")
                } catch let error as TLSError {
                    throw CLIError(message: error.message)
                }
            }
        }
    }

    struct Issue: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a certificate for a host: writes OUT/host.pem, OUT/host.key (0600) and OUT/ca.pem.",
            discussion: "OUT is what `--tls DIR` options of seed, peer and coordinator read.")
        @Option(help: "Directory of the CA (from `shoal ca init`).") var dir: String
        @Option(help: "Host name (1-63 of A-Z a-z 0-9 . _ -).") var host: String
        @Option(help: "Site the host belongs to; part of its identity.") var site: String
        @Option(help: "Role: peer, seed, coordinator or operator.") var role = "peer"
        @Option(help: "Output directory.") var out: String
        @Option(help: "Validity in days.") var days = 825

        func validate() throws {
            guard FleetIdentity.Role(rawValue: role) != nil else {
                throw ValidationError("--role must be one of \(FleetIdentity.Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
        }

        func run() throws {
            try reportingErrors {
                do {
                    let ca = try FleetCA.load(directory: dir)
                    let identity = FleetIdentity(host: host, site: site, role: FleetIdentity.Role(rawValue: role)!)
                    try ca.issue(identity, into: out, days: days)
                    print("issued: \(identity) → \(out)/\(TLSFiles.certificateFile), \(out)/\(TLSFiles.keyFile), \(out)/\(FleetCA.certificateFile)")
                } catch let error as TLSError {
                    throw CLIError(message: error.message)
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the identity in a --tls directory's certificate.")
        @Option(help: "A --tls directory (host.pem, host.key, ca.pem).") var tls: String

        func run() throws {
            try reportingErrors {
                do {
                    let files = try TLSFiles.load(directory: tls)
                    guard let identity = files.certificate.identity else { throw CLIError(message: "\(tls)/host.pem carries no Shoal identity") }
                    print("host: \(identity.host)\nsite: \(identity.site)\nrole: \(identity.role.rawValue)")
                    if let t = files.certificate.notAfter { print("expires: \(Format.date(t))") }
                } catch let error as TLSError {
                    throw CLIError(message: error.message)
                }
            }
        }
    }
}
