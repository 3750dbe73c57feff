import Foundation
import Testing
@testable import ShoalHostProfile

#if canImport(FoundationXML)
import FoundationXML
#endif

extension [RenderedFile] {
    func file(_ path: String) -> RenderedFile? { first { $0.path == path } }
    func files(under prefix: String, suffix: String = "") -> [RenderedFile] {
        filter { $0.path.hasPrefix(prefix) && $0.path.hasSuffix(suffix) }
    }
}

struct IfupdownRendererTests {
    @Test func staticDualStackIsExactlyThis() throws {
        let files = try HostProfileRenderer.render(Fixtures.staticDualStack(), as: .ifupdown)
        let interfaces = try #require(files.file("/etc/network/interfaces"))
        #expect(interfaces.mode == 0o644)
        #expect(interfaces.text == """
            # Rendered by Shoal from the host profile of web1.example.net (captured on Debian GNU/Linux 12 (bookworm)).
            # Interface names are pinned by MAC in /etc/systemd/network/10-shoal-*.link.

            auto lo
            iface lo inet loopback

            # eno1 (3c:ec:ef:10:20:30)
            auto eno1
            iface eno1 inet static
                address 192.0.2.10/24
                gateway 192.0.2.1
                metric 100
                mtu 9000
                dns-nameservers 192.0.2.53 2001:db8::53
                dns-search example.net corp.example
            iface eno1 inet static
                address 192.0.2.11/24
            iface eno1 inet6 static
                address 2001:db8::10/64
                gateway 2001:db8::1
                accept_ra 0

            # eno2 (3c:ec:ef:10:20:31)
            auto eno2
            iface eno2 inet static
                address 10.1.0.10/16
                post-up ip route replace 10.0.0.0/8 via 10.1.0.1 dev eno2 metric 50
                pre-down ip route del 10.0.0.0/8 via 10.1.0.1 dev eno2 metric 50 || true

            """)
        // ifupdown matches by name, so names are pinned by MAC with .link files.
        let links = files.files(under: "/etc/systemd/network/", suffix: ".link")
        #expect(links.map(\.path) == ["/etc/systemd/network/10-shoal-eno1.link", "/etc/systemd/network/10-shoal-eno2.link"])
        let link = OrderedINI(links[0].text)
        #expect(link.values("Match", "MACAddress") == ["3c:ec:ef:10:20:30"] && link.values("Link", "Name") == ["eno1"])
        // Nothing else writes resolv.conf on an ifupdown system.
        #expect(files.file("/etc/resolv.conf")?.text.contains("nameserver 192.0.2.53\nnameserver 2001:db8::53\n") == true)
    }

    @Test func dhcpAndAutoconf() throws {
        var p = Fixtures.dhcpOnly()
        p.interfaces[0].mtu = 9000
        let text = try #require(HostProfileRenderer.ifupdown(p).first).text
        #expect(text.contains("iface ens3 inet dhcp\n    pre-up ip link set dev ens3 mtu 9000\niface ens3 inet6 auto\n    dhcp 1\n"))
        p.interfaces[0].acceptRA = false
        #expect(try #require(HostProfileRenderer.ifupdown(p).first).text.contains("iface ens3 inet6 dhcp\n"))
        // The edge host: eno2 is DHCP but keeps its static route.
        let edge = try #require(HostProfileRenderer.ifupdown(Fixtures.edgeCapture().profile).first).text
        #expect(edge.contains("iface eno2 inet dhcp\n    pre-up ip link set dev eno2 mtu 1500\n    post-up ip route replace 198.18.0.0/15 via 192.168.10.1 dev eno2\n"))
        #expect(edge.contains("iface eno2 inet6 auto\n"))
        #expect(edge.contains("post-up ip -6 route replace 2001:db8:ffff::/48 via 2001:db8:1::fffe dev eno1 metric 1024"))
        // No resolv.conf without name servers.
        var quiet = Fixtures.dhcpOnly()
        quiet.dns = DNSSettings()
        #expect(try HostProfileRenderer.render(quiet, as: .ifupdown).file("/etc/resolv.conf") == nil)
    }

    @Test func ipv6OnlyPutsMTUAndDNSOnTheInet6Stanza() throws {
        let text = try #require(HostProfileRenderer.ifupdown(Fixtures.ipv6Only()).first).text
        #expect(text.contains("""
            iface enp1s0 inet6 static
                address 2001:db8:42::7/64
                gateway 2001:db8:42::1
                metric 10
                mtu 1500
                accept_ra 0
                dns-nameservers 2001:db8:42::53
                dns-search example.org
            """))
        #expect(!text.contains("enp1s0 inet "))
    }
}

struct NetworkdRendererTests {
    @Test func matchesByMACWithRoutesAsSections() throws {
        let files = try HostProfileRenderer.render(Fixtures.staticDualStack(), as: .systemdNetworkd)
        let eno1 = OrderedINI(try #require(files.file("/etc/systemd/network/10-shoal-eno1.network")).text)
        #expect(eno1.values("Match", "MACAddress") == ["3c:ec:ef:10:20:30"])
        #expect(eno1.values("Match", "Type") == ["ether"])
        #expect(eno1.values("Match", "Name").isEmpty)
        #expect(eno1.values("Link", "MTUBytes") == ["9000"])
        #expect(eno1.values("Network", "DHCP") == ["no"])
        #expect(eno1.values("Network", "IPv6AcceptRA") == ["no"])
        #expect(eno1.values("Network", "Address") == ["192.0.2.10/24", "192.0.2.11/24", "2001:db8::10/64"])
        #expect(eno1.values("Network", "DNS") == ["192.0.2.53", "2001:db8::53"])
        #expect(eno1.values("Network", "Domains") == ["example.net corp.example"])
        #expect(eno1.sections(named: "Route") == [["Gateway": "192.0.2.1", "Metric": "100"], ["Gateway": "2001:db8::1"]])
        let eno2 = OrderedINI(try #require(files.file("/etc/systemd/network/10-shoal-eno2.network")).text)
        #expect(eno2.sections(named: "Route") == [["Destination": "10.0.0.0/8", "Gateway": "10.1.0.1", "Metric": "50"]])
        #expect(eno2.values("Network", "DNS").isEmpty)  // DNS goes on the primary interface only
        #expect(eno2.values("Network", "LinkLocalAddressing") == ["ipv4"])  // it had no IPv6 at all
        #expect(files.files(under: "/etc/systemd/network/", suffix: ".link").count == 2)
        let noNames = HostProfileRenderer.systemdNetworkd(Fixtures.staticDualStack(), options: RenderOptions(keepInterfaceNames: false))
        #expect(noNames.allSatisfy { $0.path.hasSuffix(".network") })
    }

    @Test func dhcpVariants() throws {
        let d = OrderedINI(try #require(HostProfileRenderer.systemdNetworkd(Fixtures.dhcpOnly()).first).text)
        #expect(d.values("Network", "DHCP") == ["yes"] && d.values("Network", "IPv6AcceptRA") == ["yes"])
        #expect(d.values("Network", "DNS").isEmpty)  // DHCP supplies DNS
        let edge = try HostProfileRenderer.systemdNetworkd(Fixtures.edgeCapture().profile)
        let eno2 = OrderedINI(try #require(edge.file("/etc/systemd/network/10-shoal-eno2.network")).text)
        #expect(eno2.values("Network", "DHCP") == ["ipv4"] && eno2.values("Network", "Address").isEmpty)
    }
}

struct NetplanRendererTests {
    @Test func reparsesToTheProfile() throws {
        for profile in Fixtures.allProfiles {
            let file = try #require(HostProfileRenderer.netplan(profile).first)
            #expect(file.path == "/etc/netplan/90-shoal.yaml" && file.mode == 0o600)
            let doc = try MiniYAML.parse(file.text, source: file.path)
            #expect(doc["network"]?["version"]?.string == "2")
            let ethernets = try #require(doc["network"]?["ethernets"])
            #expect(ethernets.keys == profile.interfaces.map(\.name))
            for i in profile.interfaces {
                let e = try #require(ethernets[i.name])
                #expect(e["match"]?["macaddress"]?.string == i.mac.description)
                #expect(e["set-name"]?.string == i.name)
                #expect(e["dhcp4"]?.bool == i.dhcp4 && e["dhcp6"]?.bool == i.dhcp6 && e["accept-ra"]?.bool == i.acceptRA)
                #expect((e["addresses"]?.array ?? []).compactMap(\.string) == i.addresses.map(\.description))
                #expect(e["mtu"]?.string == i.mtu.map(String.init))
                let routes = e["routes"]?.array ?? []
                #expect(routes.count == profile.routes(for: i).count)
                for (r, y) in zip(profile.routes(for: i), routes) {
                    #expect(y["to"]?.string == (r.isDefault ? "default" : r.destination.description))
                    #expect(y["via"]?.string == r.gateway?.description)
                    #expect(y["metric"]?.string == r.metric.map(String.init))
                }
                // And netplan's own reading of it (the capture hints) agrees.
                let hint = try #require(NetworkConfigHints.netplan(CapturedFile(path: file.path, text: file.text, mode: 0o600))
                    .first { $0.mac == i.mac })
                #expect(hint.dhcp4 == i.dhcp4 && hint.dhcp6 == i.dhcp6 && hint.acceptRA == i.acceptRA)
            }
        }
    }

    @Test func nameserversOnThePrimaryInterfaceOnly() throws {
        let doc = try MiniYAML.parse(try #require(HostProfileRenderer.netplan(Fixtures.staticDualStack()).first).text)
        let eno1 = try #require(doc["network"]?["ethernets"]?["eno1"])
        #expect(eno1["nameservers"]?["addresses"]?.array?.compactMap(\.string) == ["192.0.2.53", "2001:db8::53"])
        #expect(eno1["nameservers"]?["search"]?.array?.compactMap(\.string) == ["example.net", "corp.example"])
        #expect(doc["network"]?["ethernets"]?["eno2"]?["nameservers"] == nil)
        let noNames = try #require(HostProfileRenderer.netplan(Fixtures.staticDualStack(), options: RenderOptions(keepInterfaceNames: false)).first)
        #expect(!noNames.text.contains("set-name"))
    }
}

struct NetworkManagerRendererTests {
    @Test func keyfilesBoundByMAC() throws {
        let files = HostProfileRenderer.networkManager(Fixtures.staticDualStack())
        #expect(files.map(\.path) == [
            "/etc/NetworkManager/system-connections/shoal-eno1.nmconnection",
            "/etc/NetworkManager/system-connections/shoal-eno2.nmconnection",
        ])
        #expect(files.allSatisfy { $0.mode == 0o600 })
        let eno1 = OrderedINI(files[0].text)
        #expect(eno1.values("connection", "type") == ["ethernet"])
        #expect(eno1.values("connection", "interface-name").isEmpty)  // the name may differ in the new OS
        #expect(eno1.values("ethernet", "mac-address") == ["3C:EC:EF:10:20:30"])
        #expect(eno1.values("ethernet", "mtu") == ["9000"])
        #expect(eno1.values("ipv4", "method") == ["manual"])
        #expect(eno1.values("ipv4", "address1") == ["192.0.2.10/24"] && eno1.values("ipv4", "address2") == ["192.0.2.11/24"])
        #expect(eno1.values("ipv4", "gateway") == ["192.0.2.1"] && eno1.values("ipv4", "route-metric") == ["100"])
        #expect(eno1.values("ipv4", "dns") == ["192.0.2.53;"] && eno1.values("ipv6", "dns") == ["2001:db8::53;"])
        #expect(eno1.values("ipv4", "dns-search") == ["example.net;corp.example;"])
        #expect(eno1.values("ipv6", "method") == ["manual"] && eno1.values("ipv6", "address1") == ["2001:db8::10/64"])
        let eno2 = OrderedINI(files[1].text)
        #expect(eno2.values("ipv4", "route1") == ["10.0.0.0/8,10.1.0.1,50"])
        #expect(eno2.values("ipv6", "method") == ["ignore"])
        // Stable UUIDs, one per MAC, in UUID form.
        let uuid1 = try #require(eno1.values("connection", "uuid").first)
        #expect(uuid1 == OrderedINI(HostProfileRenderer.networkManager(Fixtures.staticDualStack())[0].text).values("connection", "uuid").first)
        #expect(uuid1 != eno2.values("connection", "uuid").first)
        #expect(UUID(uuidString: uuid1) != nil)
    }

    @Test func methodsForAutomaticFamilies() throws {
        let d = OrderedINI(try #require(HostProfileRenderer.networkManager(Fixtures.dhcpOnly()).first).text)
        #expect(d.values("ipv4", "method") == ["auto"] && d.values("ipv6", "method") == ["auto"])
        var p = Fixtures.dhcpOnly()
        p.interfaces[0].acceptRA = false
        p.interfaces[0].dhcp4 = false
        let d6 = OrderedINI(try #require(HostProfileRenderer.networkManager(p).first).text)
        #expect(d6.values("ipv4", "method") == ["disabled"] && d6.values("ipv6", "method") == ["dhcp"])
        let hint = try #require(NetworkConfigHints.networkManager(CapturedFile(path: "/x", text: HostProfileRenderer.networkManager(p)[0].text, mode: 0o600)).first)
        #expect(hint.mac == Fixtures.mac3 && hint.dhcp4 == false && hint.dhcp6 == true)
    }
}

/// Collects elements (namespace URI, local name, attributes, text) with XMLParser's namespace processing on.
final class UnattendCollector: NSObject, XMLParserDelegate {
    struct Element {
        var namespace: String?
        var name: String
        var attributes: [String: String]
        var text = ""
        var path: [String]
    }

    var elements: [Element] = []
    private var stack: [Int] = []
    var namespaceMappings: [String: String] = [:]

    func parser(_ p: XMLParser, didStartMappingPrefix prefix: String, toURI uri: String) { namespaceMappings[prefix] = uri }

    func parser(_ p: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        let path = stack.map { elements[$0].name } + [name]
        elements.append(Element(namespace: namespaceURI, name: name, attributes: attributes, path: path))
        stack.append(elements.count - 1)
    }

    func parser(_ p: XMLParser, foundCharacters s: String) {
        if let top = stack.last { elements[top].text += s }
    }

    func parser(_ p: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        let top = stack.removeLast()
        elements[top].text = elements[top].text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func parse(_ text: String) throws -> UnattendCollector {
        let c = UnattendCollector()
        let parser = XMLParser(data: Data(text.utf8))
        parser.shouldProcessNamespaces = true
        parser.shouldReportNamespacePrefixes = true
        parser.delegate = c
        guard parser.parse() else { throw parser.parserError ?? HostProfileError.invalidValue("XML") }
        return c
    }

    func all(_ name: String) -> [Element] { elements.filter { $0.name == name } }
    func texts(_ name: String, under parent: String) -> [String] {
        elements.filter { $0.name == name && $0.path.dropLast().last == parent }.map(\.text)
    }
}

struct UnattendRendererTests {
    let unattend = "urn:schemas-microsoft-com:unattend"
    let wcm = "http://schemas.microsoft.com/WMIConfig/2002/State"

    @Test func structureAndNamespaces() throws {
        let files = try HostProfileRenderer.render(Fixtures.staticDualStack(), as: .windows)
        let file = try #require(files.file("/Windows/Panther/unattend.xml"))
        let x = try UnattendCollector.parse(file.text)
        #expect(x.namespaceMappings["wcm"] == wcm)
        #expect(x.elements.first?.name == "unattend" && x.elements.first?.namespace == unattend)
        #expect(x.elements.allSatisfy { $0.namespace == unattend })  // every element in the unattend namespace
        #expect(x.all("settings").map { $0.attributes["pass"] } == ["specialize"])
        let components = x.all("component")
        #expect(components.map { $0.attributes["name"] } == ["Microsoft-Windows-Shell-Setup", "Microsoft-Windows-TCPIP", "Microsoft-Windows-DNS-Client"])
        for c in components {
            #expect(c.attributes["processorArchitecture"] == "amd64" && c.attributes["publicKeyToken"] == "31bf3856ad364e35")
            #expect(c.attributes["language"] == "neutral" && c.attributes["versionScope"] == "nonSxS")
        }
        #expect(x.all("ComputerName").map(\.text) == ["web1"])

        // TCPIP: interfaces by MAC in Windows form, addresses in CIDR, routes.
        let tcpipInterfaces = x.elements.filter { $0.path == ["unattend", "settings", "component", "Interfaces", "Interface"] }
        #expect(tcpipInterfaces.count == 3)  // two TCPIP + one DNS-Client
        #expect(x.texts("Identifier", under: "Interface") == ["3C-EC-EF-10-20-30", "3C-EC-EF-10-20-31", "3C-EC-EF-10-20-30"])
        let unicast = x.all("IpAddress").filter { $0.path.contains("UnicastIpAddresses") }
        #expect(unicast.map(\.text) == ["192.0.2.10/24", "192.0.2.11/24", "2001:db8::10/64", "10.1.0.10/16"])
        // wcm attributes are namespaced: with namespace processing XMLParser reports them by qualified name.
        #expect(unicast.allSatisfy { $0.attributes["wcm:action"] == "add" })
        #expect(unicast.map { $0.attributes["wcm:keyValue"] } == ["1", "2", "3", "1"])
        #expect(x.texts("Prefix", under: "Route") == ["0.0.0.0/0", "::/0", "10.0.0.0/8"])
        #expect(x.texts("NextHopAddress", under: "Route") == ["192.0.2.1", "2001:db8::1", "10.1.0.1"])
        #expect(x.texts("Metric", under: "Route") == ["100", "50"])
        #expect(Set(x.texts("Identifier", under: "Route")).count == 3)  // unique route identifiers
        #expect(x.texts("DhcpEnabled", under: "Ipv4Settings") == ["false", "false"])

        // DNS client: servers in order on the primary interface, suffixes, domain.
        let dnsServers = x.all("IpAddress").filter { $0.path.contains("DNSServerSearchOrder") }
        #expect(dnsServers.map(\.text) == ["192.0.2.53", "2001:db8::53"])
        #expect(x.texts("DomainName", under: "DNSSuffixSearchOrder") == ["example.net", "corp.example"])
        #expect(x.texts("DNSDomain", under: "component") == ["example.net"])
    }

    @Test func dhcpInterfaceAndSecurityFiles() throws {
        let files = try HostProfileRenderer.render(Fixtures.dhcpOnly(), as: .windows)
        let x = try UnattendCollector.parse(try #require(files.file("/Windows/Panther/unattend.xml")).text)
        #expect(x.texts("DhcpEnabled", under: "Ipv4Settings") == ["true"])
        #expect(x.texts("DhcpEnabled", under: "Ipv6Settings") == ["true"])
        #expect(x.texts("RouterDiscoveryEnabled", under: "Ipv6Settings") == ["true"])
        #expect(x.all("UnicastIpAddresses").isEmpty && x.all("DNSServerSearchOrder").isEmpty)

        let secure = try HostProfileRenderer.render(Fixtures.staticDualStack(), as: .windows)
        #expect(secure.file("/ProgramData/ssh/ssh_host_ed25519_key")?.mode == 0o600)
        #expect(secure.file("/ProgramData/ssh/ssh_host_ed25519_key.pub")?.mode == 0o644)
        #expect(secure.file("/ProgramData/ssh/administrators_authorized_keys")?.text == Fixtures.rootKeys)
        #expect(secure.file("/Users/alice/.ssh/authorized_keys")?.text == Fixtures.aliceKeys)
        #expect(secure.file("/ProgramData/Shoal/tls/host.key")?.mode == 0o600)
        #expect(secure.file("/ProgramData/Shoal/tls/ca.pem")?.text == "CA\n")
        #expect(!secure.contains { $0.path.hasPrefix("/etc/") })
    }

    @Test func computerNameLimitsAndEscaping() throws {
        var p = Fixtures.staticDualStack()
        p.hostname = "a-very-long-hostname"
        #expect(throws: HostProfileError.self) { try HostProfileRenderer.render(p, as: .windows) }
        let ok = try HostProfileRenderer.windowsUnattend(p, options: RenderOptions(windowsArchitecture: "arm64", windowsComputerName: "EDGE7"))
        let x = try UnattendCollector.parse(ok.text)
        #expect(x.all("ComputerName").map(\.text) == ["EDGE7"])
        #expect(x.all("component").allSatisfy { $0.attributes["processorArchitecture"] == "arm64" })
        p.hostname = "12345"
        #expect(throws: HostProfileError.self) { try HostProfileRenderer.windowsUnattend(p) }
        #expect(XMLWriter.escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&apos;")
    }
}

struct CommonFileTests {
    @Test(arguments: [NetworkConfigFormat.ifupdown, .systemdNetworkd, .netplan, .networkManager])
    func securityAndIdentityFiles(_ format: NetworkConfigFormat) throws {
        let files = try HostProfileRenderer.render(Fixtures.staticDualStack(), as: format)
        #expect(files.file("/etc/hostname")?.text == "web1\n")
        #expect(files.file("/etc/hosts")?.text.contains("192.0.2.10\tweb1.example.net web1\n") == true)
        // Host keys get the modes sshd insists on, whatever they had.
        #expect(files.file("/etc/ssh/ssh_host_ed25519_key")?.mode == 0o600)
        #expect(files.file("/etc/ssh/ssh_host_ed25519_key.pub")?.mode == 0o644)
        #expect(files.file("/etc/ssh/ssh_host_ed25519_key")?.text == Fixtures.sshRSA)
        // authorized_keys: 0600 in a 0700 .ssh, keeping the owner.
        let alice = try #require(files.file("/home/alice/.ssh/authorized_keys"))
        #expect(alice.mode == 0o600 && alice.uid == 1000 && alice.gid == 1000)
        let aliceDir = try #require(files.file("/home/alice/.ssh"))
        #expect(aliceDir.kind == .directory && aliceDir.mode == 0o700 && aliceDir.uid == 1000)
        #expect(files.file("/root/.ssh")?.mode == 0o700)
        #expect(files.file("/etc/shoal/tls/host.key")?.mode == 0o600)
        #expect(files.file("/etc/shoal/tls/host.pem")?.mode == 0o644)
        #expect(files.file("/etc/shoal/tls/ca.pem")?.text == "CA\n")
        #expect(Set(files.map(\.path)).count == files.count)  // no path twice
        #expect(files.allSatisfy { $0.path.hasPrefix("/") })
        let bare = try HostProfileRenderer.render(Fixtures.staticDualStack(), as: format, options: RenderOptions(includeSecurity: false))
        #expect(!bare.contains { $0.path.hasPrefix("/etc/ssh/") || $0.path.contains("/.ssh") || $0.path.hasPrefix("/etc/shoal/") })
    }

    @Test func hostsFileMergesIntoTheTargets() {
        let p = Fixtures.staticDualStack()
        let existing = "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n10.9.9.9\tweb1 stale\n192.0.2.99\tbuild-cache\n\n::1 localhost ip6-localhost\n"
        let merged = HostProfileRenderer.hostsFile(p, existing: existing)
        #expect(merged == "127.0.0.1\tlocalhost\n192.0.2.10\tweb1.example.net web1\n192.0.2.99\tbuild-cache\n\n::1 localhost ip6-localhost\n")
        #expect(HostProfileRenderer.hostsFile(Fixtures.dhcpOnly(), existing: nil).contains("127.0.1.1\tcache3\n"))
        #expect(HostProfileRenderer.hostsFile(Fixtures.dhcpOnly(), existing: "10.0.0.1 gw\n") == "10.0.0.1 gw\n127.0.1.1\tcache3\n")
    }

    @Test(arguments: [NetworkConfigFormat.systemdNetworkd, .netplan, .networkManager, .ifupdown])
    func renderedConfigCapturesBackToTheSameInterfaces(_ format: NetworkConfigFormat) throws {
        // Render the edge host, then capture again from a tree holding only the rendered files: the
        // DHCP/static decisions must survive, whatever the kernel's flags say.
        let original = try Fixtures.edgeCapture().profile
        var tree = Fixtures.edgeTree()
        for f in try HostProfileRenderer.render(original, as: format) where f.kind == .file {
            tree.files[f.path] = CapturedFile(path: f.path, contents: f.contents, mode: f.mode)
        }
        let again = try Fixtures.edgeCapture(tree).profile
        #expect(again.interfaces.map(\.mac) == original.interfaces.map(\.mac))
        #expect(again.interfaces.map(\.dhcp4) == original.interfaces.map(\.dhcp4))
        #expect(again.interfaces.map(\.acceptRA) == original.interfaces.map(\.acceptRA))
        #expect(again.interfaces.map(\.addresses) == original.interfaces.map(\.addresses))
        #expect(again.interfaces.allSatisfy { $0.configuredBy != nil })
    }
}

struct ConflictTests {
    @Test func competingConfigsAreListedOursAreNot() throws {
        var t = InMemoryFileSource()
        t.add("/etc/netplan/50-cloud-init.yaml", "network: {}\n")
        t.add("/etc/netplan/90-shoal.yaml", "network: {}\n")
        t.add("/etc/netplan/README", "x")
        t.add("/etc/systemd/network/99-default.link", "")
        t.add("/etc/systemd/network/20-wired.network", "")
        t.add("/etc/systemd/network/10-shoal-eno1.network", "")
        t.add("/etc/NetworkManager/system-connections/Wired connection 1.nmconnection", "")
        t.add("/etc/NetworkManager/system-connections/shoal-eno1.nmconnection", "")
        #expect(try HostProfileRenderer.conflictingConfigFiles(in: t, for: .netplan) == ["/etc/netplan/50-cloud-init.yaml"])
        #expect(try HostProfileRenderer.conflictingConfigFiles(in: t, for: .systemdNetworkd) == ["/etc/systemd/network/20-wired.network"])
        #expect(try HostProfileRenderer.conflictingConfigFiles(in: t, for: .networkManager)
            == ["/etc/NetworkManager/system-connections/Wired connection 1.nmconnection"])
        #expect(try HostProfileRenderer.conflictingConfigFiles(in: t, for: .ifupdown).isEmpty)
        #expect(try HostProfileRenderer.conflictingConfigFiles(in: t, for: .windows).isEmpty)
    }
}
