import Foundation

/// Renders a ``HostProfile`` into a target OS's own formats.
///
/// ```swift
/// let detection = try TargetFormatDetector.detect(DirectoryFileSource(root: "/mnt/target"))
/// for file in try HostProfileRenderer.render(profile, as: detection.format) { … write it … }
/// ```
///
/// Interfaces are matched by MAC in every format that can (networkd, netplan, NetworkManager,
/// Windows), so the new OS's interface names do not matter.
public enum HostProfileRenderer {
    /// Everything for `format`: the network configuration plus the common files (for Linux targets
    /// `/etc/hostname`, `/etc/hosts`, SSH host keys, authorized keys, Shoal TLS files; for Windows the
    /// unattend file and the OpenSSH and Shoal files under `/ProgramData`).
    /// - Throws: ``HostProfileError/unrenderable(format:reason:)`` when the profile cannot be expressed.
    public static func render(
        _ profile: HostProfile, as format: NetworkConfigFormat, options: RenderOptions = RenderOptions()
    ) throws(HostProfileError) -> [RenderedFile] {
        switch format {
        case .windows:
            var out = [try windowsUnattend(profile, options: options)]
            if options.includeSecurity { out += windowsSecurityFiles(profile, options: options) }
            return out
        case .ifupdown: return ifupdown(profile, options: options) + linuxCommonFiles(profile, options: options, resolvConf: true)
        case .systemdNetworkd: return systemdNetworkd(profile, options: options) + linuxCommonFiles(profile, options: options)
        case .netplan: return netplan(profile, options: options) + linuxCommonFiles(profile, options: options)
        case .networkManager: return networkManager(profile, options: options) + linuxCommonFiles(profile, options: options)
        }
    }

    /// The interface that carries the host's identity: the one with the IPv4 default route, else the
    /// IPv6 one, else the first. DNS settings go on it.
    static func primaryInterface(_ profile: HostProfile) -> NetworkInterface? {
        for family in [IPAddress.Family.ipv4, .ipv6] {
            if let r = profile.routes.first(where: { $0.isDefault && $0.family == family }), let i = profile.interface(for: r) {
                return i
            }
        }
        return profile.interfaces.first
    }

    /// Static DNS is rendered unless the primary interface gets IPv4 by DHCP, which then supplies it
    /// (pinning a lease's servers would outlive a change on the DHCP server).
    static func staticDNS(_ profile: HostProfile, for iface: NetworkInterface) -> DNSSettings? {
        guard let primary = primaryInterface(profile), primary.mac == iface.mac, !primary.dhcp4 else { return nil }
        return profile.dns.nameservers.isEmpty && profile.dns.searchDomains.isEmpty ? nil : profile.dns
    }

    /// A file-name-safe form of an interface name.
    static func fileSafe(_ name: String) -> String {
        String(name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
    }

    static func header(_ profile: HostProfile, comment: String = "#") -> String {
        "\(comment) Rendered by Shoal from the host profile of \(profile.fqdn)"
            + (profile.sourceOS.map { " (captured on \($0))" } ?? "") + ".\n"
    }

    // MARK: Common Linux files

    /// `/etc/hostname`, `/etc/hosts`, SSH host keys (private 0600, public 0644), authorized keys
    /// (0600 in a 0700 `.ssh`, original owner), the Shoal TLS files (key 0600, certificates 0644),
    /// and `/etc/resolv.conf` when asked (ifupdown targets, where nothing else writes it).
    public static func linuxCommonFiles(_ profile: HostProfile, options: RenderOptions = RenderOptions(), resolvConf: Bool = false)
        -> [RenderedFile]
    {
        var out = [RenderedFile(path: "/etc/hostname", text: profile.hostname + "\n", mode: 0o644)]
        out.append(RenderedFile(path: "/etc/hosts", text: hostsFile(profile, existing: options.existingHosts), mode: 0o644))
        if resolvConf && !profile.dns.nameservers.isEmpty {
            var text = header(profile)
            if !profile.dns.searchDomains.isEmpty { text += "search \(profile.dns.searchDomains.joined(separator: " "))\n" }
            for ns in profile.dns.nameservers { text += "nameserver \(ns)\n" }
            out.append(RenderedFile(path: "/etc/resolv.conf", text: text, mode: 0o644))
        }
        guard options.includeSecurity else { return out }
        let security = profile.security
        for key in security.sshHostKeys {
            let isPublic = key.path.hasSuffix(".pub")
            out.append(RenderedFile(path: key.path, contents: key.contents, mode: isPublic ? 0o644 : 0o600, uid: 0, gid: 0))
        }
        var sshDirectories = Set<String>()
        for keys in security.authorizedKeys {
            let dir = String(keys.path[..<(keys.path.lastIndex(of: "/") ?? keys.path.startIndex)])
            if sshDirectories.insert(dir).inserted {
                out.append(.directory(dir, mode: 0o700, uid: keys.uid, gid: keys.gid))
            }
            out.append(RenderedFile(path: keys.path, contents: keys.contents, mode: 0o600, uid: keys.uid, gid: keys.gid))
        }
        let paths = options.paths
        if let c = security.shoalCertificate { out.append(RenderedFile(path: paths.shoalCertificatePath, contents: c.contents, mode: 0o644)) }
        if let k = security.shoalKey { out.append(RenderedFile(path: paths.shoalKeyPath, contents: k.contents, mode: 0o600)) }
        if let ca = security.fleetCA { out.append(RenderedFile(path: paths.fleetCAPath, contents: ca.contents, mode: 0o644)) }
        return out
    }

    /// An `/etc/hosts` that names the host: its primary static IPv4 address (Debian's `127.0.1.1`
    /// when it has none) → `fqdn hostname`. Lines of `existing` that named the host, or used
    /// `127.0.1.1`, are replaced; everything else is kept.
    public static func hostsFile(_ profile: HostProfile, existing: String?) -> String {
        let address = primaryInterface(profile)?.addresses(.ipv4).first.map { $0.address.description } ?? "127.0.1.1"
        let names = profile.domain == nil ? profile.hostname : "\(profile.fqdn) \(profile.hostname)"
        let entry = "\(address)\t\(names)"
        guard let existing else {
            return """
                127.0.0.1\tlocalhost
                \(entry)

                ::1\tlocalhost ip6-localhost ip6-loopback
                ff02::1\tip6-allnodes
                ff02::2\tip6-allrouters

                """
        }
        var lines: [String] = []
        var inserted = false
        for raw in existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let content = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            let namesHost = fields.dropFirst().contains { $0 == profile.hostname || $0 == profile.fqdn }
            if fields.first == "127.0.1.1" || namesHost {
                if !inserted { lines.append(entry); inserted = true }
                continue
            }
            lines.append(raw)
            if !inserted, fields.first == "127.0.0.1" { lines.append(entry); inserted = true }
        }
        if !inserted {
            if lines.last == "" { lines.insert(entry, at: lines.count - 1) } else { lines.append(entry) }
        }
        var text = lines.joined(separator: "\n")
        if !text.hasSuffix("\n") { text += "\n" }
        return text
    }
}

extension HostProfileRenderer {
    /// Network-configuration files already in the target tree that would compete with the rendered
    /// ones (a cloud-init netplan file with `dhcp4: true` for the same NIC, a NetworkManager default
    /// connection, a networkd file matching `en*`). The driver moves them aside (for example to
    /// `PATH.shoal-disabled`, outside the directory's glob) before writing; Shoal's own files are not listed.
    ///
    /// - netplan: every other `*.yaml`/`*.yml` in `/etc/netplan` (netplan merges them all);
    /// - systemd-networkd: every other `*.network` in `/etc/systemd/network` (the first match by name wins,
    ///   and `10-shoal-` may not sort first against a `00-` file);
    /// - NetworkManager: every other keyfile in `/etc/NetworkManager/system-connections`;
    /// - ifupdown: nothing (the rendered `/etc/network/interfaces` replaces the file and does not
    ///   `source` `interfaces.d`); Windows: nothing.
    public static func conflictingConfigFiles(in target: any FileSource, for format: NetworkConfigFormat)
        throws(HostProfileError) -> [String]
    {
        let (directory, keep, isConfig): (String, (String) -> Bool, (String) -> Bool)
        switch format {
        case .netplan:
            (directory, keep, isConfig) = ("/etc/netplan", { $0 == "90-shoal.yaml" }, { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") })
        case .systemdNetworkd:
            (directory, keep, isConfig) = ("/etc/systemd/network", { $0.hasPrefix("10-shoal-") }, { $0.hasSuffix(".network") })
        case .networkManager:
            (directory, keep, isConfig) = ("/etc/NetworkManager/system-connections", { $0.hasPrefix("shoal-") }, { !$0.hasPrefix(".") })
        case .ifupdown, .windows:
            return []
        }
        return try target.list(directory).filter { isConfig($0) && !keep($0) && target.isFile(joinPath(directory, $0)) }
            .map { joinPath(directory, $0) }
    }
}
