import Foundation
@testable import ShoalHostProfile

/// Command output and file trees used by the tests. The "vm" fixtures were produced on this
/// machine by `ip -j address show`, `ip -j route show` and `ip -j -6 route show` (iproute2 6.1.0);
/// the multi-interface ones are hand-written in the same shape.
enum Fixtures {
    static let vmAddresses = """
        [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"qdisc":"noqueue","operstate":"UNKNOWN","group":"default","txqlen":1000,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host","valid_life_time":4294967295,"preferred_life_time":4294967295}]},{"ifindex":2,"ifname":"ifb0","flags":["BROADCAST","NOARP"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":32,"link_type":"ether","address":"76:e2:4c:66:80:9c","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]},{"ifindex":3,"ifname":"ifb1","flags":["BROADCAST","NOARP"],"mtu":1500,"qdisc":"noop","operstate":"DOWN","group":"default","txqlen":32,"link_type":"ether","address":"42:ed:d5:15:4e:03","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[]},{"ifindex":4,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1400,"qdisc":"pfifo_fast","operstate":"UP","group":"default","txqlen":1000,"link_type":"ether","address":"02:fc:00:00:00:01","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"192.0.2.2","prefixlen":24,"broadcast":"192.0.2.255","scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fd00::2","prefixlen":64,"scope":"global","nodad":true,"valid_life_time":4294967295,"preferred_life_time":4294967295},{"family":"inet6","local":"fe80::fc:ff:fe00:1","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]
        """
    static let vmRoutes4 = """
        [{"dst":"default","gateway":"192.0.2.1","dev":"eth0","flags":[]},{"dst":"192.0.2.0/24","dev":"eth0","protocol":"kernel","scope":"link","prefsrc":"192.0.2.2","flags":[]}]
        """
    static let vmRoutes6 = """
        [{"dst":"fd00::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"fe80::/64","dev":"eth0","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},{"dst":"default","gateway":"fd00::1","dev":"eth0","metric":1024,"flags":[],"pref":"medium"}]
        """

    /// A CDN edge: eno1 static (two IPv4, one IPv6, jumbo frames), eno2 on DHCP with SLAAC, and the
    /// usual plumbing that must not be carried over (docker0, a veth, a bond member, a VLAN).
    static let edgeAddresses = """
        [
          {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00",
           "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"},{"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},
          {"ifindex":2,"ifname":"eno1","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":9000,"link_type":"ether","address":"3c:ec:ef:10:20:30",
           "addr_info":[{"family":"inet","local":"203.0.113.10","prefixlen":24,"broadcast":"203.0.113.255","scope":"global","label":"eno1","valid_life_time":4294967295,"preferred_life_time":4294967295},
                        {"family":"inet","local":"203.0.113.11","prefixlen":24,"broadcast":"203.0.113.255","scope":"global","secondary":true,"label":"eno1","valid_life_time":4294967295,"preferred_life_time":4294967295},
                        {"family":"inet6","local":"2001:db8:1::10","prefixlen":64,"scope":"global","valid_life_time":4294967295,"preferred_life_time":4294967295},
                        {"family":"inet6","local":"fe80::3eec:efff:fe10:2030","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},
          {"ifindex":3,"ifname":"eno2","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"link_type":"ether","address":"3c:ec:ef:10:20:31",
           "addr_info":[{"family":"inet","local":"192.168.10.57","prefixlen":24,"broadcast":"192.168.10.255","scope":"global","dynamic":true,"label":"eno2","valid_life_time":85603,"preferred_life_time":85603},
                        {"family":"inet6","local":"2001:db8:2::3eec:efff:fe10:2031","prefixlen":64,"scope":"global","dynamic":true,"mngtmpaddr":true,"valid_life_time":2591995,"preferred_life_time":604795},
                        {"family":"inet6","local":"fe80::3eec:efff:fe10:2031","prefixlen":64,"scope":"link","valid_life_time":4294967295,"preferred_life_time":4294967295}]},
          {"ifindex":4,"ifname":"enp65s0f0","flags":["BROADCAST","MULTICAST","SLAVE","UP","LOWER_UP"],"mtu":1500,"master":"bond0","link_type":"ether","address":"b4:96:91:00:00:01","addr_info":[]},
          {"ifindex":5,"ifname":"eno1.100","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"link":"eno1","link_type":"ether","address":"3c:ec:ef:10:20:30",
           "addr_info":[{"family":"inet","local":"10.100.0.10","prefixlen":24,"scope":"global","label":"eno1.100"}]},
          {"ifindex":6,"ifname":"docker0","flags":["NO-CARRIER","BROADCAST","MULTICAST","UP"],"mtu":1500,"link_type":"ether","address":"02:42:ac:11:00:01",
           "addr_info":[{"family":"inet","local":"172.17.0.1","prefixlen":16,"broadcast":"172.17.255.255","scope":"global","label":"docker0"}]},
          {"ifindex":7,"ifname":"veth3f2a1b0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"master":"docker0","link_type":"ether","address":"9e:11:22:33:44:55","addr_info":[]},
          {"ifindex":8,"ifname":"wg0","flags":["POINTOPOINT","NOARP","UP","LOWER_UP"],"mtu":1420,"link_type":"none","addr_info":[{"family":"inet","local":"10.200.0.1","prefixlen":24,"scope":"global","label":"wg0"}]}
        ]
        """
    static let edgeRoutes4 = """
        [{"dst":"default","gateway":"203.0.113.1","dev":"eno1","protocol":"static","metric":100,"flags":[]},
         {"dst":"default","gateway":"192.168.10.1","dev":"eno2","protocol":"dhcp","prefsrc":"192.168.10.57","metric":200,"flags":[]},
         {"dst":"10.0.0.0/8","gateway":"203.0.113.254","dev":"eno1","protocol":"static","metric":50,"flags":[]},
         {"dst":"10.100.0.0/24","dev":"eno1.100","protocol":"kernel","scope":"link","prefsrc":"10.100.0.10","flags":[]},
         {"dst":"10.200.0.0/24","dev":"wg0","protocol":"kernel","scope":"link","prefsrc":"10.200.0.1","flags":[]},
         {"dst":"172.17.0.0/16","dev":"docker0","protocol":"kernel","scope":"link","prefsrc":"172.17.0.1","linkdown":null,"flags":["linkdown"]},
         {"dst":"192.168.10.0/24","dev":"eno2","protocol":"kernel","scope":"link","prefsrc":"192.168.10.57","metric":200,"flags":[]},
         {"dst":"198.18.0.0/15","gateway":"192.168.10.1","dev":"eno2","protocol":"static","flags":[]},
         {"type":"blackhole","dst":"198.51.100.0/24","protocol":"static","flags":[]},
         {"dst":"203.0.113.0/24","dev":"eno1","protocol":"kernel","scope":"link","prefsrc":"203.0.113.10","flags":[]},
         {"dst":"100.64.0.0/10","protocol":"static","metric":10,"flags":[],"nexthops":[{"gateway":"203.0.113.2","dev":"eno1","weight":1,"flags":[]},{"gateway":"203.0.113.3","dev":"eno1","weight":1,"flags":[]}]}]
        """
    static let edgeRoutes6 = """
        [{"dst":"2001:db8:1::/64","dev":"eno1","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
         {"dst":"2001:db8:2::/64","dev":"eno2","protocol":"ra","metric":1024,"expires":2591995,"flags":[],"pref":"medium"},
         {"dst":"2001:db8:ffff::/48","gateway":"2001:db8:1::fffe","dev":"eno1","protocol":"static","metric":1024,"flags":[],"pref":"medium"},
         {"dst":"fe80::/64","dev":"eno1","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
         {"dst":"fe80::/64","dev":"eno2","protocol":"kernel","metric":256,"flags":[],"pref":"medium"},
         {"dst":"default","gateway":"2001:db8:1::1","dev":"eno1","protocol":"static","metric":1024,"flags":[],"pref":"medium"},
         {"dst":"default","gateway":"fe80::1","dev":"eno2","protocol":"ra","metric":1024,"expires":1795,"flags":[],"pref":"medium"}]
        """

    static let sshRSA = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n-----END OPENSSH PRIVATE KEY-----\n"
    static let sshRSAPub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyForTestsOnly root@edge-7\n"
    static let rootKeys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKey ops@fleet\n"
    static let aliceKeys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAliceKey alice@laptop\n"

    /// The source OS tree of the edge host (Debian with ifupdown), without network config files.
    static func edgeTree() -> InMemoryFileSource {
        var t = InMemoryFileSource()
        t.add("/etc/hostname", "edge-7\n")
        t.add("/etc/hosts", "127.0.0.1\tlocalhost\n203.0.113.10\tedge-7.fra1.cdn.example edge-7\n")
        t.add("/etc/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n")
        t.add("/etc/resolv.conf", "# generated\ndomain old.example\nsearch fra1.cdn.example cdn.example\nnameserver 203.0.113.53\nnameserver 2001:db8:1::53\n")
        t.add("/etc/ssh/ssh_host_ed25519_key", sshRSA, mode: 0o600)
        t.add("/etc/ssh/ssh_host_ed25519_key.pub", sshRSAPub, mode: 0o644)
        t.add("/etc/ssh/sshd_config", "PermitRootLogin prohibit-password\n")
        t.add("/root/.ssh/authorized_keys", rootKeys, mode: 0o600)
        t.add("/home/alice/.ssh/authorized_keys", aliceKeys, mode: 0o600, uid: 1000, gid: 1000)
        t.add("/srv/bob/.ssh/authorized_keys2", "ssh-rsa AAAAB3Nza bob\n", mode: 0o600, uid: 1001, gid: 1001)
        t.add("/etc/passwd", "root:x:0:0:root:/root:/bin/bash\nbob:x:1001:1001::/srv/bob:/bin/sh\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n")
        t.add("/etc/shoal/tls/host.pem", "-----BEGIN CERTIFICATE-----\nHOST\n-----END CERTIFICATE-----\n")
        t.add("/etc/shoal/tls/host.key", "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n", mode: 0o600)
        t.add("/etc/shoal/tls/ca.pem", "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
        return t
    }

    static func edgeCapture(_ tree: InMemoryFileSource = edgeTree()) throws -> CaptureResult {
        try HostProfileCapture.capture(from: CaptureInput(
            ipAddressJSON: edgeAddresses, ipRouteJSON: edgeRoutes4, ipv6RouteJSON: edgeRoutes6, files: tree))
    }

    static let mac1 = try! MACAddress(parsing: "3c:ec:ef:10:20:30")
    static let mac2 = try! MACAddress(parsing: "3c:ec:ef:10:20:31")
    static let mac3 = try! MACAddress(parsing: "52:54:00:ab:cd:ef")

    /// Hand-built profiles covering the shapes renderers must handle.
    static func staticDualStack() -> HostProfile {
        HostProfile(
            hostname: "web1", domain: "example.net", sourceOS: "Debian GNU/Linux 12 (bookworm)",
            interfaces: [
                NetworkInterface(
                    name: "eno1", mac: mac1,
                    addresses: [try! IPNetwork(parsing: "192.0.2.10/24"), try! IPNetwork(parsing: "192.0.2.11/24"), try! IPNetwork(parsing: "2001:db8::10/64")],
                    mtu: 9000),
                NetworkInterface(name: "eno2", mac: mac2, addresses: [try! IPNetwork(parsing: "10.1.0.10/16")]),
            ],
            routes: [
                .defaultRoute(via: try! IPAddress(parsing: "192.0.2.1"), device: "eno1", metric: 100),
                .defaultRoute(via: try! IPAddress(parsing: "2001:db8::1"), device: "eno1"),
                Route(destination: try! IPNetwork(parsing: "10.0.0.0/8"), gateway: try! IPAddress(parsing: "10.1.0.1"), device: "eno2", metric: 50),
            ],
            dns: DNSSettings(nameservers: [try! IPAddress(parsing: "192.0.2.53"), try! IPAddress(parsing: "2001:db8::53")], searchDomains: ["example.net", "corp.example"]),
            security: SecurityData(
                sshHostKeys: [
                    CapturedFile(path: "/etc/ssh/ssh_host_ed25519_key", text: sshRSA, mode: 0o640),
                    CapturedFile(path: "/etc/ssh/ssh_host_ed25519_key.pub", text: sshRSAPub, mode: 0o600),
                ],
                authorizedKeys: [
                    CapturedFile(path: "/root/.ssh/authorized_keys", text: rootKeys, mode: 0o600, uid: 0, gid: 0),
                    CapturedFile(path: "/home/alice/.ssh/authorized_keys", text: aliceKeys, mode: 0o644, uid: 1000, gid: 1000),
                ],
                shoalCertificate: CapturedFile(path: "/etc/shoal/tls/host.pem", text: "CERT\n", mode: 0o644),
                shoalKey: CapturedFile(path: "/etc/shoal/tls/host.key", text: "KEY\n", mode: 0o600),
                fleetCA: CapturedFile(path: "/etc/shoal/tls/ca.pem", text: "CA\n", mode: 0o644)))
    }

    static func dhcpOnly() -> HostProfile {
        HostProfile(
            hostname: "cache3", interfaces: [NetworkInterface(name: "ens3", mac: mac3, dhcp4: true, dhcp6: true, acceptRA: true)],
            dns: DNSSettings(nameservers: [try! IPAddress(parsing: "10.0.0.2")]))
    }

    static func ipv6Only() -> HostProfile {
        HostProfile(
            hostname: "v6host", domain: "example.org",
            interfaces: [NetworkInterface(name: "enp1s0", mac: mac3, addresses: [try! IPNetwork(parsing: "2001:db8:42::7/64")], mtu: 1500)],
            routes: [.defaultRoute(via: try! IPAddress(parsing: "2001:db8:42::1"), device: "enp1s0", metric: 10)],
            dns: DNSSettings(nameservers: [try! IPAddress(parsing: "2001:db8:42::53")], searchDomains: ["example.org"]))
    }

    static var allProfiles: [HostProfile] { [staticDualStack(), dhcpOnly(), ipv6Only(), try! edgeCapture().profile] }
}

/// The INI files networkd and NetworkManager read, with repeated keys and sections kept in order.
struct OrderedINI {
    var sections: [(name: String, entries: [(String, String)])] = []

    init(_ text: String) {
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            if line.hasPrefix("[") { sections.append((String(line.dropFirst().dropLast()), [])); continue }
            let kv = line.split(separator: "=", maxSplits: 1).map(String.init)
            sections[sections.count - 1].entries.append((kv[0], kv.count > 1 ? kv[1] : ""))
        }
    }

    func values(_ section: String, _ key: String) -> [String] {
        sections.filter { $0.name == section }.flatMap { $0.entries.filter { $0.0 == key }.map(\.1) }
    }

    func sections(named name: String) -> [[String: String]] {
        sections.filter { $0.name == name }.map { Dictionary($0.entries, uniquingKeysWith: { a, _ in a }) }
    }
}
