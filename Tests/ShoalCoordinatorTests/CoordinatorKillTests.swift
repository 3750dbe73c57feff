import Foundation
import Glibc
import NIOCore
import NIOPosix
import ShoalCoordinator
import ShoalNet
import ShoalTestKit
import ShoalTLS
import ShoalWire
import Testing

/// The `shoal` executable built next to this test binary.
enum CoordinatorExecutable {
    static let path: String = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(cString: Array(buffer[0..<max(0, n)]) + [0])
        return (exe as NSString).deletingLastPathComponent + "/shoal"
    }()
}

/// A real `shoal coordinator` process is killed with SIGKILL right after it answered a publish and
/// an order: started again on the same database, it still has both.
@Suite(.serialized) struct CoordinatorKillTests {
    /// A coordinator child process; its stderr goes to `log`.
    final class Coordinator {
        let process = Process()
        let log: String
        init(_ arguments: [String], log: String) throws {
            self.log = log
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.executableURL = URL(fileURLWithPath: CoordinatorExecutable.path)
            process.arguments = arguments
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle(forWritingAtPath: log)
            try process.run()
        }
        var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func kill9() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    /// Connects as `tls`, retrying while the coordinator starts.
    func connect(_ address: String, _ tls: TLSContext, _ group: any EventLoopGroup) throws -> ControlClient {
        let deadline = Date().addingTimeInterval(20)
        while true {
            do { return try ControlClient.connect(to: address, tls: tls, group: group).wait() } catch {
                if Date() > deadline { throw error }
                usleep(100_000)
            }
        }
    }

    @Test func publishAndOrderSurviveAKill9() throws {
        let dir = TemporaryDirectory("coordinator-kill9")
        defer { dir.remove() }
        func shoal(_ args: String...) throws -> ProcessResult { try ChildProcess.run(CoordinatorExecutable.path, args) }
        #expect(try shoal("ca", "init", "--dir", dir.file("ca")).status == 0)
        for (host, site, role) in [("coordinator", "origin", "coordinator"), ("ops", "origin", "operator")] {
            let r = try shoal("ca", "issue", "--dir", dir.file("ca"), "--host", host, "--site", site, "--role", role, "--out", dir.file("tls-\(host)"))
            #expect(r.status == 0, "\(r.stderr)")
        }
        try TrackerTests.yaml.write(toFile: dir.file("topology.yaml"), atomically: true, encoding: .utf8)
        let address = "127.0.0.1:\(try freePort())"
        let database = dir.file("coordinator.db")
        let arguments = ["coordinator", "--topology", dir.file("topology.yaml"), "--listen", address, "--tls", dir.file("tls-coordinator"),
                         "--state", database]
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let opsTLS = try TLSContext(files: try TLSFiles.load(directory: dir.file("tls-ops")))

        let first = try Coordinator(arguments, log: dir.file("coordinator-1.log"))
        defer { first.kill9() }
        let ops = try connect(address, opsTLS, group)
        let (manifest, id) = try TrackerTests().manifestB64()
        let order = OperationOrder(id: "conv-9", kind: "convert", stagingBundle: "aa", targetBundle: "bb")
        guard case .published(let got, _) = try ops.send(.publish(manifest: manifest, seedHost: "seed", selector: "site=a")).wait(),
              case .operation(let ordered) = try ops.send(.orderOperation(host: "a1", request: order)).wait() else {
            Issue.record("publish or order refused: \(first.output)"); return
        }
        #expect(got == id && ordered.order == order)
        first.kill9()  // at once: no stop, no flush
        ops.close()
        #expect(first.process.terminationReason == .uncaughtSignal && first.process.terminationStatus == SIGKILL)

        let second = try Coordinator(arguments, log: dir.file("coordinator-2.log"))
        defer { second.kill9() }
        let again = try connect(address, opsTLS, group)
        defer { again.close() }
        guard case .status(let status) = try again.send(.status).wait() else { Issue.record("status refused"); return }
        #expect(status.bundles == [id], "\(second.output)")
        guard case .operation(let op) = try again.send(.operationStatus(host: "a1")).wait() else { Issue.record("operationStatus refused"); return }
        #expect(op.order == order && op.orderedBy == "ops" && op.pending, "\(op)")
        #expect(!second.output.contains("imported"), "\(second.output)")
    }

    @Test func aFileThatIsNeitherJSONNorSQLiteStopsTheCoordinator() throws {
        let dir = TemporaryDirectory("coordinator-badstate")
        defer { dir.remove() }
        #expect(try ChildProcess.run(CoordinatorExecutable.path, ["ca", "init", "--dir", dir.file("ca")]).status == 0)
        #expect(try ChildProcess.run(CoordinatorExecutable.path, ["ca", "issue", "--dir", dir.file("ca"), "--host", "coordinator", "--site", "origin",
                                                                  "--role", "coordinator", "--out", dir.file("tls")]).status == 0)
        try TrackerTests.yaml.write(toFile: dir.file("topology.yaml"), atomically: true, encoding: .utf8)
        let junk = Data("hosts: [a1]\nnot a database\n".utf8)
        try junk.write(to: URL(fileURLWithPath: dir.file("state.db")))
        let r = try ChildProcess.run(CoordinatorExecutable.path, [
            "coordinator", "--topology", dir.file("topology.yaml"), "--listen", "127.0.0.1:\(try freePort())", "--tls", dir.file("tls"),
            "--state", dir.file("state.db"),
        ])
        #expect(r.status != 0 && r.stderr.contains("is not a SQLite database"), "\(r.status) \(r.stderr)")
        #expect(FileManager.default.contents(atPath: dir.file("state.db")) == junk)
    }

    /// A TCP port free on loopback now.
    func freePort() throws -> Int {
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
}
