import Foundation
import ShoalCrypto
import Testing
@testable import ShoalHostProfile

struct EnvelopeTests {
    @Test(arguments: Fixtures.allProfiles) func roundTrips(_ profile: HostProfile) throws {
        let bytes = try HostProfileEnvelope.encode(profile)
        #expect(try HostProfileEnvelope.decode(bytes) == profile)
        #expect(try HostProfileEnvelope.encode(profile) == bytes)  // deterministic
    }

    @Test func headerIsReadableAndModesAreOctal() throws {
        let bytes = try HostProfileEnvelope.encode(Fixtures.staticDualStack())
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(separator: "\n", maxSplits: 3, omittingEmptySubsequences: false)
        #expect(lines[0] == "SHOAL-HOST-PROFILE 1")
        #expect(lines[1].hasPrefix("sha256 ") && lines[1].count == 7 + 64)
        let headerLength = text.utf8.count - (String(lines[3]).utf8.count - 1)  // lines[3] starts with the blank line
        #expect(lines[2] == "bytes \(bytes.count - headerLength)")
        #expect(text.contains("\"mode\" : \"0600\""))
        #expect(text.contains("\"mac\" : \"3c:ec:ef:10:20:30\""))
        #expect(text.contains("\"192.0.2.10/24\""))
    }

    @Test func everyKindOfDamageIsNamed() throws {
        let good = try HostProfileEnvelope.encode(Fixtures.staticDualStack())
        func decodeError(_ data: Data) -> HostProfileError? {
            do { _ = try HostProfileEnvelope.decode(data); return nil } catch { return error }
        }
        // A flipped bit in the body.
        var flipped = good
        flipped[flipped.count - 20] ^= 0x04
        guard case .envelopeChecksumMismatch = decodeError(flipped) else { Issue.record("flip: \(String(describing: decodeError(flipped)))"); return }
        // Truncated in the body, anywhere.
        for cut in [good.count - 1, good.count - 500, 200] {
            guard case .envelopeTruncated(let expected, let actual) = decodeError(good.prefix(cut)) else {
                Issue.record("cut \(cut): \(String(describing: decodeError(good.prefix(cut))))"); continue
            }
            #expect(actual < expected)
        }
        // Truncated in the header.
        let headerCut = decodeError(good.prefix(30))
        #expect(headerCut?.description.contains("truncated") == true)
        // Empty, foreign, trailing bytes, from the future.
        #expect(decodeError(Data())?.description.contains("empty") == true)
        guard case .notAnEnvelope = decodeError(Data("{\"hostname\":\"x\"}".utf8)) else { Issue.record("foreign"); return }
        guard case .envelopeTrailingBytes = decodeError(good + Data("\n".utf8)) else { Issue.record("trailing"); return }
        var future = good
        future.replaceSubrange(0..<20, with: Data("SHOAL-HOST-PROFILE 9".utf8))
        #expect(decodeError(future) == .unsupportedEnvelopeVersion(9))
        // A body that matches its checksum but is not a profile.
        let junk = Data("{\"hostname\": 3}".utf8)
        let forged = Data("SHOAL-HOST-PROFILE 1\nsha256 \(SHA256.hash(Array(junk)).hex)\nbytes \(junk.count)\n\n".utf8) + junk
        guard case .envelopeUndecodable = decodeError(forged) else { Issue.record("junk: \(String(describing: decodeError(forged)))"); return }
        // Every message says what it is about.
        #expect(decodeError(flipped)!.description.contains("corrupt"))
    }

    @Test func invalidProfilesAreRefusedBeforeStoring() {
        var p = Fixtures.staticDualStack()
        p.interfaces[1].mac = p.interfaces[0].mac
        #expect(throws: HostProfileError.self) { try HostProfileEnvelope.encode(p) }
        p = Fixtures.staticDualStack()
        p.routes.append(Route(destination: try! IPNetwork(parsing: "10.9.0.0/16"), gateway: try! IPAddress(parsing: "172.31.0.1")))
        #expect(throws: HostProfileError.self) { try HostProfileEnvelope.encode(p) }
        p = Fixtures.staticDualStack()
        p.security.authorizedKeys[0].path = "/root/../etc/shadow"
        #expect(throws: HostProfileError.self) { try HostProfileEnvelope.encode(p) }
    }
}

struct DetectionTests {
    func detect(_ build: (inout InMemoryFileSource) -> Void) throws -> TargetFormatDetection {
        var t = InMemoryFileSource()
        build(&t)
        return try TargetFormatDetector.detect(t)
    }

    @Test func eachFormatOnItsOwn() throws {
        #expect(try detect { $0.directories = ["/Windows/System32"] }.format == .windows)
        #expect(try detect { $0.directories = ["/WINDOWS/system32"] }.format == .windows)
        #expect(try detect { $0.add("/etc/netplan/50-cloud-init.yaml", "network: {}\n") }.format == .netplan)
        #expect(try detect { $0.add("/usr/sbin/netplan", "") }.format == .netplan)
        #expect(try detect { $0.add("/etc/systemd/system/multi-user.target.wants/NetworkManager.service", "") }.format == .networkManager)
        #expect(try detect { $0.add("/usr/sbin/NetworkManager", "") }.format == .networkManager)
        #expect(try detect { $0.add("/etc/systemd/system/multi-user.target.wants/systemd-networkd.service", "") }.format == .systemdNetworkd)
        #expect(try detect { $0.add("/etc/systemd/network/20-wired.network", "") }.format == .systemdNetworkd)
        #expect(try detect { $0.add("/usr/lib/systemd/systemd-networkd", "") }.format == .systemdNetworkd)
        #expect(try detect { $0.add("/etc/network/interfaces", "auto lo\niface lo inet loopback\n") }.format == .ifupdown)
        #expect(try detect { $0.add("/sbin/ifup", "") }.format == .ifupdown)
        #expect(throws: HostProfileError.self) { try detect { $0.add("/etc/hostname", "x\n") } }
        #expect(throws: HostProfileError.self) { try detect { $0.directories = ["/Windows"] } }  // no System32
    }

    @Test func precedence() throws {
        // Ubuntu desktop: netplan on top of NetworkManager.
        let ubuntu = try detect {
            $0.add("/etc/netplan/01-network-manager-all.yaml", "network:\n  renderer: NetworkManager\n")
            $0.add("/etc/systemd/system/multi-user.target.wants/NetworkManager.service", "")
            $0.add("/usr/lib/systemd/systemd-networkd", "")
        }
        #expect(ubuntu.format == .netplan && ubuntu.reason.contains("01-network-manager-all.yaml"))
        // Debian with NetworkManager enabled and a leftover lo-only interfaces file.
        #expect(try detect {
            $0.add("/etc/network/interfaces", "auto lo\niface lo inet loopback\n")
            $0.add("/sbin/ifup", "")
            $0.add("/etc/systemd/system/multi-user.target.wants/NetworkManager.service", "")
        }.format == .networkManager)
        // Debian server: ifupdown configures eth0, NetworkManager merely installed.
        #expect(try detect {
            $0.add("/etc/network/interfaces", "source /etc/network/interfaces.d/*\n")
            $0.add("/etc/network/interfaces.d/eth0", "auto eth0\niface eth0 inet dhcp\n")
            $0.add("/usr/sbin/NetworkManager", "")
            $0.add("/lib/systemd/systemd-networkd", "")
        }.format == .ifupdown)
        // Enabled networkd beats installed NetworkManager.
        #expect(try detect {
            $0.add("/etc/systemd/system/sockets.target.wants/systemd-networkd.service", "")
            $0.add("/usr/sbin/NetworkManager", "")
        }.format == .systemdNetworkd)
        // Windows wins over anything (a dual tree is a mistake, but Windows is what boots).
        #expect(try detect { $0.directories = ["/Windows/System32"]; $0.add("/etc/netplan/a.yaml", "") }.format == .windows)
    }

    @Test func aDanglingWantsLinkIsNotEnabled() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("shoal-detect-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: root) }
        let wants = root + "/etc/systemd/system/multi-user.target.wants"
        try fm.createDirectory(atPath: wants, withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: wants + "/NetworkManager.service", withDestinationPath: "/lib/systemd/system/NetworkManager.service")
        try fm.createDirectory(atPath: root + "/sbin", withIntermediateDirectories: true)
        #expect(fm.createFile(atPath: root + "/sbin/ifup", contents: Data()))
        #expect(try TargetFormatDetector.detect(DirectoryFileSource(root: root)).format == .ifupdown)
        try fm.createDirectory(atPath: root + "/lib/systemd/system", withIntermediateDirectories: true)
        #expect(fm.createFile(atPath: root + "/lib/systemd/system/NetworkManager.service", contents: Data("[Unit]\n".utf8)))
        #expect(try TargetFormatDetector.detect(DirectoryFileSource(root: root)).format == .networkManager)
    }
}

struct MiniYAMLTests {
    @Test func readsTheNetplanSubset() throws {
        let doc = try MiniYAML.parse("""
            # comment
            network:
              version: 2
              ethernets:
                eno1:
                  match: {}
                  addresses:
                    - "192.0.2.10/24"   # trailing comment
                    - '2001:db8::10/64'
                  routes:
                  - to: default
                    via: 192.0.2.1
                    metric: 100
                  - to: "10.0.0.0/8"
                    via: 10.1.0.1
                  nameservers:
                    addresses: [192.0.2.53, "2001:db8::53"]
                    search: []
                  dhcp4: no
            """)
        let eno1 = try #require(doc["network"]?["ethernets"]?["eno1"])
        #expect(doc["network"]?["version"]?.string == "2")
        #expect(eno1["addresses"]?.array?.compactMap(\.string) == ["192.0.2.10/24", "2001:db8::10/64"])
        #expect(eno1["routes"]?.array?.count == 2)
        #expect(eno1["routes"]?.array?[0]["metric"]?.string == "100")
        #expect(eno1["routes"]?.array?[1]["to"]?.string == "10.0.0.0/8")
        #expect(eno1["nameservers"]?["addresses"]?.array?.compactMap(\.string) == ["192.0.2.53", "2001:db8::53"])
        #expect(eno1["nameservers"]?["search"] == .sequence([]))
        #expect(eno1["match"] == .mapping([]))
        #expect(eno1["dhcp4"]?.bool == false)
    }

    @Test func rejectsWhatItDoesNotUnderstand() {
        for bad in ["a:\n  - x\n   - y\n", "a: &anchor x\n", "a: |\n  text\n", "a: {b: c}\n", "a: [x, [y]]\n", "a: 1\na: 2\n", "a:\n\tb: 1\n", "a: \"open\n"] {
            #expect(throws: HostProfileError.self, "\(bad)") { try MiniYAML.parse(bad) }
        }
    }
}
