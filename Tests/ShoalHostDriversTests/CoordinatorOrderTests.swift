import Foundation
import Glibc
import ShoalHostLab
import ShoalTestKit
import Testing

/// A background `shoal` process (coordinator, peer), its stderr in a file, ended by its pid.
final class Daemon {
    let process = Process()
    let logPath: String

    init(_ arguments: [String], log: String) throws {
        logPath = log
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        process.executableURL = URL(fileURLWithPath: ShoalExecutable.path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<50 where process.isRunning { usleep(100_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A TCP port free on loopback now.
func freeLoopbackPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Orders through the coordinator, end to end with real processes on loopback: a coordinator, a
/// `shoal peer --lab` running the host agent, an operator's `shoal host convert --coordinator`.
@Suite(.serialized) struct CoordinatorOrderTests {
    @Test func anOperatorConvertsALabHostThroughTheCoordinator() throws {
        let world = try LabWorld.make("driver-orders")
        defer { world.remove() }
        let dir = world.dir
        func shoal(_ args: [String]) throws -> ProcessResult { try ChildProcess.run(ShoalExecutable.path, args) }
        func shoal(_ args: String...) throws -> ProcessResult { try shoal(args) }

        // The fleet: CA, certificates, topology (web-01 runs the lab driver, b-01 has none).
        #expect(try shoal("ca", "init", "--dir", dir.file("ca")).status == 0)
        for (host, site, role) in [("coordinator", "origin", "coordinator"), ("ops", "origin", "operator"), ("web-01", "a", "peer"), ("b-01", "a", "peer")] {
            let r = try shoal("ca", "issue", "--dir", dir.file("ca"), "--host", host, "--site", site, "--role", role, "--out", dir.file("tls-\(host)"))
            #expect(r.status == 0, "\(r.stderr)")
        }
        try """
            origin: { name: origin, uplink: 1Gbit, seeds: [seed] }
            sites:
              - { name: a, wan: 1Gbit, host_link: 1Gbit }
            hosts:
              - { name: web-01, site: a }
              - { name: b-01, site: a }
            """.write(toFile: dir.file("topology.yaml"), atomically: true, encoding: .utf8)

        // The lab host, made with the CLI: alpha on its disk, beta imported into its packed store.
        try LabWorld.ipAddressJSON.write(toFile: dir.file("ip-address.json"), atomically: true, encoding: .utf8)
        try LabWorld.ipRouteJSON.write(toFile: dir.file("ip-route.json"), atomically: true, encoding: .utf8)
        let hostDir = dir.file("web-01")
        var r = try shoal("host", "lab-create", "--lab", hostDir, "--base-bundle", dir.file("alpha.shoal"), "--bundle", dir.file("beta.shoal"),
                          "--ip-address", dir.file("ip-address.json"), "--ip-route", dir.file("ip-route.json"))
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")

        let port = freeLoopbackPort()
        let coordinatorAddress = "127.0.0.1:\(port)"
        let coordinator = try Daemon(["coordinator", "--topology", dir.file("topology.yaml"), "--listen", coordinatorAddress,
                                      "--tls", dir.file("tls-coordinator"), "--state", dir.file("coordinator.db")], log: dir.file("coordinator.log"))
        defer { coordinator.stop() }
        usleep(500_000)
        let peer = try Daemon(["peer", "--listen", "127.0.0.1:\(freeLoopbackPort())", "--coordinator", coordinatorAddress,
                               "--tls", dir.file("tls-web-01"), "--store", hostDir + "/bundles", "--lab", hostDir,
                               "--agent-state", dir.file("web-01-state"), "--announce-interval", "0.5"], log: dir.file("peer.log"))
        defer { peer.stop() }
        let bare = try Daemon(["peer", "--listen", "127.0.0.1:\(freeLoopbackPort())", "--coordinator", coordinatorAddress,
                               "--tls", dir.file("tls-b-01"), "--store", dir.file("b-01-store"), "--announce-interval", "0.5"], log: dir.file("bare.log"))
        defer { bare.stop() }

        let remote = ["--coordinator", coordinatorAddress, "--tls", dir.file("tls-ops")]
        func status(_ host: String) throws -> [String: Any] {
            let r = try ChildProcess.run(ShoalExecutable.path, ["host", "status"] + remote + ["--host", host, "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        }
        func waitFor(_ host: String, _ id: String, seconds: Double) throws -> [String: Any] {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if let p = try status(host)["progress"] as? [String: Any], p["id"] as? String == id, p["status"] as? String != "running" { return p }
                usleep(500_000)
            }
            return try status(host)["progress"] as? [String: Any] ?? [:]
        }

        // A peer certificate may not order.
        r = try shoal(["host", "convert", "--coordinator", coordinatorAddress, "--tls", dir.file("tls-b-01"), "--host", "web-01",
                       "--id", "evil", "--staging-bundle", dir.file("alpha.shoal"), "--target-bundle", dir.file("beta.shoal")])
        #expect(r.status == 2 && r.stderr.contains("only operators order operations"), "\(r.stderr)")

        // The operator orders the conversion; the peer's agent runs it; the status says succeeded.
        let t0 = Date()
        r = try shoal(["host", "convert"] + remote + ["--host", "web-01", "--id", "conv-1", "--health-timeout", "60",
                                                     "--staging-bundle", dir.file("alpha.shoal"), "--target-bundle", dir.file("beta.shoal")])
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("conv-1 (convert)"), "\(r.stdout)")
        // A second order while conv-1 is unfinished: refused, clearly.
        r = try shoal(["host", "revert"] + remote + ["--host", "web-01", "--id", "rev-1", "--staging-bundle", dir.file("alpha.shoal")])
        #expect(r.status == 2 && r.stderr.contains("unfinished operation conv-1"), "\(r.stderr)")

        let progress = try waitFor("web-01", "conv-1", seconds: 180)
        let seconds = Date().timeIntervalSince(t0)
        #expect(progress["status"] as? String == "succeeded", "\(progress)\n--- peer:\n\(peer.log)\n--- coordinator:\n\(coordinator.log)")
        #expect(progress["hostLeftIn"] as? String == "target")
        #expect((progress["log"] as? [String])?.contains { $0.contains("commitTarget done") } == true, "\(progress)")
        print("convert through the coordinator: \(String(format: "%.1f", seconds)) s from the order to the reported outcome")

        // The lab host booted the target, with the base OS's identity.
        let host = LabHost(directory: hostDir)
        #expect(try host.bootedOS().osRelease.id == "beta")
        #expect(try host.readFile("target", "/etc/ssh/ssh_host_ed25519_key") == world.host.readFile("base", "/etc/ssh/ssh_host_ed25519_key"))
        #expect(FileManager.default.fileExists(atPath: dir.file("web-01-state") + "/agent"))
        #expect(peer.log.contains("taking operation conv-1"))

        // The same order again starts nothing (idempotent by id); `shoal status` shows the operation.
        let boots = host.bootLog().count
        r = try shoal(["host", "convert"] + remote + ["--host", "web-01", "--id", "conv-1", "--health-timeout", "60",
                                                     "--staging-bundle", dir.file("alpha.shoal"), "--target-bundle", dir.file("beta.shoal")])
        #expect(r.status == 0, "\(r.stderr)")
        usleep(1_500_000)
        #expect(host.bootLog().count == boots)
        r = try shoal(["status"] + remote)
        #expect(r.status == 0 && r.stdout.contains("operations:") && r.stdout.contains("conv-1 (convert) succeeded"), "\(r.stdout)\n\(r.stderr)")

        // A peer without a driver refuses the order and says why; the host is free for the next.
        r = try shoal(["host", "revert"] + remote + ["--host", "b-01", "--id", "rev-b", "--staging-bundle", dir.file("alpha.shoal"), "--wait"])
        #expect(r.status == 2 && r.stdout.contains("state: refused") && r.stdout.contains("no driver"), "\(r.stdout)\n\(r.stderr)")
        // Usage: --coordinator needs --tls and --host, and does not mix with --lab.
        r = try shoal(["host", "status", "--coordinator", coordinatorAddress, "--tls", dir.file("tls-ops")])
        #expect(r.status == 64 && r.stderr.contains("--host NAME"), "\(r.stderr)")
        r = try shoal(["host", "status"] + remote + ["--host", "b-01", "--lab", hostDir])
        #expect(r.status == 64, "\(r.stderr)")
        let refused = try waitFor("b-01", "rev-b", seconds: 30)
        #expect(refused["status"] as? String == "refused" && (refused["message"] as? String ?? "").contains("no driver"), "\(refused)\n\(bare.log)")
    }
}

extension CoordinatorOrderTests {
    /// The peer is killed (-9) while its agent runs an ordered conversion and started again: the
    /// new peer resumes the operation from its store and reports the outcome; the order is not
    /// run twice.
    @Test func aPeerKilledMidOperationResumesIt() throws {
        let world = try LabWorld.make("driver-orders-kill")
        defer { world.remove() }
        let dir = world.dir
        func shoal(_ args: [String]) throws -> ProcessResult { try ChildProcess.run(ShoalExecutable.path, args) }
        #expect(try shoal(["ca", "init", "--dir", dir.file("ca")]).status == 0)
        for (host, site, role) in [("coordinator", "origin", "coordinator"), ("ops", "origin", "operator"), ("web-01", "a", "peer")] {
            #expect(try shoal(["ca", "issue", "--dir", dir.file("ca"), "--host", host, "--site", site, "--role", role, "--out", dir.file("tls-\(host)")]).status == 0)
        }
        try """
            origin: { name: origin, uplink: 1Gbit, seeds: [seed] }
            sites:
              - { name: a, wan: 1Gbit, host_link: 1Gbit }
            hosts:
              - { name: web-01, site: a }
            """.write(toFile: dir.file("topology.yaml"), atomically: true, encoding: .utf8)
        let hostDir = world.host.directory  // LabWorld's host: alpha running, beta in its store
        let address = "127.0.0.1:\(freeLoopbackPort())"
        let coordinator = try Daemon(["coordinator", "--topology", dir.file("topology.yaml"), "--listen", address,
                                      "--tls", dir.file("tls-coordinator"), "--state", dir.file("coordinator.db")], log: dir.file("coordinator.log"))
        defer { coordinator.stop() }
        usleep(500_000)
        let peerArgs = ["peer", "--listen", "127.0.0.1:\(freeLoopbackPort())", "--coordinator", address, "--tls", dir.file("tls-web-01"),
                        "--store", hostDir + "/bundles", "--lab", hostDir, "--announce-interval", "0.2"]
        var peer = try Daemon(peerArgs, log: dir.file("peer1.log"))
        defer { peer.stop() }
        let remote = ["--coordinator", address, "--tls", dir.file("tls-ops"), "--host", "web-01"]
        var r = try shoal(["host", "convert"] + remote + ["--id", "conv-k", "--health-timeout", "60",
                                                       "--staging-bundle", world.alphaBundle, "--target-bundle", world.betaBundle])
        #expect(r.status == 0, "\(r.stderr)")

        // Kill the peer as soon as its agent has started the operation.
        let store = hostDir + "/state/agent"
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, !peer.log.contains("taking operation conv-k") { usleep(20_000) }
        usleep(300_000)
        kill(peer.process.processIdentifier, SIGKILL)
        peer.process.waitUntilExit()
        let statusAtKill = try shoal(["host", "status", "--state", hostDir + "/state", "--json"])
        let finishedAtKill = statusAtKill.stdout.contains("\"outcome\" : {")
        #expect(FileManager.default.fileExists(atPath: store))

        peer = try Daemon(peerArgs, log: dir.file("peer2.log"))
        var progress: [String: Any] = [:]
        let until = Date().addingTimeInterval(120)
        while Date() < until {
            r = try shoal(["host", "status"] + remote + ["--json"])
            let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
            progress = json["progress"] as? [String: Any] ?? [:]
            if progress["id"] as? String == "conv-k", progress["status"] as? String != "running" { break }
            usleep(300_000)
        }
        #expect(progress["status"] as? String == "succeeded", "\(progress)\n--- peer 2:\n\(peer.log)")
        #expect(try world.host.bootedOS().osRelease.id == "beta")
        if !finishedAtKill {
            #expect(peer.log.contains("resuming operation conv-k"), "\(peer.log)")
        }
        #expect(!peer.log.contains("taking operation conv-k"), "the order ran twice:\n\(peer.log)")
        print("killed \(finishedAtKill ? "after" : "during") the operation")
    }
}
