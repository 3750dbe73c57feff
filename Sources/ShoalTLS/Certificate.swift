import CShoalNative
import ShoalCrypto

/// Who is at the other end of a connection, as the fleet CA certified it.
///
/// Encoded in the certificate subject: `CN=<host>`, `OU=<site>`, `O=shoal <role>`; the host name
/// is also a DNS subject alternative name (so `openssl s_client -verify_hostname` works).
public struct FleetIdentity: Equatable, Hashable, Sendable, CustomStringConvertible {
    public enum Role: String, Sendable, CaseIterable { case peer, seed, coordinator, operator_ = "operator" }
    public var host: String
    public var site: String
    public var role: Role

    public init(host: String, site: String, role: Role) {
        self.host = host
        self.site = site
        self.role = role
    }

    public var description: String { "\(role.rawValue) \(host) (site \(site))" }

    /// Host and site names: 1–63 characters of `[A-Za-z0-9._-]`.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 63 && name.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2E || c == 0x5F || c == 0x2D
        }
    }
}

public struct TLSError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String, drainingOpenSSL: Bool = true) {
        var m = message
        if drainingOpenSSL {
            let errors = CryptoError("").openSSLErrors
            if !errors.isEmpty { m += ": " + errors.joined(separator: "; ") }
        }
        self.message = m
    }
    public var description: String { message }
}

/// An X.509 certificate (OpenSSL `X509*`), freed on deinit.
public final class Certificate: @unchecked Sendable {
    // Invariant: publicly immutable; OpenSSL's read accessors used here are thread-safe.
    let x509: OpaquePointer

    init(taking x509: OpaquePointer) { self.x509 = x509 }

    deinit { X509_free(x509) }

    public convenience init(pem: String) throws {
        var bytes = Array(pem.utf8)
        let cert: OpaquePointer? = bytes.withUnsafeMutableBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_X509(bio, nil, nil, nil)
        }
        guard let cert else { throw TLSError("not a PEM certificate") }
        self.init(taking: cert)
    }

    public var pemRepresentation: String {
        memoryBIOString { bio in PEM_write_bio_X509(bio, x509) }
    }

    /// The fleet identity in the subject, or nil when the subject is not a Shoal identity.
    public var identity: FleetIdentity? {
        guard let name = X509_get_subject_name(x509),
            let host = Certificate.entry(name, NID_commonName),
            let site = Certificate.entry(name, NID_organizationalUnitName),
            let org = Certificate.entry(name, NID_organizationName), org.hasPrefix("shoal "),
            let role = FleetIdentity.Role(rawValue: String(org.dropFirst(6)))
        else { return nil }
        return FleetIdentity(host: host, site: site, role: role)
    }

    public var subjectCommonName: String? {
        X509_get_subject_name(x509).flatMap { Certificate.entry($0, NID_commonName) }
    }

    /// Seconds since the epoch of notAfter.
    public var notAfter: Int64? {
        guard let t = X509_get0_notAfter(x509) else { return nil }
        var tm = tm()
        guard ASN1_TIME_to_tm(t, &tm) == 1 else { return nil }
        return Int64(timegm(&tm))
    }

    static func entry(_ name: OpaquePointer, _ nid: Int32) -> String? {
        let index = X509_NAME_get_index_by_NID(name, nid, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index), let data = X509_NAME_ENTRY_get_data(entry) else { return nil }
        guard let p = ASN1_STRING_get0_data(data) else { return nil }
        return String(decoding: UnsafeBufferPointer(start: p, count: Int(ASN1_STRING_length(data))), as: UTF8.self)
    }
}

/// A private key (OpenSSL `EVP_PKEY*`) for TLS, freed on deinit.
public final class PrivateKey: @unchecked Sendable {
    // Invariant: immutable after init.
    let pkey: OpaquePointer

    init(taking pkey: OpaquePointer) { self.pkey = pkey }
    deinit { EVP_PKEY_free(pkey) }

    /// A new Ed25519 key.
    public static func generateEd25519() throws -> PrivateKey {
        let seed = SecureRandom.bytes(32)
        guard let k = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, seed, 32) else { throw TLSError("EVP_PKEY_new_raw_private_key") }
        return PrivateKey(taking: k)
    }

    public convenience init(pem: String) throws {
        var bytes = Array(pem.utf8)
        let key: OpaquePointer? = bytes.withUnsafeMutableBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else { throw TLSError("not a PEM private key") }
        self.init(taking: key)
    }

    public var pemRepresentation: String {
        memoryBIOString { bio in PEM_write_bio_PrivateKey(bio, pkey, nil, nil, 0, nil, nil) }
    }
}

func memoryBIOString(_ body: (OpaquePointer) -> Int32) -> String { PEM.write(body) }
