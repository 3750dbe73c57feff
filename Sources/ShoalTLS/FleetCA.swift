import CShoalNative
import Foundation
import ShoalCrypto

/// The fleet's certificate authority: issues the certificates every connection is checked against.
///
/// Keys are Ed25519; certificates are X.509 v3 signed by the CA (TLS 1.3 signature scheme ed25519).
/// A host certificate names the host (CN and DNS SAN), its site (OU) and its role (O = "shoal ROLE").
public struct FleetCA: Sendable {
    public let certificate: Certificate
    let key: PrivateKey

    public static let certificateFile = "ca.pem"
    public static let keyFile = "ca.key"

    /// Creates a new CA (self-signed, valid `days` days).
    public static func create(name: String = "Shoal fleet CA", days: Int = 3650) throws -> FleetCA {
        let key = try PrivateKey.generateEd25519()
        let cert = try CertificateBuilder.build(
            subject: [(NID_commonName, name), (NID_organizationName, "shoal ca")], issuer: nil, publicKey: key, signingKey: key,
            notBeforeOffset: -3600, notAfterOffset: Int64(days) * 86400, isCA: true, dnsName: nil)
        return FleetCA(certificate: cert, key: key)
    }

    public init(certificate: Certificate, key: PrivateKey) {
        self.certificate = certificate
        self.key = key
    }

    /// Loads `ca.pem` and `ca.key` from `directory`.
    public static func load(directory: String) throws -> FleetCA {
        let cert = try Certificate(pem: try readText(directory + "/" + certificateFile))
        let key = try PrivateKey(pem: try readText(directory + "/" + keyFile))
        return FleetCA(certificate: cert, key: key)
    }

    /// Writes `ca.pem` (0644) and `ca.key` (0600) into `directory`, refusing to overwrite.
    public func save(directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeText(certificate.pemRepresentation, to: directory + "/" + FleetCA.certificateFile, mode: 0o644)
        try writeText(key.pemRepresentation, to: directory + "/" + FleetCA.keyFile, mode: 0o600)
    }

    /// Issues a certificate for `identity`.
    /// - Parameters:
    ///   - notBeforeOffset/notAfterOffset: validity relative to now, in seconds (tests use a past
    ///     window to make expired certificates).
    public func issue(_ identity: FleetIdentity, days: Int = 825, notBeforeOffset: Int64 = -3600, notAfterOffset: Int64? = nil) throws -> (Certificate, PrivateKey) {
        guard FleetIdentity.isValidName(identity.host) else { throw TLSError("invalid host name \"\(identity.host)\" (1-63 of A-Z a-z 0-9 . _ -)", drainingOpenSSL: false) }
        guard FleetIdentity.isValidName(identity.site) else { throw TLSError("invalid site name \"\(identity.site)\" (1-63 of A-Z a-z 0-9 . _ -)", drainingOpenSSL: false) }
        let key = try PrivateKey.generateEd25519()
        let cert = try CertificateBuilder.build(
            subject: [(NID_commonName, identity.host), (NID_organizationalUnitName, identity.site), (NID_organizationName, "shoal \(identity.role.rawValue)")],
            issuer: certificate, publicKey: key, signingKey: self.key,
            notBeforeOffset: notBeforeOffset, notAfterOffset: notAfterOffset ?? Int64(days) * 86400, isCA: false, dnsName: identity.host)
        return (cert, key)
    }

    /// Issues and writes `DIR/host.pem`, `DIR/host.key` (0600) and a copy of `DIR/ca.pem`:
    /// the layout every `--tls DIR` option reads.
    public func issue(_ identity: FleetIdentity, into directory: String, days: Int = 825) throws {
        let (cert, key) = try issue(identity, days: days)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeText(certificate.pemRepresentation, to: directory + "/" + FleetCA.certificateFile, mode: 0o644, overwrite: true)
        try writeText(cert.pemRepresentation, to: directory + "/" + TLSFiles.certificateFile, mode: 0o644)
        try writeText(key.pemRepresentation, to: directory + "/" + TLSFiles.keyFile, mode: 0o600)
    }
}

/// The files of a `--tls DIR`: `ca.pem` (the fleet CA), `host.pem`, `host.key`.
public struct TLSFiles: Sendable {
    public static let certificateFile = "host.pem"
    public static let keyFile = "host.key"

    public let ca: Certificate
    public let certificate: Certificate
    public let key: PrivateKey

    public init(ca: Certificate, certificate: Certificate, key: PrivateKey) {
        self.ca = ca
        self.certificate = certificate
        self.key = key
    }

    public static func load(directory: String) throws -> TLSFiles {
        TLSFiles(
            ca: try Certificate(pem: try readText(directory + "/" + FleetCA.certificateFile)),
            certificate: try Certificate(pem: try readText(directory + "/" + certificateFile)),
            key: try PrivateKey(pem: try readText(directory + "/" + keyFile)))
    }
}

func readText(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else { throw TLSError("cannot read \(path)", drainingOpenSSL: false) }
    return String(decoding: data, as: UTF8.self)
}

func writeText(_ text: String, to path: String, mode: mode_t, overwrite: Bool = false) throws {
    do {
        try KeyFile.write(text, to: path, mode: mode, overwrite: overwrite)
    } catch {
        throw TLSError(error.description, drainingOpenSSL: false)
    }
}

enum CertificateBuilder {
    static func build(
        subject: [(Int32, String)], issuer: Certificate?, publicKey: PrivateKey, signingKey: PrivateKey,
        notBeforeOffset: Int64, notAfterOffset: Int64, isCA: Bool, dnsName: String?
    ) throws -> Certificate {
        guard let x = X509_new() else { throw TLSError("X509_new") }
        let cert = Certificate(taking: x)
        guard X509_set_version(x, 2) == 1 else { throw TLSError("X509_set_version") }
        // 128-bit random serial (positive).
        var serialBytes = SecureRandom.bytes(16)
        serialBytes[0] &= 0x7F
        guard let bn = BN_bin2bn(serialBytes, 16, nil) else { throw TLSError("BN_bin2bn") }
        defer { BN_free(bn) }
        guard BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != nil else { throw TLSError("serial") }
        guard X509_gmtime_adj(X509_getm_notBefore(x), Int(notBeforeOffset)) != nil,
            X509_gmtime_adj(X509_getm_notAfter(x), Int(notAfterOffset)) != nil
        else { throw TLSError("validity") }
        guard X509_set_pubkey(x, publicKey.pkey) == 1 else { throw TLSError("X509_set_pubkey") }
        let name = X509_get_subject_name(x)
        for (nid, value) in subject {
            let bytes = Array(value.utf8)
            guard X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, bytes, Int32(bytes.count), -1, 0) == 1 else {
                throw TLSError("subject entry \(value)")
            }
        }
        let issuerName = issuer.map { X509_get_subject_name($0.x509) } ?? name
        guard X509_set_issuer_name(x, issuerName) == 1 else { throw TLSError("X509_set_issuer_name") }

        var ctx = X509V3_CTX()
        X509V3_set_ctx(&ctx, issuer?.x509 ?? x, x, nil, nil, 0)
        var extensions: [(Int32, String)] = [
            (NID_subject_key_identifier, "hash"),
        ]
        if isCA {
            extensions += [(NID_basic_constraints, "critical,CA:TRUE,pathlen:0"), (NID_key_usage, "critical,keyCertSign,cRLSign")]
        } else {
            extensions += [
                (NID_basic_constraints, "critical,CA:FALSE"), (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, "serverAuth,clientAuth"), (NID_authority_key_identifier, "keyid:always"),
            ]
            if let dnsName { extensions.append((NID_subject_alt_name, "DNS:\(dnsName)")) }
        }
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &ctx, nid, value) else { throw TLSError("extension \(value)") }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(x, ext, -1) == 1 else { throw TLSError("X509_add_ext") }
        }
        // Ed25519 signs the message itself: no digest.
        guard X509_sign(x, signingKey.pkey, nil) > 0 else { throw TLSError("X509_sign") }
        return cert
    }
}
