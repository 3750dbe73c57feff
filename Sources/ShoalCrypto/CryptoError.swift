import CShoalNative

/// An error raised by a cryptographic operation, carrying OpenSSL's error queue as text.
public struct CryptoError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var openSSLErrors: [String]

    public init(_ operation: String, drainingOpenSSLQueue: Bool = true) {
        self.operation = operation
        self.openSSLErrors = drainingOpenSSLQueue ? CryptoError.drainQueue() : []
    }

    public var description: String {
        openSSLErrors.isEmpty ? operation : "\(operation): \(openSSLErrors.joined(separator: "; "))"
    }

    /// Empties OpenSSL's thread-local error queue into readable strings.
    static func drainQueue() -> [String] {
        var result: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            var buffer = [CChar](repeating: 0, count: 256)
            ERR_error_string_n(code, &buffer, buffer.count)
            result.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return result
    }
}
