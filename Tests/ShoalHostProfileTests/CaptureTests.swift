import Foundation
import Testing
@testable import ShoalHostProfile

struct AddressTests {
    @Test func ipv4AndIPv6ParseToCanonicalForm() throws {
        #expect(try IPAddress(parsing: "192.0.2.1").description == "192.0.2.1")
        #expect(try IPAddress(parsing: "2001:DB8:0:0:0:0:0:1").description == "2001:db8::1")
        #expect(try IPAddress(parsing: "::").description == "::")
        #expect(try IPAddress(parsing: "::1").isLoopback)
        #expect(try IPAddress(parsing: "fe80::1").isLinkLocal)
        #expect(try IPAddress(parsing: "febf::1").isLinkLocal)
        #expect(try !IPAddress(parsing: "fec0::1").isLinkLocal)
        #expect(try IPAddress(parsing: "169.254.3.4").isLinkLocal)
        #expect(try IPAddress(parsing: "2001:db8:0:1:0:0:0:1").description == "2001:db8:0:1::1")  // longest run
        #expect(try IPAddress(parsing: "2001:0:0:1:0:0:0:1").description == "2001:0:0:1::1")
        #expect(try IPAddress(parsing: "2001:db8:1:1:1:1:0:1").description == "2001:db8:1:1:1:1:0:1")  // single zero group
        #expect(try IPAddress(parsing: "::ffff:192.0.2.1").bytes.suffix(4) == [192, 0, 2, 1])
        for bad in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1::2::3", "fe80::1%eth0", "12345::", "1:2:3:4:5:6:7:8:9", "gggg::"] {
            #expect(throws: HostProfileError.self, "\(bad)") { try IPAddress(parsing: bad) }
        }
    }

    @Test func networksKeepTheHostPartAndKnowTheirNetwork() throws {
        let n = try IPNetwork(parsing: "192.0.2.10/24")
        #expect(n.description == "192.0.2.10/24")
        #expect(n.network.description == "192.0.2.0/24")
        #expect(n.contains(try IPAddress(parsing: "192.0.2.200")))
        #expect(!n.contains(try IPAddress(parsing: "192.0.3.1")))
        #expect(n.ipv4Netmask == "255.255.255.0")
        #expect(try IPNetwork(parsing: "10.0.0.0/9").ipv4Netmask == "255.128.0.0")
        #expect(try IPNetwork(parsing: "2001:db8::10/64").network.description == "2001:db8::/64")
        #expect(try IPNetwork(parsing: "2001:db8::10").prefixLength == 128)
        #expect(throws: HostProfileError.self) { try IPNetwork(parsing: "192.0.2.1/33") }
        #expect(throws: HostProfileError.self) { try IPNetwork(parsing: "192.0.2.1/-1") }
        #expect(throws: HostProfileError.self) { try IPNetwork(parsing: "192.0.2.1/24/1") }
    }

    @Test func macAddressesInEveryNotation() throws {
        let m = try MACAddress(parsing: "3C-EC-EF-10-20-3A")
        #expect(m.description == "3c:ec:ef:10:20:3a")
        #expect(m.windowsForm == "3C-EC-EF-10-20-3A")
        #expect(try MACAddress(parsing: "3cec.ef10.203a") == m)
        #expect(try MACAddress(parsing: "3c:ec:ef:10:20:3a") == m)
        for bad in ["3c:ec:ef:10:20", "3c:ec:ef:10:20:3g", "3c:ec:ef:10:20:3a:00", "3c:ec:ef:1020:3a"] {
            #expect(throws: HostProfileError.self, "\(bad)") { try MACAddress(parsing: bad) }
        }
    }
}

struct IPOutputTests {
    @Test func parsesThisMachinesAddresses() throws {
        let links = try IPCommandOutput.parseAddresses(Fixtures.vmAddresses)
        #expect(links.map(\.name) == ["lo", "ifb0", "ifb1", "eth0"])
        let eth0 = try #require(links.last)
        #expect(eth0.mac?.description == "02:fc:00:00:00:01")
        #expect(eth0.mtu == 1400)
        #expect(eth0.addresses.map(\.network.description) == ["192.0.2.2/24", "fd00::2/64", "fe80::fc:ff:fe00:1/64"])
        #expect(eth0.addresses.map(\.scope) == ["global", "global", "link"])
        #expect(links[0].mac == nil)  // loopback: no Ethernet MAC
    }

    @Test func parsesRoutesOfBothFamilies() throws {
        let v4 = try IPCommandOutput.parseRoutes(Fixtures.vmRoutes4, family: .ipv4)
        #expect(v4.count == 2)
        #expect(v4[0].destination.description == "0.0.0.0/0")
        #expect(v4[0].gateway?.description == "192.0.2.1")
        #expect(v4[1].proto == "kernel")
        let v6 = try IPCommandOutput.parseRoutes(Fixtures.vmRoutes6, family: .ipv6)
        #expect(v6.map(\.destination.description) == ["fd00::/64", "fe80::/64", "::/0"])
        #expect(v6[2].metric == 1024)
        let edge = try IPCommandOutput.parseRoutes(Fixtures.edgeRoutes4, family: .ipv4)
        #expect(edge.first { $0.type == "blackhole" } != nil)
        #expect(edge.first { $0.multipath }?.destination.description == "100.64.0.0/10")
    }

    @Test func badOutputIsAClearError() {
        #expect(throws: HostProfileError.self) { try IPCommandOutput.parseAddresses("Object \"addres\" is unknown") }
        #expect(throws: HostProfileError.self) { try IPCommandOutput.parseRoutes("[{\"dst\":\"10.0.0.0/8\",\"gateway\":\"banana\"}]", family: .ipv4) }
        #expect(throws: HostProfileError.self) { try IPCommandOutput.parseRoutes(Fixtures.vmRoutes6, family: .ipv4) }
        do {
            _ = try IPCommandOutput.parseAddresses("[{\"ifname\":\"eth0\",\"link_type\":\"ether\",\"address\":\"zz\"}]")
            Issue.record("no error")
        } catch {
            #expect(error.description.contains("ip -j address show"))
            #expect(error.description.contains("eth0"))
        }
    }
}

struct SystemFileTests {
    @Test func resolvConf() {
        let dns = SystemFiles.parseResolvConf("""
            # comment
            domain a.example
            search b.example c.example
            nameserver 192.0.2.53
            nameserver 2001:db8::53
            nameserver 192.0.2.53
            nameserver not-an-address
            options edns0
            """)
        #expect(dns.nameservers.map(\.description) == ["192.0.2.53", "2001:db8::53"])
        #expect(dns.searchDomains == ["b.example", "c.example"])
        #expect(SystemFiles.parseResolvConf("domain only.example\n").searchDomains == ["only.example"])
    }

    @Test func hostnameHostsAndOSRelease() {
        #expect(SystemFiles.parseHostname("# x\nweb1.example.net\n")! == ("web1", "example.net"))
        #expect(SystemFiles.parseHostname("web1\n")! == ("web1", nil))
        #expect(SystemFiles.parseHostname("\n# nothing\n") == nil)
        #expect(SystemFiles.domainFromHosts("127.0.1.1 web1.example.net web1 # me\n", hostname: "web1") == "example.net")
        #expect(SystemFiles.domainFromHosts("# web1.commented.net\n127.0.0.1 localhost\n", hostname: "web1") == nil)
        #expect(SystemFiles.parseOSRelease("NAME=\"Alpine Linux\"\nVERSION='3.20'\n") == "Alpine Linux 3.20")
        #expect(SystemFiles.homeDirectories(fromPasswd: "root:x:0:0::/root:/bin/sh\nd:x:100:100::/var/d:/bin/false\nu:x:1000:1000::/home/u:/bin/sh\n") == ["/root", "/home/u"])
    }
}

struct CaptureTests {
    @Test func capturesThisMachine() throws {
        var tree = InMemoryFileSource()
        tree.add("/etc/hostname", "vm\n")
        tree.add("/etc/resolv.conf", "nameserver 10.255.255.53\n")
        let result = try HostProfileCapture.capture(from: CaptureInput(
            ipAddressJSON: Fixtures.vmAddresses, ipRouteJSON: Fixtures.vmRoutes4, ipv6RouteJSON: Fixtures.vmRoutes6, files: tree))
        let p = result.profile
        #expect(p.hostname == "vm")
        #expect(p.domain == nil)
        #expect(p.interfaces.count == 1)
        let eth0 = try #require(p.interfaces.first)
        #expect(eth0.name == "eth0")
        #expect(eth0.addresses.map(\.description) == ["192.0.2.2/24", "fd00::2/64"])  // link-local left out
        #expect(!eth0.dhcp4 && !eth0.dhcp6 && !eth0.acceptRA)
        #expect(eth0.mtu == 1400)
        #expect(p.routes.map(\.destination.description) == ["0.0.0.0/0", "::/0"])
        #expect(p.routes.map { $0.gateway?.description } == ["192.0.2.1", "fd00::1"])
        #expect(p.routes[1].metric == 1024)
        #expect(p.dns.nameservers.map(\.description) == ["10.255.255.53"])
        #expect(result.notes.contains { $0.contains("ifb0") })
    }

    @Test func capturesAMultiInterfaceEdgeHost() throws {
        let result = try Fixtures.edgeCapture()
        let p = result.profile
        #expect(p.hostname == "edge-7")
        #expect(p.domain == "fra1.cdn.example")  // from /etc/hosts
        #expect(p.sourceOS == "Debian GNU/Linux 12 (bookworm)")
        #expect(p.interfaces.map(\.name) == ["eno1", "eno2"])
        let eno1 = p.interfaces[0], eno2 = p.interfaces[1]
        #expect(eno1.addresses.map(\.description) == ["203.0.113.10/24", "203.0.113.11/24", "2001:db8:1::10/64"])
        #expect(eno1.mtu == 9000 && !eno1.dhcp4 && !eno1.acceptRA && eno1.configuredBy == nil)
        // eno2: a dynamic IPv4 is a lease, a dynamic mngtmpaddr /64 is SLAAC: both automatic, neither kept.
        #expect(eno2.dhcp4 && eno2.acceptRA && !eno2.dhcp6)
        #expect(eno2.addresses.isEmpty)
        let routes = p.routes.map { "\($0.destination) via \($0.gateway.map(\.description) ?? "-") dev \($0.device ?? "-") metric \($0.metric.map(String.init) ?? "-")" }
        #expect(routes == [
            "0.0.0.0/0 via 203.0.113.1 dev eno1 metric 100",
            "10.0.0.0/8 via 203.0.113.254 dev eno1 metric 50",
            "198.18.0.0/15 via 192.168.10.1 dev eno2 metric -",  // static, even on a DHCP interface
            "2001:db8:ffff::/48 via 2001:db8:1::fffe dev eno1 metric 1024",
            "::/0 via 2001:db8:1::1 dev eno1 metric 1024",
        ])
        #expect(p.dns.nameservers.map(\.description) == ["203.0.113.53", "2001:db8:1::53"])
        #expect(p.dns.searchDomains == ["fra1.cdn.example", "cdn.example"])
        let notes = result.notes.joined(separator: "\n")
        for expected in ["docker0", "veth3f2a1b0", "enp65s0f0: skipped (member of bond0", "eno1.100: skipped (stacked on eno1", "wg0", "100.64.0.0/10", "learned by dhcp", "192.168.10.57/24"] {
            #expect(notes.contains(expected), "notes lack \(expected)")
        }
    }

    @Test func capturesSecurityData() throws {
        let s = try Fixtures.edgeCapture().profile.security
        #expect(s.sshHostKeys.map(\.path) == ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub"])
        #expect(s.sshHostKeys.map(\.mode) == [0o600, 0o644])
        #expect(s.authorizedKeys.map(\.path) == ["/root/.ssh/authorized_keys", "/srv/bob/.ssh/authorized_keys2", "/home/alice/.ssh/authorized_keys"])
        #expect(s.authorizedKeys[2].uid == 1000)
        #expect(s.shoalCertificate?.text.contains("HOST") == true)
        #expect(s.shoalKey?.mode == 0o600)
        #expect(s.fleetCA?.path == "/etc/shoal/tls/ca.pem")
    }

    @Test func securityPathsAreConfigurable() throws {
        var tree = Fixtures.edgeTree()
        tree.add("/var/lib/shoal/id/cert.pem", "OTHER CERT\n")
        let options = CaptureOptions(shoalCertificatePath: "/var/lib/shoal/id/cert.pem", shoalKeyPath: "/nope", fleetCAPath: "/nope2")
        let r = try HostProfileCapture.capture(from: CaptureInput(
            ipAddressJSON: Fixtures.edgeAddresses, ipRouteJSON: Fixtures.edgeRoutes4, files: tree, options: options))
        #expect(r.profile.security.shoalCertificate?.text == "OTHER CERT\n")
        #expect(r.profile.security.shoalKey == nil)
    }

    @Test func configFilesDecideDHCPOverTheKernelsView() throws {
        var tree = Fixtures.edgeTree()
        // ifupdown says eno2 is static (its address merely has a lifetime), and eno1 is DHCP.
        tree.add("/etc/network/interfaces", """
            source /etc/network/interfaces.d/*
            auto lo
            iface lo inet loopback
            """)
        tree.add("/etc/network/interfaces.d/eno", """
            auto eno1
            iface eno1 inet dhcp
            iface eno1 inet6 static
                address 2001:db8:1::10/64
                accept_ra 0
            allow-hotplug eno2
            iface eno2 inet static
                address 192.168.10.57/24
            """)
        let p = try Fixtures.edgeCapture(tree).profile
        let eno1 = p.interfaces[0], eno2 = p.interfaces[1]
        #expect(eno1.dhcp4 && !eno1.acceptRA && eno1.configuredBy == "/etc/network/interfaces.d/eno")
        #expect(eno1.addresses.map(\.description) == ["203.0.113.10/24", "203.0.113.11/24", "2001:db8:1::10/64"])  // not dynamic: kept
        #expect(!eno2.dhcp4 && eno2.addresses.map(\.description) == ["192.168.10.57/24"])
        // The file has no inet6 stanza for eno2, so the kernel's view fills in: it did SLAAC (as the kernel
        // does by default without an inet6 stanza).
        #expect(eno2.acceptRA == true)
        #expect(p.networkConfigFiles.map(\.path) == ["/etc/network/interfaces", "/etc/network/interfaces.d/eno"])
        #expect(p.routes.contains { $0.device == "eno2" && $0.isDefault })  // eno2 is static: its default route stays
    }

    @Test func netplanNetworkManagerAndNetworkdHints() throws {
        let netplan = CapturedFile(path: "/etc/netplan/50-cloud-init.yaml", text: """
            # This file is generated from information provided by the datasource.
            network:
              version: 2
              ethernets:
                uplink:
                  match:
                    macaddress: "3C:EC:EF:10:20:30"
                  set-name: eno1
                  dhcp4: true
                  dhcp6: no
                eno2:
                  addresses: [192.168.10.57/24]
                  accept-ra: false
            """, mode: 0o600)
        let hints = NetworkConfigHints.hints(from: [netplan])
        #expect(hints.count == 2)
        #expect(hints[0].mac == Fixtures.mac1 && hints[0].dhcp4 == true && hints[0].dhcp6 == false)
        #expect(hints[1].name == "eno2" && hints[1].dhcp4 == false && hints[1].acceptRA == false)

        let nm = CapturedFile(path: "/etc/NetworkManager/system-connections/Wired.nmconnection", text: """
            [connection]
            id=Wired
            type=ethernet
            interface-name=eno2
            [ipv4]
            method=manual
            address1=192.168.10.57/24
            [ipv6]
            method=dhcp
            """, mode: 0o600)
        let nmHint = try #require(NetworkConfigHints.networkManager(nm).first)
        #expect(nmHint.name == "eno2" && nmHint.dhcp4 == false && nmHint.dhcp6 == true && nmHint.acceptRA == false)
        let wifi = CapturedFile(path: "/etc/NetworkManager/system-connections/w", text: "[connection]\ntype=wifi\ninterface-name=wlan0\n", mode: 0o600)
        #expect(NetworkConfigHints.networkManager(wifi).isEmpty)

        let networkd = CapturedFile(path: "/etc/systemd/network/20-wired.network", text: """
            [Match]
            Name=en* eth*
            [Network]
            DHCP=ipv4
            IPv6AcceptRA=yes
            """, mode: 0o644)
        let nd = NetworkConfigHints.systemdNetworkd(networkd)
        #expect(nd.map { $0.name } == ["en*", "eth*"])
        #expect(nd[0].matches(name: "eno1", mac: nil) && !nd[0].matches(name: "wlan0", mac: nil))
        #expect(nd[0].dhcp4 == true && nd[0].dhcp6 == false && nd[0].acceptRA == true)

        // Netplan outranks the others for the same interface.
        let all = NetworkConfigHints.hints(from: [networkd, nm, netplan])
        #expect(all.first { $0.matches(name: "eno2", mac: Fixtures.mac2) }?.path == netplan.path)
    }

    @Test func anUnreadableNetplanFileIsKeptAndNoted() throws {
        var tree = Fixtures.edgeTree()
        tree.add("/etc/netplan/60-anchors.yaml", "network: &n\n  version: 2\n", mode: 0o600)
        let r = try Fixtures.edgeCapture(tree)
        #expect(r.profile.networkConfigFiles.map(\.path) == ["/etc/netplan/60-anchors.yaml"])
        #expect(r.notes.contains { $0.contains("60-anchors.yaml: not read for DHCP hints") })
    }

    @Test func resolvedStubIsReplacedByItsUpstreams() throws {
        var tree = Fixtures.edgeTree()
        tree.add("/etc/resolv.conf", "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch fra1.cdn.example\n")
        tree.add("/run/systemd/resolve/resolv.conf", "nameserver 203.0.113.53\nnameserver 203.0.113.54\nsearch other.example\n")
        let p = try Fixtures.edgeCapture(tree).profile
        #expect(p.dns.nameservers.map(\.description) == ["203.0.113.53", "203.0.113.54"])
        #expect(p.dns.searchDomains == ["fra1.cdn.example"])

        tree.files["/run/systemd/resolve/resolv.conf"] = nil
        tree.add("/etc/resolv.conf", "nameserver 127.0.0.1\nnameserver 203.0.113.53\n")
        let r = try Fixtures.edgeCapture(tree)
        #expect(r.profile.dns.nameservers.map(\.description) == ["203.0.113.53"])
        #expect(r.notes.contains { $0.contains("127.0.0.1") })
    }

    @Test func hostnameMayBeQualifiedAndMustExist() throws {
        var tree = Fixtures.edgeTree()
        tree.add("/etc/hostname", "edge-7.ams2.cdn.example\n")
        #expect(try Fixtures.edgeCapture(tree).profile.domain == "ams2.cdn.example")
        tree.files["/etc/hostname"] = nil
        #expect(throws: HostProfileError.missingFile("/etc/hostname")) { try Fixtures.edgeCapture(tree) }
        tree.add("/etc/hostname", "bad_name!\n")
        #expect(throws: HostProfileError.self) { try Fixtures.edgeCapture(tree) }
    }

    @Test func capturesFromARealDirectoryTree() throws {
        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("shoal-capture-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: root) }
        func write(_ path: String, _ text: String, mode: Int) throws {
            let full = root + path
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: URL(fileURLWithPath: full))
            try fm.setAttributes([.posixPermissions: mode], ofItemAtPath: full)
        }
        try write("/etc/hostname", "edge-9\n", mode: 0o644)
        try write("/etc/ssh/ssh_host_ecdsa_key", "PRIVATE\n", mode: 0o600)
        try write("/etc/ssh/ssh_host_ecdsa_key.pub", "PUBLIC\n", mode: 0o644)
        try write("/root/.ssh/authorized_keys", Fixtures.rootKeys, mode: 0o600)
        try write("/etc/netplan/01-netcfg.yaml", "network:\n  version: 2\n  ethernets:\n    eno1:\n      dhcp4: true\n", mode: 0o600)
        try write("/run/systemd/resolve/stub-resolv.conf", "nameserver 198.51.100.53\n", mode: 0o644)
        try write("/usr/lib/os-release", "PRETTY_NAME=\"Ubuntu 24.04 LTS\"\n", mode: 0o644)
        // Absolute and relative links must resolve inside the tree, never on the running system.
        try fm.createSymbolicLink(atPath: root + "/etc/resolv.conf", withDestinationPath: "/run/systemd/resolve/stub-resolv.conf")
        try fm.createSymbolicLink(atPath: root + "/etc/os-release", withDestinationPath: "../usr/lib/os-release")
        try fm.createSymbolicLink(atPath: root + "/etc/escape", withDestinationPath: "../../../../../../etc/hostname")

        let source = DirectoryFileSource(root: root + "/")
        #expect(try source.readText("/etc/escape") == "edge-9\n")  // clamped at the tree's root
        #expect(try source.list("/etc/ssh") == ["ssh_host_ecdsa_key", "ssh_host_ecdsa_key.pub"])
        #expect(try source.status("/etc/ssh/ssh_host_ecdsa_key")?.mode == 0o600)
        #expect(try source.read("/does/not/exist") == nil)
        #expect(try source.list("/etc/hostname") == [])

        let r = try HostProfileCapture.capture(from: CaptureInput(
            ipAddressJSON: Fixtures.edgeAddresses, ipRouteJSON: Fixtures.edgeRoutes4, files: source))
        let p = r.profile
        #expect(p.hostname == "edge-9")
        #expect(p.sourceOS == "Ubuntu 24.04 LTS")
        #expect(p.dns.nameservers.map(\.description) == ["198.51.100.53"])
        #expect(p.interfaces[0].dhcp4 && p.interfaces[0].configuredBy == "/etc/netplan/01-netcfg.yaml")
        #expect(p.security.sshHostKeys.map(\.mode) == [0o600, 0o644])
        #expect(p.security.authorizedKeys.map(\.path) == ["/root/.ssh/authorized_keys"])
        #expect(p.networkConfigFiles.map(\.path) == ["/etc/netplan/01-netcfg.yaml"])
        #expect(p.networkConfigFiles[0].mode == 0o600)
    }
}
