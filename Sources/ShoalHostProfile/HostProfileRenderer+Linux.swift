import Foundation
import ShoalCrypto

extension HostProfileRenderer {
    // MARK: systemd .link (names)

    /// `/etc/systemd/network/10-shoal-NAME.link`: gives the interface with this MAC its source-OS
    /// name. Read by systemd-udevd, so it works whatever manages the network (ifupdown relies on it).
    public static func systemdLinkFiles(_ profile: HostProfile) -> [RenderedFile] {
        profile.interfaces.map { i in
            RenderedFile(
                path: "/etc/systemd/network/10-shoal-\(fileSafe(i.name)).link",
                text: header(profile) + "[Match]\nMACAddress=\(i.mac)\n\n[Link]\nName=\(i.name)\n", mode: 0o644)
        }
    }

    // MARK: ifupdown

    /// `/etc/network/interfaces` (plus `.link` files, since ifupdown matches by name only).
    ///
    /// Each interface gets one `inet static` stanza per IPv4 address (interfaces(5) applies every
    /// stanza of an interface), the default route as `gateway`/`metric` of the first, other routes as
    /// `post-up ip route replace`, and `inet dhcp` / `inet6 auto` / `inet6 dhcp` for automatic families.
    public static func ifupdown(_ profile: HostProfile, options: RenderOptions = RenderOptions()) -> [RenderedFile] {
        var text = header(profile)
        text += "# Interface names are pinned by MAC in /etc/systemd/network/10-shoal-*.link.\n\n"
        text += "auto lo\niface lo inet loopback\n"
        for i in profile.interfaces {
            text += "\n# \(i.name) (\(i.mac))\nauto \(i.name)\n"
            let routes = profile.routes(for: i)
            let dns = staticDNS(profile, for: i)
            // MTU and DNS options go in the first stanza of the interface: IPv4's when it has one.
            let hasV4Stanza = i.dhcp4 || !i.addresses(.ipv4).isEmpty
            for family in [IPAddress.Family.ipv4, .ipv6] {
                let firstStanzaOfInterface = family == .ipv4 || !hasV4Stanza
                let inet = family == .ipv4 ? "inet" : "inet6"
                let addresses = i.addresses(family)
                let familyRoutes = routes.filter { $0.family == family }
                let gatewayRoute = familyRoutes.first { $0.isDefault && $0.gateway != nil }
                var extraRoutes = familyRoutes.filter { $0 != gatewayRoute }
                let automatic = family == .ipv4 ? i.dhcp4 : (i.dhcp6 || i.acceptRA)
                var stanzas: [[String]] = []
                if automatic {
                    var options: [String] = []
                    let method = family == .ipv4 ? "dhcp" : (i.acceptRA ? "auto" : "dhcp")
                    if family == .ipv6 && i.acceptRA && i.dhcp6 { options.append("dhcp 1") }
                    // The dhcp and auto methods take no `mtu` option; set it on the link before they run.
                    if let mtu = i.mtu, firstStanzaOfInterface { options.append("pre-up ip link set dev \(i.name) mtu \(mtu)") }
                    stanzas.append(["iface \(i.name) \(inet) \(method)"] + options)
                    // A static address next to a lease, and a static default route: as commands.
                    for a in addresses {
                        stanzas[0].append("post-up ip addr add \(a) dev \(i.name)")
                        stanzas[0].append("pre-down ip addr del \(a) dev \(i.name) || true")
                    }
                    if let g = gatewayRoute { extraRoutes.insert(g, at: 0) }
                } else {
                    for (n, a) in addresses.enumerated() {
                        var lines = ["iface \(i.name) \(inet) static", "address \(a)"]
                        if n == 0 {
                            if let g = gatewayRoute, let via = g.gateway {
                                lines.append("gateway \(via)")
                                if let m = g.metric { lines.append("metric \(m)") }
                            }
                            if let mtu = i.mtu, firstStanzaOfInterface { lines.append("mtu \(mtu)") }
                            if family == .ipv6 { lines.append("accept_ra 0") }
                        }
                        stanzas.append(lines)
                    }
                    if addresses.isEmpty, let g = gatewayRoute { extraRoutes.insert(g, at: 0) }
                }
                guard !stanzas.isEmpty else { continue }
                if let dns, firstStanzaOfInterface {
                    if !dns.nameservers.isEmpty {
                        stanzas[0].append("dns-nameservers \(dns.nameservers.map(\.description).joined(separator: " "))")
                    }
                    if !dns.searchDomains.isEmpty { stanzas[0].append("dns-search \(dns.searchDomains.joined(separator: " "))") }
                }
                for r in extraRoutes {
                    let spec = ipRouteSpec(r, device: i.name)
                    stanzas[0].append("post-up ip \(family == .ipv6 ? "-6 " : "")route replace \(spec)")
                    stanzas[0].append("pre-down ip \(family == .ipv6 ? "-6 " : "")route del \(spec) || true")
                }
                for s in stanzas { text += s[0] + "\n" + s.dropFirst().map { "    \($0)\n" }.joined() }
            }
        }
        return [RenderedFile(path: "/etc/network/interfaces", text: text, mode: 0o644)] + systemdLinkFiles(profile)
    }

    static func ipRouteSpec(_ r: Route, device: String) -> String {
        var spec = r.isDefault ? "default" : r.destination.description
        if let g = r.gateway { spec += " via \(g)" }
        spec += " dev \(device)"
        if let m = r.metric { spec += " metric \(m)" }
        return spec
    }

    // MARK: systemd-networkd

    /// `/etc/systemd/network/10-shoal-NAME.network` per interface, matched by `MACAddress=` (and
    /// `Type=ether`, so a VLAN or bridge that inherits the MAC does not match), plus `.link` files
    /// when names are kept. Every route, default ones included, is a `[Route]` section, so metrics carry over.
    public static func systemdNetworkd(_ profile: HostProfile, options: RenderOptions = RenderOptions()) -> [RenderedFile] {
        var out: [RenderedFile] = []
        for i in profile.interfaces {
            var text = header(profile) + "# \(i.name) (\(i.mac))\n[Match]\nMACAddress=\(i.mac)\nType=ether\n"
            if let mtu = i.mtu { text += "\n[Link]\nMTUBytes=\(mtu)\n" }
            let dhcp = i.dhcp4 && i.dhcp6 ? "yes" : i.dhcp4 ? "ipv4" : i.dhcp6 ? "ipv6" : "no"
            text += "\n[Network]\nDHCP=\(dhcp)\nIPv6AcceptRA=\(i.acceptRA ? "yes" : "no")\n"
            if i.ipv6Disabled { text += "LinkLocalAddressing=ipv4\n" }
            for a in i.addresses { text += "Address=\(a)\n" }
            if let dns = staticDNS(profile, for: i) {
                for ns in dns.nameservers { text += "DNS=\(ns)\n" }
                if !dns.searchDomains.isEmpty { text += "Domains=\(dns.searchDomains.joined(separator: " "))\n" }
            }
            for r in profile.routes(for: i) {
                text += "\n[Route]\n"
                if !r.isDefault { text += "Destination=\(r.destination)\n" }
                if let g = r.gateway { text += "Gateway=\(g)\n" }
                if r.gateway == nil && r.isDefault { text += "Destination=\(r.destination)\nScope=link\n" }
                if let m = r.metric { text += "Metric=\(m)\n" }
            }
            out.append(RenderedFile(path: "/etc/systemd/network/10-shoal-\(fileSafe(i.name)).network", text: text, mode: 0o644))
        }
        return out + (options.keepInterfaceNames ? systemdLinkFiles(profile) : [])
    }

    // MARK: netplan

    /// `/etc/netplan/90-shoal.yaml` (mode 0600, as netplan wants): one `ethernets` entry per
    /// interface with `match: macaddress`, `set-name` when names are kept, `dhcp4`/`dhcp6`/`accept-ra`,
    /// `addresses`, `routes` (`to: default` for default routes) and `nameservers` on the primary interface.
    public static func netplan(_ profile: HostProfile, options: RenderOptions = RenderOptions()) -> [RenderedFile] {
        var y = header(profile) + "network:\n  version: 2\n  ethernets:\n"
        for i in profile.interfaces {
            y += "    \(yamlKey(i.name)):\n"
            y += "      match:\n        macaddress: \"\(i.mac)\"\n"
            if options.keepInterfaceNames { y += "      set-name: \(yamlKey(i.name))\n" }
            if let mtu = i.mtu { y += "      mtu: \(mtu)\n" }
            y += "      dhcp4: \(i.dhcp4)\n      dhcp6: \(i.dhcp6)\n      accept-ra: \(i.acceptRA)\n"
            if i.ipv6Disabled { y += "      link-local: [ ipv4 ]\n" }
            if !i.addresses.isEmpty {
                y += "      addresses:\n" + i.addresses.map { "        - \"\($0)\"\n" }.joined()
            }
            let routes = profile.routes(for: i)
            if !routes.isEmpty {
                y += "      routes:\n"
                for r in routes {
                    y += "        - to: \(r.isDefault ? "default" : "\"\(r.destination)\"")\n"
                    if let g = r.gateway { y += "          via: \"\(g)\"\n" } else { y += "          scope: link\n" }
                    if let m = r.metric { y += "          metric: \(m)\n" }
                }
            }
            if let dns = staticDNS(profile, for: i) {
                y += "      nameservers:\n"
                if !dns.nameservers.isEmpty {
                    y += "        addresses: [\(dns.nameservers.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
                }
                if !dns.searchDomains.isEmpty {
                    y += "        search: [\(dns.searchDomains.map { "\"\($0)\"" }.joined(separator: ", "))]\n"
                }
            }
        }
        return [RenderedFile(path: "/etc/netplan/90-shoal.yaml", text: y, mode: 0o600)]
    }

    /// Interface names are `[A-Za-z0-9_.-]` in practice; quote anything else.
    static func yamlKey(_ s: String) -> String {
        s.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_.-".contains($0)) }) && !s.isEmpty
            ? s : "\"" + s.replacingOccurrences("\\", with: "\\\\").replacingOccurrences("\"", with: "\\\"") + "\""
    }

    // MARK: NetworkManager

    /// `/etc/NetworkManager/system-connections/shoal-NAME.nmconnection` per interface (mode 0600;
    /// NetworkManager ignores keyfiles others can read), bound by `[ethernet] mac-address`, not by
    /// name. The UUID is derived from the MAC, so rendering twice gives the same file.
    public static func networkManager(_ profile: HostProfile, options: RenderOptions = RenderOptions()) -> [RenderedFile] {
        var out: [RenderedFile] = []
        for i in profile.interfaces {
            var t = header(profile)
            t += "[connection]\nid=shoal-\(i.name)\nuuid=\(connectionUUID(i.mac))\ntype=ethernet\n"
            t += "autoconnect=true\nautoconnect-priority=100\n"
            t += "\n[ethernet]\nmac-address=\(i.mac.description.uppercased())\n"
            if let mtu = i.mtu { t += "mtu=\(mtu)\n" }
            let dns = staticDNS(profile, for: i)
            let routes = profile.routes(for: i)
            for family in [IPAddress.Family.ipv4, .ipv6] {
                let addresses = i.addresses(family)
                let method: String
                if family == .ipv4 {
                    method = i.dhcp4 ? "auto" : addresses.isEmpty ? "disabled" : "manual"
                } else {
                    method = i.acceptRA ? "auto" : i.dhcp6 ? "dhcp" : addresses.isEmpty ? "ignore" : "manual"
                }
                t += "\n[\(family == .ipv4 ? "ipv4" : "ipv6")]\nmethod=\(method)\n"
                for (n, a) in addresses.enumerated() { t += "address\(n + 1)=\(a)\n" }
                let familyRoutes = routes.filter { $0.family == family }
                let gatewayRoute = familyRoutes.first { $0.isDefault && $0.gateway != nil }
                if let g = gatewayRoute, let via = g.gateway {
                    t += "gateway=\(via)\n"
                    if let m = g.metric { t += "route-metric=\(m)\n" }
                }
                var n = 0
                for r in familyRoutes where r != gatewayRoute {
                    n += 1
                    let zero = family == .ipv4 ? "0.0.0.0" : "::"
                    t += "route\(n)=\(r.destination),\(r.gateway?.description ?? zero)" + (r.metric.map { ",\($0)" } ?? "") + "\n"
                }
                if let dns {
                    let servers = dns.nameservers(family)
                    if !servers.isEmpty { t += "dns=\(servers.map { "\($0);" }.joined())\n" }
                    if family == .ipv4 && !dns.searchDomains.isEmpty { t += "dns-search=\(dns.searchDomains.map { "\($0);" }.joined())\n" }
                }
            }
            t += "\n[proxy]\n"
            out.append(RenderedFile(
                path: "/etc/NetworkManager/system-connections/shoal-\(fileSafe(i.name)).nmconnection", text: t, mode: 0o600))
        }
        return out
    }

    /// A name-based UUID (RFC 9562 version 8, from SHA-256) for the connection of `mac`.
    static func connectionUUID(_ mac: MACAddress) -> String {
        var b = Array(SHA256.hash(Array("shoal-networkmanager:\(mac)".utf8)).bytes.prefix(16))
        b[6] = (b[6] & 0x0f) | 0x80
        b[8] = (b[8] & 0x3f) | 0x80
        let h = Hex.encode(b)
        let c = Array(h)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(c[$0]) }.joined(separator: "-")
    }
}
