import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Glibc
import ShoalTestKit
import Testing

/// The `shoal` executable: `coordinator token`, and `coordinator --http` as a real process
/// (nothing without both options; with them, the token gate on a real port).
@Suite(.serialized) struct CoordinatorProcessTests {
    static let shoal: String = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(cString: Array(buffer[0..<max(0, n)]) + [0])
        return (exe as NSString).deletingLastPathComponent + "/shoal"
    }()

    func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: shoal), "the shoal executable is not built next to the tests"))
    func tokenCommandAndHTTPFlagsOfARealCoordinator() async throws {
        let dir = TemporaryDirectory("shoal-api-cli")
        defer { dir.remove() }
        func run(_ args: String...) throws -> ProcessResult { try ChildProcess.run(Self.shoal, args) }

        // The token: 64 hex digits in a new 0600 file; never overwritten.
        var r = try run("coordinator", "token", "--out", dir.file("api.token"))
        #expect(r.status == 0, "\(r.stderr)")
        let token = try String(contentsOfFile: dir.file("api.token"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))
        var st = stat()
        stat(dir.file("api.token"), &st)
        #expect(st.st_mode & 0o777 == 0o600)
        r = try run("coordinator", "token", "--out", dir.file("api.token"))
        #expect(r.status != 0 && r.stderr.contains("exists"), "\(r.stderr)")

        #expect(try run("ca", "init", "--dir", dir.file("ca")).status == 0)
        r = try run("ca", "issue", "--dir", dir.file("ca"), "--host", "coordinator", "--site", "origin", "--role", "coordinator", "--out", dir.file("tls"))
        #expect(r.status == 0, "\(r.stderr)")
        try Fleet.yaml.write(toFile: dir.file("topology.yaml"), atomically: true, encoding: .utf8)
        let httpPort = freePort()
        let base = ["coordinator", "--topology", dir.file("topology.yaml"), "--listen", "127.0.0.1:\(freePort())", "--tls", dir.file("tls"),
                    "--state", dir.file("state.db")]

        // One option without the other: refused before anything listens.
        r = try ChildProcess.run(Self.shoal, base + ["--http", "127.0.0.1:\(httpPort)"])
        #expect(r.status == 64 && r.stderr.contains("--http-token-file"), "\(r.status) \(r.stderr)")
        r = try ChildProcess.run(Self.shoal, base + ["--http-token-file", dir.file("api.token")])
        #expect(r.status == 64, "\(r.stderr)")
        // A token file others can read: refused.
        FileManager.default.createFile(atPath: dir.file("open.token"), contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o644])
        r = try ChildProcess.run(Self.shoal, base + ["--http", "\(httpPort)", "--http-token-file", dir.file("open.token")])
        #expect(r.status != 0 && r.stderr.contains("chmod 600"), "\(r.stderr)")

        // Both: the API answers on the port, behind the token.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.shoal)
        process.arguments = base + ["--http", "\(httpPort)", "--http-token-file", dir.file("api.token")]
        process.standardOutput = FileHandle.nullDevice
        FileManager.default.createFile(atPath: dir.file("log"), contents: nil)
        process.standardError = FileHandle(forWritingAtPath: dir.file("log"))
        try process.run()
        defer {
            if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        }
        let session = URLSession(configuration: .ephemeral)
        func get(_ path: String, token: String?) async throws -> Int {
            var request = URLRequest(url: URL(string: "http://127.0.0.1:\(httpPort)\(path)")!)
            if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
            let (_, response) = try await session.data(for: request)
            return (response as! HTTPURLResponse).statusCode
        }
        // A busy machine (the whole suite beside it) can take well over 30 s to start a coordinator.
        let deadline = Date().addingTimeInterval(120)
        var status = 0
        while Date() < deadline {
            if let s = try? await get("/api/v1/status", token: token) { status = s; break }
            try await Task.sleep(for: .milliseconds(200))
        }
        let log = { (try? String(contentsOfFile: dir.file("log"), encoding: .utf8)) ?? "" }
        #expect(status == 200, "\(log())")
        #expect(try await get("/api/v1/status", token: nil) == 401)
        #expect(try await get("/metrics", token: "x") == 401)
        #expect(try await get("/dashboard", token: nil) == 200)
        #expect(log().contains("HTTP API and dashboard on http://127.0.0.1:\(httpPort)/dashboard"), "\(log())")
        #expect(!log().contains(token))
        // SIGTERM stops both listeners.
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(log())")
        #expect((try? await get("/dashboard", token: nil)) == nil)
    }
}
