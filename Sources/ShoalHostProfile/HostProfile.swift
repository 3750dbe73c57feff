import Foundation

/// Everything a host needs to come back up in another OS at the same address with the same keys:
/// its name, its interfaces (by MAC), routes, DNS, the network-configuration files of the source OS
/// (kept verbatim for audit and for reversal), and its security data.
///
/// A profile is captured once, in the source OS (``HostProfileCapture``), stored on the staging disk
/// in a checksummed envelope (``HostProfileEnvelope``), and rendered into each OS the host boots next
/// (``HostProfileRenderer``), in that OS's own network-configuration format.
///
/// ```swift
/// let profile = try HostProfileCapture.capture(from: CaptureInput(
///     ipAddressJSON: addrs, ipRouteJSON: [v4Routes, v6Routes], files: DirectoryFileSource(root: "/")))
/// let stored = try HostProfileEnvelope.encode(profile)
/// let files = try HostProfileRenderer.render(profile, as: .netplan)
/// ```
public struct HostProfile: Codable, Hashable, Sendable {
    /// The version of this structure; the envelope refuses bodies it does not understand.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    /// The short host name (first label), as in `/etc/hostname`.
    public var hostname: String
    /// The DNS domain, when the source OS knew one (from an FQDN in `/etc/hostname` or `/etc/hosts`).
    public var domain: String?
    /// `PRETTY_NAME` of the source OS's `/etc/os-release`, for logs and the step log.
    public var sourceOS: String?
    public var interfaces: [NetworkInterface]
    public var routes: [Route]
    public var dns: DNSSettings
    /// The source OS's own network-configuration files, verbatim (ifupdown, systemd-networkd,
    /// netplan, NetworkManager). Rendering does not copy them; they are kept for audit, for rendering
    /// back into the same OS on revert, and to decide DHCP versus static at capture time.
    public var networkConfigFiles: [CapturedFile]
    public var security: SecurityData

    public init(
        hostname: String, domain: String? = nil, sourceOS: String? = nil, interfaces: [NetworkInterface] = [],
        routes: [Route] = [], dns: DNSSettings = DNSSettings(), networkConfigFiles: [CapturedFile] = [],
        security: SecurityData = SecurityData()
    ) {
        self.formatVersion = HostProfile.currentFormatVersion
        self.hostname = hostname
        self.domain = domain
        self.sourceOS = sourceOS
        self.interfaces = interfaces
        self.routes = routes
        self.dns = dns
        self.networkConfigFiles = networkConfigFiles
        self.security = security
    }

    /// `hostname.domain`, or the bare hostname when there is no domain.
    public var fqdn: String { domain.map { "\(hostname).\($0)" } ?? hostname }

    /// The interface a route leaves through: by its device name, else the one whose on-link
    /// network holds the gateway.
    public func interface(for route: Route) -> NetworkInterface? {
        if let device = route.device, let match = interfaces.first(where: { $0.name == device }) { return match }
        guard let gateway = route.gateway else { return nil }
        return interfaces.first { $0.addresses.contains { $0.contains(gateway) } }
    }

    /// The routes that leave through `interface`, in capture order.
    public func routes(for interface: NetworkInterface) -> [Route] {
        routes.filter { self.interface(for: $0)?.mac == interface.mac }
    }

    /// Checks what the renderers rely on: a valid host name, unique MACs and names, routes whose
    /// interface is known. Capture calls it; so does loading an envelope.
    public func validate() throws(HostProfileError) {
        guard HostProfile.isValidHostname(hostname) else { throw .invalidValue("host name '\(hostname)'") }
        if let domain, !domain.split(separator: ".", omittingEmptySubsequences: false).allSatisfy({
            HostProfile.isValidHostname(String($0))
        }) {
            throw .invalidValue("domain '\(domain)'")
        }
        var macs = Set<MACAddress>(), names = Set<String>()
        for i in interfaces {
            guard macs.insert(i.mac).inserted else { throw .invalidValue("MAC \(i.mac) appears on two interfaces") }
            guard names.insert(i.name).inserted else { throw .invalidValue("interface \(i.name) appears twice") }
            guard !i.mac.isZero else { throw .invalidValue("interface \(i.name) has no MAC address") }
            if let mtu = i.mtu, !(68...65535).contains(mtu) { throw .invalidValue("MTU \(mtu) of \(i.name)") }
        }
        for r in routes {
            if let g = r.gateway, g.family != r.family {
                throw .invalidValue("route to \(r.destination) via \(g): mixed address families")
            }
            guard interface(for: r) != nil else {
                throw .invalidValue("route to \(r.destination) leaves through no captured interface")
            }
        }
        for f in allCapturedFiles where !f.path.hasPrefix("/") || f.path.split(separator: "/").contains("..") {
            throw .invalidValue("captured path '\(f.path)' is not absolute and clean")
        }
    }

    var allCapturedFiles: [CapturedFile] {
        networkConfigFiles + security.sshHostKeys + security.authorizedKeys
            + [security.shoalCertificate, security.shoalKey, security.fleetCA].compactMap { $0 }
    }

    /// RFC 1123 label: letters, digits, hyphens; 1–63 characters; no hyphen at either end.
    public static func isValidHostname(_ label: String) -> Bool {
        guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return false }
        return label.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "-") }
    }
}

/// One network interface of the source OS, identified by its MAC address.
public struct NetworkInterface: Codable, Hashable, Sendable {
    /// The name in the source OS. Renderers match by ``mac``; the name is used only to keep it
    /// (a `.link` file, netplan `set-name`) and in file names.
    public var name: String
    public var mac: MACAddress
    /// Static addresses to configure. Link-local addresses and those leased by DHCP or made by
    /// SLAAC (on an interface where that family is automatic) are not included: the new OS gets them again.
    public var addresses: [IPNetwork]
    /// IPv4 by DHCP.
    public var dhcp4: Bool
    /// IPv6 by DHCPv6.
    public var dhcp6: Bool
    /// IPv6 router advertisements accepted (SLAAC addresses, default route by RA).
    public var acceptRA: Bool
    public var mtu: Int?
    /// Where the DHCP/static decision came from: the path of the captured config file that
    /// declared the interface, or `nil` when it was inferred from the kernel's view (`dynamic` flags).
    public var configuredBy: String?

    public init(
        name: String, mac: MACAddress, addresses: [IPNetwork] = [], dhcp4: Bool = false, dhcp6: Bool = false,
        acceptRA: Bool = false, mtu: Int? = nil, configuredBy: String? = nil
    ) {
        self.name = name
        self.mac = mac
        self.addresses = addresses
        self.dhcp4 = dhcp4
        self.dhcp6 = dhcp6
        self.acceptRA = acceptRA
        self.mtu = mtu
        self.configuredBy = configuredBy
    }

    public func addresses(_ family: IPAddress.Family) -> [IPNetwork] { addresses.filter { $0.family == family } }

    /// True when this interface has no IPv6 configuration at all (no static address, no DHCPv6, no RA).
    public var ipv6Disabled: Bool { !dhcp6 && !acceptRA && addresses(.ipv6).isEmpty }
}

/// A route of the source OS worth carrying over: a default route or a static route. Kernel
/// prefix routes (`proto kernel`) and routes learned by DHCP or RA are not captured.
public struct Route: Codable, Hashable, Sendable {
    /// The destination network; `0.0.0.0/0` or `::/0` for a default route.
    public var destination: IPNetwork
    public var gateway: IPAddress?
    /// The interface name in the source OS; ``HostProfile/interface(for:)`` turns it into a MAC.
    public var device: String?
    public var metric: Int?

    public init(destination: IPNetwork, gateway: IPAddress? = nil, device: String? = nil, metric: Int? = nil) {
        self.destination = destination.network
        self.gateway = gateway
        self.device = device
        self.metric = metric
    }

    public var family: IPAddress.Family { destination.family }
    public var isDefault: Bool { destination.prefixLength == 0 }

    /// A default route for `gateway`'s family.
    public static func defaultRoute(via gateway: IPAddress, device: String? = nil, metric: Int? = nil) -> Route {
        let any = try! IPAddress(bytes: [UInt8](repeating: 0, count: gateway.bytes.count))
        return Route(destination: try! IPNetwork(address: any, prefixLength: 0), gateway: gateway, device: device, metric: metric)
    }
}

/// Resolver settings: global name servers (in order) and search domains.
public struct DNSSettings: Codable, Hashable, Sendable {
    public var nameservers: [IPAddress]
    public var searchDomains: [String]

    public init(nameservers: [IPAddress] = [], searchDomains: [String] = []) {
        self.nameservers = nameservers
        self.searchDomains = searchDomains
    }

    public func nameservers(_ family: IPAddress.Family) -> [IPAddress] { nameservers.filter { $0.family == family } }
}

/// A file taken from the source OS: absolute path (in the source OS's tree), contents, mode and,
/// when known, owner.
public struct CapturedFile: Codable, Hashable, Sendable {
    public var path: String
    public var contents: Data
    /// Permission bits (`0o600`); stored in JSON as an octal string (`"0600"`) so a person reading
    /// the envelope sees what `ls -l` would.
    public var mode: UInt32
    public var uid: UInt32?
    public var gid: UInt32?

    public init(path: String, contents: Data, mode: UInt32, uid: UInt32? = nil, gid: UInt32? = nil) {
        self.path = path
        self.contents = contents
        self.mode = mode & 0o7777
        self.uid = uid
        self.gid = gid
    }

    public init(path: String, text: String, mode: UInt32, uid: UInt32? = nil, gid: UInt32? = nil) {
        self.init(path: path, contents: Data(text.utf8), mode: mode, uid: uid, gid: gid)
    }

    /// The contents as UTF-8 text (invalid sequences replaced).
    public var text: String { String(decoding: contents, as: UTF8.self) }

    enum CodingKeys: String, CodingKey { case path, contents, mode, uid, gid }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        contents = try c.decode(Data.self, forKey: .contents)
        let modeText = try c.decode(String.self, forKey: .mode)
        guard let m = UInt32(modeText, radix: 8), m <= 0o7777 else {
            throw DecodingError.dataCorruptedError(forKey: .mode, in: c, debugDescription: "mode '\(modeText)' is not octal")
        }
        mode = m
        uid = try c.decodeIfPresent(UInt32.self, forKey: .uid)
        gid = try c.decodeIfPresent(UInt32.self, forKey: .gid)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(contents, forKey: .contents)
        try c.encode(octal(mode), forKey: .mode)
        try c.encodeIfPresent(uid, forKey: .uid)
        try c.encodeIfPresent(gid, forKey: .gid)
    }
}

/// Four-digit octal, as `stat -c %a` with a leading zero: `0600`, `0644`, `1777`.
func octal(_ mode: UInt32) -> String {
    let s = String(mode, radix: 8)
    return String(repeating: "0", count: max(0, 4 - s.count)) + s
}

/// The data that controls access to the host and its identity in the fleet.
public struct SecurityData: Codable, Hashable, Sendable {
    /// `/etc/ssh/ssh_host_*` (private keys and `.pub` files; certificates `*-cert.pub` too).
    public var sshHostKeys: [CapturedFile]
    /// `/root/.ssh/authorized_keys` (and `authorized_keys2`) and the same for each home under `/home`.
    public var authorizedKeys: [CapturedFile]
    /// The host's Shoal TLS certificate, its private key, and the fleet CA certificate.
    public var shoalCertificate: CapturedFile?
    public var shoalKey: CapturedFile?
    public var fleetCA: CapturedFile?

    public init(
        sshHostKeys: [CapturedFile] = [], authorizedKeys: [CapturedFile] = [], shoalCertificate: CapturedFile? = nil,
        shoalKey: CapturedFile? = nil, fleetCA: CapturedFile? = nil
    ) {
        self.sshHostKeys = sshHostKeys
        self.authorizedKeys = authorizedKeys
        self.shoalCertificate = shoalCertificate
        self.shoalKey = shoalKey
        self.fleetCA = fleetCA
    }
}
