import Foundation

/// What a captured network-configuration file says about one interface: how it is matched and
/// whether its addresses are automatic (DHCP, router advertisements) or static.
///
/// The kernel's view (`ip -j address`) says which addresses exist but not reliably how they came
/// to be, so capture asks the source OS's own configuration first and falls back to the kernel's
/// `dynamic` flags only when no file mentions the interface.
public struct InterfaceConfigHint: Hashable, Sendable {
    /// An interface name or a shell glob (`en*`), when the file matches by name.
    public var name: String?
    public var mac: MACAddress?
    public var dhcp4: Bool?
    public var dhcp6: Bool?
    public var acceptRA: Bool?
    /// The captured file that said so.
    public var path: String

    public func matches(name ifname: String, mac ifmac: MACAddress?) -> Bool {
        if let mac, mac != ifmac { return false }
        if let name, fnmatch(name, ifname, 0) != 0 { return false }
        return mac != nil || name != nil
    }
}

/// Reads DHCP/static hints out of captured configuration files, one parser per format.
public enum NetworkConfigHints {
    /// All hints from `files`, in precedence order: netplan first (it generates the networkd or
    /// NetworkManager configuration at boot, so its files are the source of truth when present),
    /// then NetworkManager, systemd-networkd, ifupdown. The first matching hint wins.
    public static func hints(from files: [CapturedFile]) -> [InterfaceConfigHint] {
        var netplan: [InterfaceConfigHint] = [], nm: [InterfaceConfigHint] = []
        var networkd: [InterfaceConfigHint] = [], ifupdown: [InterfaceConfigHint] = []
        for f in files.sorted(by: { $0.path < $1.path }) {
            if f.path.hasPrefix("/etc/netplan/") {
                netplan += (try? self.netplan(f)) ?? []
            } else if f.path.hasPrefix("/etc/NetworkManager/system-connections/") {
                nm += networkManager(f)
            } else if f.path.hasPrefix("/etc/systemd/network/") && f.path.hasSuffix(".network") {
                networkd += systemdNetworkd(f)
            } else if f.path == "/etc/network/interfaces" || f.path.hasPrefix("/etc/network/interfaces.d/") {
                ifupdown += self.ifupdown(f)
            }
        }
        return netplan + nm + networkd + ifupdown
    }

    /// netplan: `network.ethernets.<id>` with `match.macaddress`/`match.name` (else the id is the
    /// name), `dhcp4`, `dhcp6`, `accept-ra`.
    public static func netplan(_ file: CapturedFile) throws(HostProfileError) -> [InterfaceConfigHint] {
        let doc = try MiniYAML.parse(file.text, source: file.path)
        var out: [InterfaceConfigHint] = []
        for entry in doc["network"]?["ethernets"]?.entries ?? [] {
            let v = entry.value
            var hint = InterfaceConfigHint(path: file.path)
            if let match = v["match"] {
                hint.mac = match["macaddress"]?.string.flatMap { try? MACAddress(parsing: $0) }
                hint.name = match["name"]?.string
            } else {
                hint.name = entry.key
            }
            hint.dhcp4 = v["dhcp4"]?.bool ?? false
            hint.dhcp6 = v["dhcp6"]?.bool ?? false
            hint.acceptRA = v["accept-ra"]?.bool
            out.append(hint)
        }
        return out
    }

    /// NetworkManager keyfile: `[connection] interface-name`, `[ethernet] mac-address`,
    /// `[ipv4] method` (`auto` = DHCP), `[ipv6] method` (`auto` = RA + DHCPv6, `dhcp` = DHCPv6 only).
    public static func networkManager(_ file: CapturedFile) -> [InterfaceConfigHint] {
        let ini = INIFile(file.text)
        guard ini["connection", "type"].map({ $0 == "ethernet" || $0 == "802-3-ethernet" }) ?? true else { return [] }
        var hint = InterfaceConfigHint(path: file.path)
        hint.name = ini["connection", "interface-name"]
        hint.mac = (ini["ethernet", "mac-address"] ?? ini["802-3-ethernet", "mac-address"]).flatMap { try? MACAddress(parsing: $0) }
        let v4 = ini["ipv4", "method"] ?? "auto"
        let v6 = ini["ipv6", "method"] ?? "auto"
        hint.dhcp4 = v4 == "auto"
        hint.dhcp6 = v6 == "auto" || v6 == "dhcp"
        hint.acceptRA = v6 == "auto"
        return hint.name == nil && hint.mac == nil ? [] : [hint]
    }

    /// systemd-networkd `.network`: `[Match] Name=`/`MACAddress=`, `[Network] DHCP=`, `IPv6AcceptRA=`.
    /// A `Name=` with several space-separated patterns gives one hint per pattern.
    public static func systemdNetworkd(_ file: CapturedFile) -> [InterfaceConfigHint] {
        let ini = INIFile(file.text)
        let dhcp = (ini["Network", "DHCP"] ?? "no").lowercased()
        let macs = (ini["Match", "MACAddress"] ?? "").split(separator: " ").compactMap { try? MACAddress(parsing: String($0)) }
        let names = (ini["Match", "Name"] ?? "").split(separator: " ").map(String.init)
        let acceptRA = ini["Network", "IPv6AcceptRA"].map { ["yes", "true", "1", "on"].contains($0.lowercased()) }
        var out: [InterfaceConfigHint] = []
        let base = InterfaceConfigHint(
            dhcp4: ["yes", "true", "both", "ipv4", "1", "on"].contains(dhcp),
            dhcp6: ["yes", "true", "both", "ipv6", "1", "on"].contains(dhcp), acceptRA: acceptRA, path: file.path)
        for mac in macs {
            var h = base
            h.mac = mac
            out.append(h)
        }
        if macs.isEmpty {
            for name in names {
                var h = base
                h.name = name
                out.append(h)
            }
        }
        return out
    }

    /// ifupdown: `iface NAME inet dhcp|static|manual` and `iface NAME inet6 auto|dhcp|static`, with
    /// `accept_ra` inside an `inet6` stanza.
    public static func ifupdown(_ file: CapturedFile) -> [InterfaceConfigHint] {
        var byName: [String: InterfaceConfigHint] = [:]
        var order: [String] = []
        var current: (name: String, family: String)?
        for raw in file.text.split(whereSeparator: \.isNewline) {
            let fields = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = fields.first, !first.hasPrefix("#") else { continue }
            if first == "iface", fields.count >= 4 {
                let name = fields[1], family = fields[2], method = fields[3]
                current = (name, family)
                if method == "loopback" { current = nil; continue }
                if byName[name] == nil { byName[name] = InterfaceConfigHint(name: name, path: file.path); order.append(name) }
                if family == "inet" {
                    byName[name]!.dhcp4 = (byName[name]!.dhcp4 ?? false) || method == "dhcp"
                } else if family == "inet6" {
                    byName[name]!.dhcp6 = (byName[name]!.dhcp6 ?? false) || method == "dhcp"
                    byName[name]!.acceptRA = (byName[name]!.acceptRA ?? false) || method == "auto"
                }
            } else if ["auto", "allow-hotplug", "mapping", "source", "source-directory", "allow-auto"].contains(first) {
                current = nil
            } else if first == "accept_ra", let c = current, c.family == "inet6", fields.count > 1 {
                byName[c.name]!.acceptRA = fields[1] != "0"
            }
        }
        return order.map { byName[$0]! }
    }
}

/// The INI dialect of systemd units and NetworkManager keyfiles: `[Section]`, `key=value`,
/// `#`/`;` comments. Repeated keys: the last one wins (enough for the keys read here).
struct INIFile {
    private var values: [String: [String: String]] = [:]

    init(_ text: String) {
        var section = ""
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                section = String(line.dropFirst().dropLast())
                continue
            }
            guard let eq = line.firstIndex(of: "=") else { continue }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            values[section, default: [:]][key] = value
        }
    }

    subscript(section: String, key: String) -> String? { values[section]?[key] }
    var sections: [String] { Array(values.keys) }
    func keys(in section: String) -> [String: String] { values[section] ?? [:] }
}
