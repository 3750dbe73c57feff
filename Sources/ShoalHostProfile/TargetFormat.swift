import Foundation

/// The network-configuration systems a profile can be rendered for.
public enum NetworkConfigFormat: String, CaseIterable, Codable, Hashable, Sendable, CustomStringConvertible {
    case ifupdown
    case systemdNetworkd = "systemd-networkd"
    case netplan
    case networkManager = "NetworkManager"
    case windows

    public var description: String { rawValue }
}

/// A detected format and the evidence for it (for the step log).
public struct TargetFormatDetection: Hashable, Sendable {
    public var format: NetworkConfigFormat
    /// What in the tree decided it, for example "/etc/netplan/50-cloud-init.yaml".
    public var reason: String
}

/// Decides which network-configuration system a target OS tree uses.
///
/// Rules, first match wins (also in docs/HOST-PROFILE.md):
/// 1. **Windows**: `/Windows/System32` is a directory (case-insensitive on the first two
///    components, since an NTFS tree mounted by ntfs-3g keeps Windows' casing).
/// 2. **netplan**: a `*.yaml`/`*.yml` in `/etc/netplan`, or the `netplan` binary. Netplan sits on top
///    of networkd or NetworkManager and regenerates their files at boot, so it must win over both.
/// 3. **NetworkManager, enabled**: `NetworkManager.service` wanted by a target (a symlink under
///    `/etc/systemd/system/*.wants/`).
/// 4. **systemd-networkd, enabled**: `systemd-networkd.service` wanted likewise, or a `*.network`
///    file in `/etc/systemd/network`.
/// 5. **ifupdown, configured**: `/etc/network/interfaces` declares an interface other than `lo`
///    (directly or in `interfaces.d`).
/// 6. **NetworkManager, installed**: its binary or `NetworkManager.conf` is present.
/// 7. **ifupdown, installed**: the `ifup` binary or `/etc/network/interfaces` is present.
/// 8. **systemd-networkd, installed**: its binary is present (every systemd OS has it, so it comes last;
///    a renderer for it must also enable the service, which the agent does when it writes the files).
///
/// "Enabled" outranks "installed" because images commonly carry several systems and enable one.
public enum TargetFormatDetector {
    /// Detects the format of the OS tree in `files`.
    /// - Throws: ``HostProfileError/targetFormatUnknown(_:)`` when nothing matches.
    public static func detect(_ files: any FileSource) throws(HostProfileError) -> TargetFormatDetection {
        if let windows = windowsDirectory(files) {
            return TargetFormatDetection(format: .windows, reason: "\(windows)/System32 is present")
        }
        let netplanYAML = try files.list("/etc/netplan").filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }
        if let first = netplanYAML.first {
            return TargetFormatDetection(format: .netplan, reason: "/etc/netplan/\(first) is present")
        }
        if let bin = firstExisting(files, binaries("netplan")) {
            return TargetFormatDetection(format: .netplan, reason: "\(bin) is present")
        }
        if let link = try enabledUnit(files, "NetworkManager.service") {
            return TargetFormatDetection(format: .networkManager, reason: "\(link) enables NetworkManager")
        }
        if let link = try enabledUnit(files, "systemd-networkd.service") {
            return TargetFormatDetection(format: .systemdNetworkd, reason: "\(link) enables systemd-networkd")
        }
        if let network = try files.list("/etc/systemd/network").first(where: { $0.hasSuffix(".network") }) {
            return TargetFormatDetection(format: .systemdNetworkd, reason: "/etc/systemd/network/\(network) is present")
        }
        if let path = try ifupdownDeclaresInterface(files) {
            return TargetFormatDetection(format: .ifupdown, reason: "\(path) declares an interface")
        }
        if let bin = firstExisting(files, binaries("NetworkManager") + ["/etc/NetworkManager/NetworkManager.conf"]) {
            return TargetFormatDetection(format: .networkManager, reason: "\(bin) is present")
        }
        if let bin = firstExisting(files, binaries("ifup") + ["/etc/network/interfaces"]) {
            return TargetFormatDetection(format: .ifupdown, reason: "\(bin) is present")
        }
        let networkd = ["/lib/systemd/systemd-networkd", "/usr/lib/systemd/systemd-networkd"]
        if let bin = firstExisting(files, networkd) {
            return TargetFormatDetection(format: .systemdNetworkd, reason: "\(bin) is present")
        }
        throw .targetFormatUnknown(
            "no Windows directory, netplan, NetworkManager, systemd-networkd or ifupdown found in the target tree")
    }

    static func binaries(_ name: String) -> [String] {
        ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].map { $0 + name }
    }

    static func firstExisting(_ files: any FileSource, _ paths: [String]) -> String? {
        paths.first { files.exists($0) }
    }

    static func windowsDirectory(_ files: any FileSource) -> String? {
        guard let top = (try? files.list("/"))?.first(where: { $0.lowercased() == "windows" }),
            let sys = (try? files.list("/" + top))?.first(where: { $0.lowercased() == "system32" }),
            files.isDirectory("/\(top)/\(sys)")
        else { return nil }
        return "/" + top
    }

    static func enabledUnit(_ files: any FileSource, _ unit: String) throws(HostProfileError) -> String? {
        for dir in try files.list("/etc/systemd/system") where dir.hasSuffix(".wants") {
            let path = "/etc/systemd/system/\(dir)/\(unit)"
            // A dangling symlink (the unit is not installed) is not "enabled": status follows links in the tree.
            if files.exists(path) { return path }
        }
        return nil
    }

    static func ifupdownDeclaresInterface(_ files: any FileSource) throws(HostProfileError) -> String? {
        var candidates = ["/etc/network/interfaces"]
        candidates += try files.list("/etc/network/interfaces.d").map { "/etc/network/interfaces.d/\($0)" }
        for path in candidates {
            guard let text = try files.readText(path) else { continue }
            for line in text.split(whereSeparator: \.isNewline) {
                let f = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                if f.count >= 2, f[0] == "iface", f[1] != "lo" { return path }
            }
        }
        return nil
    }
}
