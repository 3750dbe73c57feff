import Foundation
import ShoalTestKit
import Testing

@testable import ShoalHostLab

@Suite struct OSTreeTests {
    @Test func busyboxTreeBecomesABootableLookingImage() throws {
        try TemporaryDirectory.with("hostlab-tree") { dir in
            let spec = OSTreeSpec(
                release: OSRelease(id: "shoal-a", name: "Shoal Lab A", versionID: "1.0", prettyName: "Shoal Lab A 1.0"),
                hostname: "web-1", networkStacks: [.ifupdown],
                files: ["/etc/shoal/agent.conf": TreeFile(text: "coordinator=127.0.0.1\n", mode: 0o600)])
            let tree = try OSTree.build(at: dir.file("root"), spec: spec)
            // Every applet is linked to the static busybox, and it really runs.
            let sh = try FileManager.default.destinationOfSymbolicLink(atPath: tree.root + "/bin/sh")
            #expect(sh == "/bin/busybox")
            let applets = try HostTool.run([OSTree.busyboxPath, "--list-full"]).text.split(separator: "\n")
            for applet in applets.prefix(20) { #expect(FileManager.default.fileExists(atPath: tree.root + "/" + applet)) }
            let echo = try HostTool.run([tree.root + "/bin/busybox", "echo", "alive"]).text
            #expect(echo == "alive\n")

            let fs = try tree.makeImage(at: dir.file("a.ext4"), size: 16 * mib)
            let release = OSRelease(parsing: try fs.readText("/etc/os-release"))
            #expect(release == spec.release)
            #expect(release.id == "shoal-a" && release.name == "Shoal Lab A" && release.versionID == "1.0")
            #expect(try fs.readText("/etc/hostname") == "web-1\n")
            #expect(try fs.readText("/etc/network/interfaces").contains("iface lo inet loopback"))
            #expect(try fs.info("/etc/network/interfaces.d")?.isDirectory == true)
            #expect(try fs.info("/etc/shoal/agent.conf")?.permissions == 0o600)
            #expect(try fs.info("/tmp")?.permissions == 0o1777)
            #expect(try fs.info("/root")?.permissions == 0o700)
            #expect(try fs.info("/bin/busybox")?.permissions == 0o755)
            #expect(try fs.info("/sbin/init")?.isSymbolicLink == true)
            // The same binary, bit for bit.
            #expect(try fs.readFile("/bin/busybox") == TestData.read(OSTree.busyboxPath))
            #expect(try fs.check() == nil)
        }
    }

    @Test(arguments: NetworkStack.allCases)
    func networkStackMarkers(stack: NetworkStack) throws {
        try TemporaryDirectory.with("hostlab-tree") { dir in
            let tree = try OSTree.build(
                at: dir.file("root"),
                spec: OSTreeSpec(release: OSRelease(id: "n", name: "N"), networkStacks: [stack], applets: ["sh"]))
            let expected: [String: String] = [
                "ifupdown": "/etc/network/interfaces",
                "systemd-networkd": "/etc/systemd/network",
                "netplan": "/etc/netplan",
                "NetworkManager": "/etc/NetworkManager/system-connections",
            ]
            let marker = try #require(expected[stack.rawValue])
            #expect(FileManager.default.fileExists(atPath: tree.root + marker))
            // Only the asked-for stack is there.
            for (other, path) in expected where other != stack.rawValue {
                #expect(!FileManager.default.fileExists(atPath: tree.root + path), "\(other) marker in a \(stack) tree")
            }
        }
    }

    @Test func sshHostKeysWithTheirModesSurviveTheImage() throws {
        try TemporaryDirectory.with("hostlab-tree") { dir in
            let image = try Fixtures.osImage(in: dir, id: "keys", keys: [.ed25519, .ecdsa])
            let fs = Ext4Filesystem(region: try ByteRegion.wholeFile(image))
            let names = try fs.list("/etc/ssh").map(\.name)
            #expect(names == ["ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub", "ssh_host_ed25519_key", "ssh_host_ed25519_key.pub"])
            for entry in try fs.list("/etc/ssh") {
                #expect(entry.permissions == (entry.name.hasSuffix(".pub") ? 0o644 : 0o600), "\(entry.name)")
                #expect(entry.uid == getuid())
            }
            let pub = try fs.readText("/etc/ssh/ssh_host_ed25519_key.pub")
            #expect(pub.hasPrefix("ssh-ed25519 ") && pub.hasSuffix("root@host-keys\n"))
            // The private key is a real one: ssh-keygen derives the same public key from it.
            let copy = dir.file("key")
            try TestData.write(try fs.readFile("/etc/ssh/ssh_host_ed25519_key"), to: copy)
            chmod(copy, 0o600)
            let derived = try HostTool.run(["ssh-keygen", "-y", "-f", copy]).text
            #expect(pub.hasPrefix(derived.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
    }
}
