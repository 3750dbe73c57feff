import Foundation

/// One link from `ip -j address show`, as iproute2 prints it.
public struct IPLink: Hashable, Sendable {
    public var name: String
    /// `link_type`: `ether`, `loopback`, `none` (tunnels), …
    public var linkType: String
    /// `address`: the MAC for Ethernet links.
    public var mac: MACAddress?
    public var mtu: Int?
    public var flags: [String]
    /// Set when the link is enslaved to a bridge or bond (`master`).
    public var master: String?
    /// Set for stacked links (VLANs, macvlans: `link`).
    public var parentLink: String?
    public var addresses: [IPLinkAddress]
}

/// One entry of a link's `addr_info`.
public struct IPLinkAddress: Hashable, Sendable {
    public var network: IPNetwork
    /// `scope`: `global`, `link`, `host`, `site`.
    public var scope: String
    /// The kernel marks addresses with a finite lifetime (DHCP leases, SLAAC) as `dynamic`.
    public var dynamic: Bool
    /// Made from a router advertisement prefix (`mngtmpaddr`) or a privacy address (`temporary`).
    public var autoconfigured: Bool
}

/// One route from `ip -j route show` or `ip -j -6 route show`.
public struct IPRouteEntry: Hashable, Sendable {
    public var destination: IPNetwork
    public var gateway: IPAddress?
    public var device: String?
    public var metric: Int?
    /// `protocol`: `kernel`, `boot`, `static`, `dhcp`, `ra`, … (iproute2 omits it for `boot` on some versions).
    public var proto: String?
    /// `type`: absent for unicast; `unreachable`, `blackhole`, `local`, `broadcast`, `multicast`, …
    public var type: String?
    /// True for ECMP routes (`nexthops`), which the profile does not carry.
    public var multipath: Bool
}

/// Parsers for iproute2's JSON output (`ip -j`), which is stable across iproute2 versions since 4.14.
public enum IPCommandOutput {
    private struct RawLink: Decodable {
        var ifname: String
        var link_type: String?
        var address: String?
        var mtu: Int?
        var flags: [String]?
        var master: String?
        var link: String?
        var addr_info: [RawAddress]?
    }

    private struct RawAddress: Decodable {
        var family: String?
        var local: String?
        var prefixlen: Int?
        var scope: String?
        var dynamic: Bool?
        var mngtmpaddr: Bool?
        var temporary: Bool?
    }

    private struct RawRoute: Decodable {
        var dst: String
        var gateway: String?
        var via: RawVia?
        var dev: String?
        var metric: Int?
        var `protocol`: String?
        var type: String?
        var nexthops: [RawVia]?
    }

    private struct RawVia: Decodable {
        var host: String?
        var family: String?
    }

    /// Parses `ip -j address show`.
    /// - Throws: ``HostProfileError/unparsable(source:reason:)`` for non-JSON input or bad addresses.
    public static func parseAddresses(_ json: String) throws(HostProfileError) -> [IPLink] {
        let source = "ip -j address show"
        let raw: [RawLink]
        do { raw = try JSONDecoder().decode([RawLink].self, from: Data(json.utf8)) } catch {
            throw .unparsable(source: source, reason: describe(error))
        }
        var out: [IPLink] = []
        for link in raw {
            var mac: MACAddress?
            if let a = link.address, link.link_type == "ether" {
                do { mac = try MACAddress(parsing: a) } catch { throw .unparsable(source: source, reason: "\(link.ifname): \(error)") }
            }
            var addresses: [IPLinkAddress] = []
            for a in link.addr_info ?? [] {
                // iproute2 prints an empty object for addresses of families it does not know.
                guard let local = a.local, let prefix = a.prefixlen, a.family == "inet" || a.family == "inet6" else { continue }
                let network: IPNetwork
                do { network = try IPNetwork(address: IPAddress(parsing: local), prefixLength: prefix) } catch {
                    throw .unparsable(source: source, reason: "\(link.ifname): \(error)")
                }
                addresses.append(IPLinkAddress(
                    network: network, scope: a.scope ?? "global", dynamic: a.dynamic ?? false,
                    autoconfigured: (a.mngtmpaddr ?? false) || (a.temporary ?? false)))
            }
            out.append(IPLink(
                name: link.ifname, linkType: link.link_type ?? "none", mac: mac, mtu: link.mtu, flags: link.flags ?? [],
                master: link.master, parentLink: link.link, addresses: addresses))
        }
        return out
    }

    /// Parses `ip -j route show` or `ip -j -6 route show`. `family` says which one it is, because
    /// a default route prints as `"dst": "default"` with no family of its own.
    /// - Throws: ``HostProfileError/unparsable(source:reason:)``.
    public static func parseRoutes(_ json: String, family: IPAddress.Family) throws(HostProfileError) -> [IPRouteEntry] {
        let source = family == .ipv4 ? "ip -j route show" : "ip -j -6 route show"
        let raw: [RawRoute]
        do { raw = try JSONDecoder().decode([RawRoute].self, from: Data(json.utf8)) } catch {
            throw .unparsable(source: source, reason: describe(error))
        }
        var out: [IPRouteEntry] = []
        for r in raw {
            do {
                let destination: IPNetwork
                if r.dst == "default" {
                    let zero = try IPAddress(bytes: [UInt8](repeating: 0, count: family == .ipv4 ? 4 : 16))
                    destination = try IPNetwork(address: zero, prefixLength: 0)
                } else {
                    destination = try IPNetwork(parsing: r.dst).network
                }
                guard destination.family == family else {
                    throw HostProfileError.invalidValue("\(r.dst) is not \(family == .ipv4 ? "IPv4" : "IPv6")")
                }
                // IPv4 routes via an IPv6 next hop (RFC 5549) print `via: {family, host}`.
                let gatewayText = r.gateway ?? r.via?.host
                let gateway = try gatewayText.map { (g: String) throws(HostProfileError) in try IPAddress(parsing: g) }
                out.append(IPRouteEntry(
                    destination: destination, gateway: gateway, device: r.dev, metric: r.metric, proto: r.protocol,
                    type: r.type, multipath: r.nexthops != nil))
            } catch {
                throw .unparsable(source: source, reason: "route \(r.dst): \(error)")
            }
        }
        return out
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return c.debugDescription + " " + (c.underlyingError.map { "\($0)" } ?? "")
        case DecodingError.keyNotFound(let key, let c):
            return "missing '\(key.stringValue)' at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(let type, let c):
            return "expected \(type) at \(c.codingPath.map(\.stringValue).joined(separator: "."))"
        default: return "\(error)"
        }
    }
}

/// Parsers for the small text files capture reads.
public enum SystemFiles {
    /// Parses `/etc/resolv.conf`: `nameserver` lines in order, `search` (and the older `domain`,
    /// which `search` overrides, as glibc does). Unparsable nameserver values are skipped, as glibc does.
    public static func parseResolvConf(_ text: String) -> DNSSettings {
        var settings = DNSSettings()
        var domain: String?
        var search: [String]?
        for line in text.split(whereSeparator: \.isNewline) {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let key = fields.first, !key.hasPrefix("#"), !key.hasPrefix(";") else { continue }
            switch key {
            case "nameserver":
                if fields.count > 1, let a = try? IPAddress(parsing: fields[1]), !settings.nameservers.contains(a) {
                    settings.nameservers.append(a)
                }
            case "search": search = Array(fields.dropFirst()).filter { $0 != "." }
            case "domain": domain = fields.count > 1 ? fields[1] : nil
            default: continue
            }
        }
        settings.searchDomains = search ?? domain.map { [$0] } ?? []
        return settings
    }

    /// Parses `/etc/hostname` (first non-comment line). Returns the short name and the domain when
    /// the file holds a fully qualified name.
    public static func parseHostname(_ text: String) -> (hostname: String, domain: String?)? {
        for line in text.split(whereSeparator: \.isNewline) {
            let name = line.trimmingCharacters(in: .whitespaces)
            guard !name.isEmpty, !name.hasPrefix("#") else { continue }
            let labels = name.split(separator: ".", maxSplits: 1)
            return (String(labels[0]), labels.count > 1 ? String(labels[1]) : nil)
        }
        return nil
    }

    /// Finds the domain of `hostname` in `/etc/hosts`: the first alias of the form `hostname.domain`.
    public static func domainFromHosts(_ text: String, hostname: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for name in content.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst()
            where name.hasPrefix(hostname + ".") && name.count > hostname.count + 1 {
                return String(name.dropFirst(hostname.count + 1))
            }
        }
        return nil
    }

    /// `PRETTY_NAME` (else `NAME VERSION`) from `/etc/os-release`.
    public static func parseOSRelease(_ text: String) -> String? {
        var values: [String: String] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let eq = line.firstIndex(of: "="), !line.hasPrefix("#") else { continue }
            var v = String(line[line.index(after: eq)...])
            if v.count >= 2, let q = v.first, q == "\"" || q == "'", v.last == q { v = String(v.dropFirst().dropLast()) }
            values[String(line[..<eq])] = v
        }
        return values["PRETTY_NAME"] ?? values["NAME"].map { n in values["VERSION"].map { "\(n) \($0)" } ?? n }
    }

    /// Home directories from `/etc/passwd` of root and of regular users (uid ≥ 1000, below 65534).
    public static func homeDirectories(fromPasswd text: String) -> [String] {
        var homes: [String] = []
        for line in text.split(whereSeparator: \.isNewline) {
            let f = line.split(separator: ":", omittingEmptySubsequences: false)
            guard f.count >= 7, let uid = Int(f[2]), uid == 0 || (1000..<65534).contains(uid) else { continue }
            let home = String(f[5])
            if home.hasPrefix("/"), home != "/", !homes.contains(home) { homes.append(home) }
        }
        return homes
    }
}
