import Foundation
import ShoalBundle
import ShoalCrypto
import ShoalHostLab
import ShoalStorage

/// A fleet of emulated lab hosts for `shoal lab run --convert`: the embedded default OS images
/// (two small real OSes, busybox-based, in ext4), one `LabHost` per topology host with its own
/// hostname, address and NIC, and the identity check a conversion must pass.
public enum LabFleet {
    /// The embedded default: `base` (the OS every lab host starts with, "alpha", ifupdown) and
    /// `target` (the OS the fleet converts to, "beta", netplan), as ext4 images and bundles. The
    /// staging bundle is the base-OS copy (`baseBundle`), as on a real fleet.
    public struct Images: Sendable {
        public var baseImage: String
        public var baseBundle: String
        public var targetBundle: String

        public init(baseImage: String, baseBundle: String, targetBundle: String) {
            self.baseImage = baseImage
            self.baseBundle = baseBundle
            self.targetBundle = targetBundle
        }
    }

    /// Builds the default images and bundles in `directory` (about 1 MB of bundles each).
    public static func makeDefaultImages(in directory: String, size: UInt64 = 20 << 20) throws -> Images {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        func image(id: String, stacks: [NetworkStack], files: [String: TreeFile]) throws -> String {
            let spec = OSTreeSpec(
                release: OSRelease(id: id, name: "Shoal Lab \(id.capitalized)", versionID: "1", prettyName: "Shoal Lab \(id.capitalized) 1"),
                hostname: "\(id)-default", networkStacks: stacks, sshHostKeys: [.ed25519, .ecdsa],
                applets: ["sh", "init", "ls", "cat", "ip", "ifup"], files: files)
            let tree = try OSTree.build(at: directory + "/tree-\(id)", spec: spec)
            let path = directory + "/\(id).ext4"
            _ = try tree.makeImage(at: path, size: size)
            try? FileManager.default.removeItem(atPath: tree.root)
            return path
        }
        func bundle(_ image: String, name: String) throws -> String {
            var options = BundleCreator.Options(name: name)
            options.regionSize = 1 << 20
            return try BundleCreator(options: options).create(image: image, output: directory + "/\(name).shoal").path
        }
        let alpha = try image(id: "alpha", stacks: [.ifupdown], files: [
            "/etc/resolv.conf": TreeFile(text: "nameserver 10.0.0.53\nsearch lab.example\n"),
        ])
        let beta = try image(id: "beta", stacks: [.netplan], files: [:])
        return Images(baseImage: alpha, baseBundle: try bundle(alpha, name: "alpha"), targetBundle: try bundle(beta, name: "beta"))
    }

    /// One host's network identity in the lab.
    public struct NIC: Sendable, Hashable, Codable {
        public var mac: String
        public var address: String
        public var prefixLength: Int
        public var gateway: String

        public init(mac: String, address: String, prefixLength: Int = 24, gateway: String) {
            self.mac = mac
            self.address = address
            self.prefixLength = prefixLength
            self.gateway = gateway
        }

        /// The host's address in the lab, a MAC from its index, the `.1` of its /24 as gateway.
        public static func lab(index: Int, address: String) -> NIC {
            let parts = address.split(separator: ".")
            let gateway = parts.count == 4 ? parts.prefix(3).joined(separator: ".") + ".1" : address
            let mac = String(format: "52:54:00:%02x:%02x:%02x", (index >> 16) & 0xFF, (index >> 8) & 0xFF, index & 0xFF)
            return NIC(mac: mac, address: address, gateway: gateway)
        }

        /// What `ip -j address show` would print on the host.
        public var ipAddressJSON: String {
            """
            [{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"link_type":"loopback","address":"00:00:00:00:00:00","broadcast":"00:00:00:00:00:00","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo","valid_life_time":4294967295,"preferred_life_time":4294967295}]},\
            {"ifindex":2,"ifname":"eth0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"link_type":"ether","address":"\(mac)","broadcast":"ff:ff:ff:ff:ff:ff","addr_info":[{"family":"inet","local":"\(address)","prefixlen":\(prefixLength),"scope":"global","label":"eth0","valid_life_time":4294967295,"preferred_life_time":4294967295}]}]
            """
        }

        /// What `ip -j route show` would print on the host.
        public var ipRouteJSON: String {
            """
            [{"dst":"default","gateway":"\(gateway)","dev":"eth0","flags":[]}]
            """
        }

        /// The base OS's own ifupdown configuration for this NIC.
        var interfacesFile: String {
            """
            auto lo
            iface lo inet loopback

            auto eth0
            iface eth0 inet static
                address \(address)/\(prefixLength)
                gateway \(gateway)

            """
        }
    }

    /// Creates a lab host in `directory` running the base OS with hostname `name` and `nic`
    /// configured, and powers it on. The staging partition stays empty: the staging bundle is
    /// written there when the host's first conversion is ordered (see `PeerAgent`).
    @discardableResult
    public static func createHost(at directory: String, name: String, baseImage: String, nic: NIC) throws -> LabHost {
        let host = try LabHost.create(at: directory, baseImage: baseImage, stagingImage: nil)
        try host.writeText("base", "/etc/hostname", name + "\n")
        try host.writeText("base", "/etc/network/interfaces", nic.interfacesFile)
        try FileManager.default.createDirectory(atPath: directory + "/net", withIntermediateDirectories: true)
        try nic.ipAddressJSON.write(toFile: directory + "/net/ip-address.json", atomically: true, encoding: .utf8)
        try nic.ipRouteJSON.write(toFile: directory + "/net/ip-route.json", atomically: true, encoding: .utf8)
        try host.boot()
        return host
    }

    /// What a conversion must carry over, as read from the OS a host runs now.
    public struct Identity: Sendable, Hashable, Codable {
        /// The booted entry and its `/etc/os-release` PRETTY_NAME (or NAME).
        public var entry: String
        public var os: String
        public var hostname: String
        /// SHA-256 (hex) of each SSH host key file, by path.
        public var sshHostKeys: [String: String]
        /// The network configuration files that state `address/prefix` of the host's NIC.
        public var addressConfiguredIn: [String]
    }

    static let sshKeyFiles = [
        "/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_ed25519_key.pub",
        "/etc/ssh/ssh_host_ecdsa_key", "/etc/ssh/ssh_host_ecdsa_key.pub",
    ]
    static let networkFiles = [
        "/etc/network/interfaces", "/etc/netplan/90-shoal.yaml", "/etc/systemd/network/90-shoal.network",
        "/etc/NetworkManager/system-connections/shoal-eth0.nmconnection",
    ]

    /// Reads the identity of the OS `host` runs now.
    public static func identity(of host: LabHost, nic: NIC) throws -> Identity {
        let entry = try host.bootedOS().entry
        let release = try host.osRelease(entry)
        var keys: [String: String] = [:]
        for path in sshKeyFiles {
            if let bytes = try? host.readFile(entry, path) { keys[path] = SHA256.hash(bytes).hex }
        }
        let needle = "\(nic.address)/\(nic.prefixLength)"
        var configured: [String] = []
        let fs = try host.filesystem(entry)
        var candidates = networkFiles
        for dir in ["/etc/netplan", "/etc/systemd/network", "/etc/NetworkManager/system-connections"] {
            for e in (try? fs.list(dir)) ?? [] where !candidates.contains(dir + "/" + e.name) { candidates.append(dir + "/" + e.name) }
        }
        for path in candidates {
            if let text = try? fs.readText(path), text.contains(needle) { configured.append(path) }
        }
        let hostname = ((try? host.readText(entry, "/etc/hostname")) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return Identity(entry: entry, os: release.prettyName.isEmpty ? release.name : release.prettyName, hostname: hostname,
                        sshHostKeys: keys, addressConfiguredIn: configured.sorted())
    }

    /// Whether `after` keeps what `before` had: hostname, SSH host keys byte for byte, and the
    /// address configured. Returns the differences (empty: the profile was carried over).
    public static func differences(before: Identity, after: Identity) -> [String] {
        var out: [String] = []
        if before.hostname != after.hostname { out.append("hostname \(before.hostname) became \(after.hostname)") }
        if before.sshHostKeys.isEmpty { out.append("no SSH host keys before") }
        for (path, digest) in before.sshHostKeys where after.sshHostKeys[path] != digest {
            out.append(after.sshHostKeys[path] == nil ? "\(path) missing" : "\(path) differs")
        }
        if after.addressConfiguredIn.isEmpty { out.append("the address is configured in no network file") }
        return out
    }
}
