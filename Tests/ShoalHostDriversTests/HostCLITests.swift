import Foundation
import Glibc
import ShoalAgent
import ShoalHostLab
import ShoalTestKit
import Testing

/// The `shoal` executable built next to this test binary.
enum ShoalExecutable {
    static let path: String = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(cString: Array(buffer[0..<max(0, n)]) + [0])
        return (exe as NSString).deletingLastPathComponent + "/shoal"
    }()

    static func run(_ arguments: String...) throws -> ProcessResult { try ChildProcess.run(path, arguments) }
}

@Suite(.serialized) struct HostCLITests {
    @Test func hostConvertAndStatusOnALabHost() throws {
        let world = try LabWorld.make("driver-cli")
        defer { world.remove() }
        let hostDir = world.host.directory

        // Without a driver: refused, and says why.
        var r = try ShoalExecutable.run("host", "convert", "--staging-bundle", world.alphaBundle, "--target-bundle", world.betaBundle)
        #expect(r.status == 64)
        #expect(r.stderr.contains("linux driver") && r.stderr.contains("--lab"))

        r = try ShoalExecutable.run("host", "status", "--lab", hostDir)
        #expect(r.status == 0 && r.stdout.contains("no operation"), "\(r.stderr)")

        // A bundle given as a file is imported into the store; the other by id.
        r = try ShoalExecutable.run(
            "host", "convert", "--lab", hostDir, "--id", "cli-1",
            "--staging-bundle", world.dir.file("alpha.shoal"), "--target-bundle", world.betaBundle)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("state: succeeded (code 0)"))
        #expect(r.stdout.contains("200  commitTarget done"))
        #expect(r.stderr.contains("the firmware booted staging") && r.stderr.contains("the firmware booted target"))
        #expect(try world.host.bootedOS().osRelease.id == "beta")

        r = try ShoalExecutable.run("host", "status", "--lab", hostDir, "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["id"] as? String == "cli-1")
        #expect((json?["outcome"] as? [String: Any])?["result"] as? String == "succeeded")
        let log = json?["log"] as? [[String: Any]] ?? []
        #expect(log.count == 30 && log.allSatisfy { $0["at"] is String && $0["code"] is Int })

        // The same id again: the finished operation is shown, nothing runs again.
        let boots = world.host.bootLog().count
        r = try ShoalExecutable.run(
            "host", "convert", "--lab", hostDir, "--id", "cli-1",
            "--staging-bundle", world.alphaBundle, "--target-bundle", world.betaBundle)
        #expect(r.status == 0 && world.host.bootLog().count == boots, "\(r.stderr)")

        // A missing bundle is refused at preflight (exit 2), nothing changed.
        r = try ShoalExecutable.run(
            "host", "reinstall", "--lab", hostDir, "--id", "cli-2",
            "--staging-bundle", world.alphaBundle, "--target-bundle", String(repeating: "ab", count: 32))
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("401"))
        #expect(try world.host.bootedOS().osRelease.id == "beta" && world.host.bootLog().count == boots)
    }

    /// Only the CLI: a lab host made from bundles, converted, reverted, its status read.
    @Test func labCreateConvertRevertWithTheCLIOnly() throws {
        let world = try LabWorld.make("driver-cli2")
        defer { world.remove() }
        try LabWorld.ipAddressJSON.write(toFile: world.dir.file("ip-address.json"), atomically: true, encoding: .utf8)
        try LabWorld.ipRouteJSON.write(toFile: world.dir.file("ip-route.json"), atomically: true, encoding: .utf8)
        let hostDir = world.dir.file("cli-host")
        let alpha = world.dir.file("alpha.shoal"), beta = world.dir.file("beta.shoal")
        var r = try ShoalExecutable.run(
            "host", "lab-create", "--lab", hostDir, "--base-bundle", alpha,
            "--ip-address", world.dir.file("ip-address.json"), "--ip-route", world.dir.file("ip-route.json"))
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stdout.contains("runs base: Shoal Lab Alpha 1"))
        r = try ShoalExecutable.run("host", "lab-create", "--lab", hostDir, "--base-bundle", alpha)
        #expect(r.status == 64)  // never over an existing host

        r = try ShoalExecutable.run("host", "convert", "--lab", hostDir, "--staging-bundle", alpha, "--target-bundle", beta)
        #expect(r.status == 0 && r.stdout.contains("state: succeeded"), "\(r.stdout)\n\(r.stderr)")
        r = try ShoalExecutable.run("host", "revert", "--lab", hostDir, "--staging-bundle", alpha, "--json")
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["kind"] as? String == "revert")
        r = try ShoalExecutable.run("host", "status", "--state", hostDir + "/state")
        #expect(r.status == 0 && r.stdout.contains("(revert)") && r.stdout.contains("state: succeeded"), "\(r.stdout)\n\(r.stderr)")

        let host = LabHost(directory: hostDir)
        #expect(try host.bootedOS().osRelease.id == "alpha")
        #expect(try host.readText("target", "/etc/network/interfaces").contains(LabWorld.address))
        #expect(try host.readFile("target", "/etc/ssh/ssh_host_ed25519_key") == world.host.readFile("base", "/etc/ssh/ssh_host_ed25519_key"))
    }

    @Test func captureAndMaintenanceFromTheCLI() throws {
        guard getuid() == 0 else { return }  // capture carries file owners through debugfs rdump
        let world = try LabWorld.make("driver-cli3")
        defer { world.remove() }
        let hostDir = world.dir.file("cli-host")
        let alpha = world.dir.file("alpha.shoal")
        var r = try ShoalExecutable.run("host", "lab-create", "--lab", hostDir, "--base-bundle", alpha)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        r = try ShoalExecutable.run("host", "capture", "--lab", hostDir, "--staging-bundle", alpha, "--name", "alpha-again", "--json")
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(json?["kind"] as? String == "capture" && json?["capturedBundle"] as? String != nil, "\(r.stdout)")
        #expect(try LabHost(directory: hostDir).bootedOS().osRelease.id == "alpha")
        // This lab host has no maintenance partition: refused before anything changes (exit 2).
        r = try ShoalExecutable.run("host", "maintenance", "--lab", hostDir, "--maintenance-bundle", alpha, "--monitor", "active", "--interval", "1")
        #expect(r.status == 2, "\(r.stdout)\n\(r.stderr)")
        r = try ShoalExecutable.run("host", "maintenance", "--lab", hostDir, "--maintenance-bundle", alpha, "--monitor", "sometimes")
        #expect(r.status == 64)
    }
}
