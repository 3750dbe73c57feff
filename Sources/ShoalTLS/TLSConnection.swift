import CShoalNative

/// TLS settings shared by many connections: our certificate and key, the fleet CA as the only
/// trust anchor, TLS 1.3 only, and a peer certificate required in both directions.
public final class TLSContext: @unchecked Sendable {
    // Invariant: configured once in init, then only used to create SSL objects (thread-safe).
    let ctx: OpaquePointer
    /// Our own identity, from our certificate.
    public let identity: FleetIdentity

    public init(files: TLSFiles) throws {
        guard let identity = files.certificate.identity else {
            throw TLSError("host.pem carries no Shoal identity (CN/OU/O); issue it with `shoal ca issue`", drainingOpenSSL: false)
        }
        guard let ctx = SSL_CTX_new(TLS_method()) else { throw TLSError("SSL_CTX_new") }
        self.ctx = ctx
        self.identity = identity
        guard CShoalNative_SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 else { throw TLSError("TLS 1.3 not available") }
        _ = CShoalNative_SSL_CTX_set_options_no_ticket(ctx)
        guard SSL_CTX_use_certificate(ctx, files.certificate.x509) == 1 else { throw TLSError("SSL_CTX_use_certificate") }
        guard SSL_CTX_use_PrivateKey(ctx, files.key.pkey) == 1 else { throw TLSError("SSL_CTX_use_PrivateKey") }
        guard SSL_CTX_check_private_key(ctx) == 1 else { throw TLSError("host.key does not match host.pem") }
        // Only the fleet CA is trusted: no system roots.
        guard let store = X509_STORE_new() else { throw TLSError("X509_STORE_new") }
        guard X509_STORE_add_cert(store, files.ca.x509) == 1 else {
            X509_STORE_free(store)
            throw TLSError("X509_STORE_add_cert")
        }
        SSL_CTX_set_cert_store(ctx, store)
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        SSL_CTX_set_verify_depth(ctx, 2)
    }

    deinit { SSL_CTX_free(ctx) }
}

/// One TLS 1.3 session over memory BIOs: ciphertext in and out as bytes, so any transport
/// (a NIO channel, a test harness) can carry it.
///
/// Not thread-safe: one owner (a channel's event loop).
public final class TLSConnection {
    public enum Role: Sendable { case client, server }

    public enum HandshakeState: Equatable {
        case inProgress
        case complete(FleetIdentity)
    }

    let ssl: OpaquePointer
    private let readBIO: OpaquePointer
    private let writeBIO: OpaquePointer
    public let role: Role
    public private(set) var peerIdentity: FleetIdentity?
    /// How much room one `SSL_read_ex` gets: a TLS record carries at most 16 KiB of plaintext.
    static let readChunk = 16 * 1024

    public init(context: TLSContext, role: Role) throws {
        guard let ssl = SSL_new(context.ctx) else { throw TLSError("SSL_new") }
        guard let r = BIO_new(BIO_s_mem()), let w = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError("BIO_new")
        }
        // An empty memory BIO must mean "no data yet" (retry), not end of stream.
        BIO_ctrl(r, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, nil)
        BIO_ctrl(w, BIO_C_SET_BUF_MEM_EOF_RETURN, -1, nil)
        SSL_set_bio(ssl, r, w)  // ssl owns both BIOs now
        if role == .client { SSL_set_connect_state(ssl) } else { SSL_set_accept_state(ssl) }
        self.ssl = ssl
        self.readBIO = r
        self.writeBIO = w
        self.role = role
    }

    deinit { SSL_free(ssl) }

    /// Hands ciphertext received from the network to TLS.
    public func receive(ciphertext: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < ciphertext.count {
            let n = BIO_write(readBIO, ciphertext.baseAddress! + offset, Int32(min(Int(Int32.max), ciphertext.count - offset)))
            if n <= 0 { break }
            offset += Int(n)
        }
    }

    public func receive(ciphertext: [UInt8]) { ciphertext.withUnsafeBytes { receive(ciphertext: $0) } }

    /// Ciphertext waiting to be sent to the network.
    ///
    /// Read straight into the result, sized to what is pending: no per-connection scratch buffer
    /// (10,000 connections held 64 KiB each) and no second copy.
    public func takeCiphertext() -> [UInt8] {
        let pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0 else { return [] }
        return [UInt8](unsafeUninitializedCapacity: pending) { raw, count in
            var done = 0
            while done < pending {
                let n = BIO_read(writeBIO, raw.baseAddress! + done, Int32(pending - done))
                if n <= 0 { break }
                done += Int(n)
            }
            count = done
        }
    }

    /// Advances the handshake with what has been received. Send `takeCiphertext()` afterwards.
    /// - Throws: `TLSError` naming why the peer was refused (no certificate, unknown CA, expired…).
    public func handshake() throws -> HandshakeState {
        if let peerIdentity { return .complete(peerIdentity) }
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            guard let peer = SSL_get1_peer_certificate(ssl) else { throw TLSError("the peer sent no certificate", drainingOpenSSL: false) }
            let cert = Certificate(taking: peer)
            guard let identity = cert.identity else {
                throw TLSError("the peer's certificate carries no Shoal identity", drainingOpenSSL: false)
            }
            peerIdentity = identity
            return .complete(identity)
        }
        let error = SSL_get_error(ssl, rc)
        if error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE { return .inProgress }
        throw failure("TLS handshake failed")
    }

    /// Encrypts `plaintext` (call `takeCiphertext()` to send it).
    public func write(plaintext: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < plaintext.count {
            var written = 0
            let rc = SSL_write_ex(ssl, plaintext.baseAddress! + offset, plaintext.count - offset, &written)
            guard rc == 1 else { throw failure("TLS write failed") }
            offset += written
        }
    }

    public func write(plaintext: [UInt8]) throws { try plaintext.withUnsafeBytes { try write(plaintext: $0) } }

    /// Decrypts whatever complete records have arrived; `closed` is true once the peer sent close_notify.
    public func readPlaintext() throws -> (bytes: [UInt8], closed: Bool) {
        // Each record is decrypted straight into the result's tail (grown by one record's room,
        // then trimmed to what was read).
        var out: [UInt8] = []
        while true {
            var n = 0
            let start = out.count
            out.append(contentsOf: repeatElement(0, count: Self.readChunk))
            let rc = out.withUnsafeMutableBytes { SSL_read_ex(ssl, $0.baseAddress! + start, Self.readChunk, &n) }
            out.removeLast(Self.readChunk - (rc == 1 ? n : 0))
            if rc == 1 { continue }
            let error = SSL_get_error(ssl, 0)
            switch error {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return (out, false)
            case SSL_ERROR_ZERO_RETURN: return (out, true)
            default: throw failure("TLS read failed")
            }
        }
    }

    /// Queues a close_notify alert (send `takeCiphertext()` afterwards).
    public func shutdown() { _ = SSL_shutdown(ssl) }

    private func failure(_ what: String) -> TLSError {
        let verify = SSL_get_verify_result(ssl)
        if verify != X509_V_OK, let reason = X509_verify_cert_error_string(verify) {
            return TLSError("\(what): peer certificate rejected: \(String(cString: reason))")
        }
        return TLSError(what)
    }
}
