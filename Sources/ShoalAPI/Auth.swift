import Foundation
import Hummingbird
import ShoalCrypto

/// Every path except the dashboard page (`/`, `/dashboard`) needs `Authorization: Bearer TOKEN`;
/// anything else — `/api/…`, `/metrics`, and unknown paths too, so that a route's existence is
/// not revealed — is answered 401 with a JSON error and nothing more. The check is an allowlist
/// on the path's non-empty segments, so `//api/v1/status` or `/metrics/` cannot slip past it.
/// The token is compared in constant time.
public struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    public init(token: String) { self.token = Array(token.utf8) }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let segments = request.uri.path.split(separator: "/")
        let isPublic = request.method == .get && (segments.isEmpty || segments == ["dashboard"])
        if isPublic { return try await next(request, context) }
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer "),
              APIToken.equal(Array(header.dropFirst("Bearer ".count).utf8), token)
        else {
            return CoordinatorAPI.error(.unauthorized, "unauthorized: send Authorization: Bearer TOKEN (the coordinator's --http-token-file)",
                                        headers: [.wwwAuthenticate: #"Bearer realm="shoal""#])
        }
        return try await next(request, context)
    }
}

/// The API's bearer token: 32 random bytes as 64 hex digits, kept in a file of mode 0600.
public enum APIToken {
    public struct TokenError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The shortest token `load` accepts (a hand-made token must not be guessable).
    public static let minimumLength = 32

    /// A new token.
    public static func generate() -> String { Hex.encode(SecureRandom.bytes(32)) }

    /// Writes a new token to `path` (mode 0600; an existing file is not overwritten) and returns it.
    public static func create(at path: String) throws -> String {
        let token = generate()
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw TokenError(description: "cannot create \(path): \(String(cString: strerror(errno)))\(errno == EEXIST ? " (it exists; remove it to make a new token)" : "")")
        }
        defer { close(fd) }
        let line = Array((token + "\n").utf8)
        guard line.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == line.count else {
            throw TokenError(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        return token
    }

    /// The token in `path` (surrounding white space ignored). Refused when the file can be read
    /// by group or others, or the token is shorter than `minimumLength`.
    public static func load(path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw TokenError(description: "cannot read \(path): \(String(cString: strerror(errno)))") }
        if st.st_mode & 0o077 != 0 {
            throw TokenError(description: "\(path) is readable by others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw TokenError(description: "cannot read \(path)") }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard token.count >= minimumLength, !token.contains(where: { $0.isWhitespace }) else {
            throw TokenError(description: "\(path) must hold one token of at least \(minimumLength) characters (make one with `shoal coordinator token --out FILE`)")
        }
        return token
    }

    /// Constant-time comparison: the time depends on the expected token's length only.
    static func equal(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var diff = UInt8(given.count == expected.count ? 0 : 1)
        for i in 0..<expected.count {
            diff |= expected[i] ^ (i < given.count ? given[i] : 0)
        }
        return diff == 0
    }
}
