import Foundation

/// Where capture looks for the security data, and which interfaces it leaves out.
public struct CaptureOptions: Hashable, Sendable {
    /// The host's Shoal TLS certificate, key and the fleet CA (the files of `shoal peer --tls DIR`).
    public var shoalCertificatePath: String
    public var shoalKeyPath: String
    public var fleetCAPath: String
    /// The directory holding `ssh_host_*`.
    public var sshDirectory: String
    /// Interfaces whose names start with one of these are container, VM or tunnel plumbing that
    /// the new OS recreates itself (or never had); they are not captured.
    public var ignoredInterfacePrefixes: [String]

    public init(
        shoalCertificatePath: String = "/etc/shoal/tls/host.pem", shoalKeyPath: String = "/etc/shoal/tls/host.key",
        fleetCAPath: String = "/etc/shoal/tls/ca.pem", sshDirectory: String = "/etc/ssh",
        ignoredInterfacePrefixes: [String] = [
            "docker", "veth", "virbr", "br-", "cni", "flannel", "cali", "vxlan", "tap", "tun", "vnet", "lxc", "podman",
            "ifb",
        ]
    ) {
        self.shoalCertificatePath = shoalCertificatePath
        self.shoalKeyPath = shoalKeyPath
        self.fleetCAPath = fleetCAPath
        self.sshDirectory = sshDirectory
        self.ignoredInterfacePrefixes = ignoredInterfacePrefixes
    }
}

/// What capture is given: the outputs of the `ip` commands the agent ran, and the source OS's tree.
public struct CaptureInput: Sendable {
    /// Output of `ip -j address show`.
    public var ipAddressJSON: String
    /// Output of `ip -j route show` (IPv4).
    public var ipRouteJSON: String
    /// Output of `ip -j -6 route show`.
    public var ipv6RouteJSON: String
    /// The source OS's root (`DirectoryFileSource(root: "/")` on the running host).
    public var files: any FileSource
    public var options: CaptureOptions

    public init(
        ipAddressJSON: String, ipRouteJSON: String, ipv6RouteJSON: String = "[]", files: any FileSource,
        options: CaptureOptions = CaptureOptions()
    ) {
        self.ipAddressJSON = ipAddressJSON
        self.ipRouteJSON = ipRouteJSON
        self.ipv6RouteJSON = ipv6RouteJSON
        self.files = files
        self.options = options
    }
}

/// A captured profile with what capture chose to leave out and why, for the step log.
public struct CaptureResult: Sendable {
    public var profile: HostProfile
    /// One line per interface, address, route or file that was skipped, and why.
    public var notes: [String]
}

/// Builds a ``HostProfile`` from command output and a file tree. Pure: it runs nothing and writes
/// nothing, so the same code captures the running host, a mounted disk, or a test fixture.
public enum HostProfileCapture {
    /// The source OS's network-configuration files that capture keeps verbatim.
    public static let networkConfigLocations: [(directory: String, filter: @Sendable (String) -> Bool)] = [
        ("/etc/network/interfaces.d", { !$0.hasPrefix(".") }),
        ("/etc/systemd/network", { $0.hasSuffix(".network") || $0.hasSuffix(".link") || $0.hasSuffix(".netdev") }),
        ("/etc/netplan", { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }),
        ("/etc/NetworkManager/system-connections", { !$0.hasPrefix(".") }),
    ]

    /// Captures the profile.
    /// - Returns: the profile (validated) and notes on what was left out.
    /// - Throws: ``HostProfileError/unparsable(source:reason:)`` for bad command output,
    ///   ``HostProfileError/missingFile(_:)`` without `/etc/hostname`, ``HostProfileError/invalidValue(_:)``
    ///   when the result does not validate, ``HostProfileError/unreadable(path:reason:)`` for I/O errors.
    public static func capture(from input: CaptureInput) throws(HostProfileError) -> CaptureResult {
        var notes: [String] = []
        let files = input.files

        // Name.
        guard let hostnameText = try files.readText("/etc/hostname"),
            let (hostname, fqdnDomain) = SystemFiles.parseHostname(hostnameText)
        else { throw .missingFile("/etc/hostname") }
        var domain = fqdnDomain
        if domain == nil, let hosts = try files.readText("/etc/hosts") {
            domain = SystemFiles.domainFromHosts(hosts, hostname: hostname)
        }
        var osRelease = try files.readText("/etc/os-release")
        if osRelease == nil { osRelease = try files.readText("/usr/lib/os-release") }
        let sourceOS = osRelease.flatMap(SystemFiles.parseOSRelease)

        // Source OS configuration, verbatim, and what it says about DHCP.
        var configFiles: [CapturedFile] = []
        if let f = try files.capture("/etc/network/interfaces") { configFiles.append(f) }
        for (directory, filter) in networkConfigLocations {
            configFiles += try files.captureDirectory(directory, where: filter)
        }
        let hints = NetworkConfigHints.hints(from: configFiles)
        for f in configFiles where f.path.hasPrefix("/etc/netplan/") {
            do { _ = try NetworkConfigHints.netplan(f) } catch {
                notes.append("\(f.path): not read for DHCP hints (\(error)); kept verbatim")
            }
        }

        // Interfaces.
        let links = try IPCommandOutput.parseAddresses(input.ipAddressJSON)
        var interfaces: [NetworkInterface] = []
        for link in links {
            if link.linkType == "loopback" || link.flags.contains("LOOPBACK") { continue }
            if let p = input.options.ignoredInterfacePrefixes.first(where: { link.name.hasPrefix($0) }) {
                notes.append("interface \(link.name): skipped (name starts with '\(p)': virtual plumbing)")
                continue
            }
            guard link.linkType == "ether", let mac = link.mac, !mac.isZero else {
                notes.append("interface \(link.name): skipped (link type \(link.linkType), no MAC to match it by)")
                continue
            }
            if let master = link.master {
                notes.append("interface \(link.name): skipped (member of \(master); bridges and bonds are not carried over)")
                continue
            }
            if let parent = link.parentLink {
                notes.append("interface \(link.name): skipped (stacked on \(parent); VLANs and macvlans are not carried over)")
                continue
            }
            let hint = hints.first { $0.matches(name: link.name, mac: mac) }
            let globals = link.addresses.filter { !$0.network.address.isLinkLocal && !$0.network.address.isLoopback }
            let dynamic4 = globals.contains { $0.network.family == .ipv4 && $0.dynamic }
            let dynamicV6 = globals.filter { $0.network.family == .ipv6 && $0.dynamic }
            var iface = NetworkInterface(name: link.name, mac: mac, mtu: link.mtu, configuredBy: hint?.path)
            // Without a file that says otherwise, the kernel's view decides: a dynamic IPv4 address is a
            // DHCP lease; a dynamic IPv6 /128 comes from DHCPv6, other dynamic ones from router advertisements.
            iface.dhcp4 = hint?.dhcp4 ?? dynamic4
            iface.dhcp6 = hint?.dhcp6 ?? dynamicV6.contains { $0.network.prefixLength == 128 && !$0.autoconfigured }
            iface.acceptRA = hint?.acceptRA ?? dynamicV6.contains { $0.network.prefixLength != 128 || $0.autoconfigured }
            for a in link.addresses {
                let address = a.network.address
                if address.isLinkLocal || address.isLoopback || a.scope == "host" {
                    continue  // regenerated by every OS; never carried over
                }
                let automatic = a.network.family == .ipv4 ? iface.dhcp4 : (iface.dhcp6 || iface.acceptRA)
                if a.dynamic && automatic {
                    notes.append("address \(a.network) on \(link.name): not kept (leased or autoconfigured; the new OS gets it again)")
                    continue
                }
                if a.autoconfigured {
                    notes.append("address \(a.network) on \(link.name): not kept (SLAAC/privacy address)")
                    continue
                }
                iface.addresses.append(a.network)
            }
            if iface.addresses.isEmpty && !iface.dhcp4 && !iface.dhcp6 && !iface.acceptRA {
                notes.append("interface \(link.name): skipped (no address and not configured for DHCP)")
                continue
            }
            interfaces.append(iface)
        }

        // Routes.
        var routes: [Route] = []
        let entries = try IPCommandOutput.parseRoutes(input.ipRouteJSON, family: .ipv4)
            + IPCommandOutput.parseRoutes(input.ipv6RouteJSON, family: .ipv6)
        for r in entries {
            let label = "route \(r.destination)\(r.gateway.map { " via \($0)" } ?? "")\(r.device.map { " dev \($0)" } ?? "")"
            if let t = r.type, t != "unicast" { continue }  // local, broadcast, unreachable: kernel or policy business
            if r.proto == "kernel" { continue }  // prefix routes that come with the addresses
            if r.destination.address.isLinkLocal || r.destination.address.isMulticast { continue }
            if r.multipath { notes.append("\(label): not kept (multipath routes are not carried over)"); continue }
            guard let iface = interfaces.first(where: { $0.name == r.device })
                ?? r.gateway.flatMap({ g in interfaces.first { $0.addresses.contains { $0.contains(g) } } })
            else {
                notes.append("\(label): not kept (leaves through no captured interface)")
                continue
            }
            let automatic = r.destination.family == .ipv4 ? iface.dhcp4 : (iface.dhcp6 || iface.acceptRA)
            if automatic && (r.proto == "dhcp" || r.proto == "ra") {
                notes.append("\(label): not kept (learned by \(r.proto!); the new OS learns it again)")
                continue
            }
            let route = Route(destination: r.destination, gateway: r.gateway, device: iface.name, metric: r.metric)
            if !routes.contains(route) { routes.append(route) }
        }

        // DNS. systemd-resolved's stub (127.0.0.53) says nothing about the real servers; its own file does.
        var dns = try files.readText("/etc/resolv.conf").map(SystemFiles.parseResolvConf) ?? DNSSettings()
        if dns.nameservers.contains(where: \.isLoopback),
            let upstream = try files.readText("/run/systemd/resolve/resolv.conf").map(SystemFiles.parseResolvConf),
            !upstream.nameservers.isEmpty
        {
            if dns.searchDomains.isEmpty { dns.searchDomains = upstream.searchDomains }
            dns.nameservers = upstream.nameservers
        }
        for ns in dns.nameservers where ns.isLoopback {
            notes.append("name server \(ns): not kept (a local resolver the new OS may not run)")
        }
        dns.nameservers.removeAll { $0.isLoopback }

        // Security data.
        let options = input.options
        let sshKeys = try files.captureDirectory(options.sshDirectory) { $0.hasPrefix("ssh_host_") }
        var homes = ["/root"]
        if let passwd = try files.readText("/etc/passwd") {
            for h in SystemFiles.homeDirectories(fromPasswd: passwd) where !homes.contains(h) { homes.append(h) }
        }
        for name in try files.list("/home") where !homes.contains("/home/\(name)") { homes.append("/home/\(name)") }
        var authorized: [CapturedFile] = []
        for home in homes {
            for name in ["authorized_keys", "authorized_keys2"] {
                if let f = try files.capture(joinPath(home, ".ssh/\(name)")) { authorized.append(f) }
            }
        }
        let security = try SecurityData(
            sshHostKeys: sshKeys, authorizedKeys: authorized, shoalCertificate: files.capture(options.shoalCertificatePath),
            shoalKey: files.capture(options.shoalKeyPath), fleetCA: files.capture(options.fleetCAPath))
        if sshKeys.isEmpty { notes.append("no SSH host keys under \(options.sshDirectory): the new OS will make new ones") }
        if security.shoalCertificate == nil { notes.append("no Shoal certificate at \(options.shoalCertificatePath)") }

        let profile = HostProfile(
            hostname: hostname, domain: domain, sourceOS: sourceOS, interfaces: interfaces, routes: routes, dns: dns,
            networkConfigFiles: configFiles, security: security)
        try profile.validate()
        return CaptureResult(profile: profile, notes: notes)
    }
}
