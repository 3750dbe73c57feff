#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// The network configuration system a test OS should look like it uses.
public enum NetworkStack: String, Sendable, Hashable, CaseIterable, Codable {
    /// Debian's `/etc/network/interfaces`.
    case ifupdown
    /// `/etc/systemd/network/*.network`.
    case systemdNetworkd = "systemd-networkd"
    /// `/etc/netplan/*.yaml`.
    case netplan
    /// `/etc/NetworkManager/system-connections/*.nmconnection`.
    case networkManager = "NetworkManager"
}

/// An SSH host key type (`ssh-keygen -t`).
public enum SSHHostKeyType: String, Sendable, Hashable, CaseIterable, Codable {
    case ed25519, ecdsa, rsa
}

/// A file to put into a tree.
public struct TreeFile: Sendable, Hashable {
    public var contents: [UInt8]
    /// Permission bits.
    public var mode: UInt32

    public init(_ contents: [UInt8], mode: UInt32 = 0o644) {
        self.contents = contents
        self.mode = mode
    }

    public init(text: String, mode: UInt32 = 0o644) { self.init(Array(text.utf8), mode: mode) }
}

/// What a small real OS tree holds: busybox-static and the files that name and configure it.
public struct OSTreeSpec: Sendable, Hashable {
    /// Written to `/etc/os-release`.
    public var release: OSRelease
    /// Written to `/etc/hostname` (and `/etc/hosts`).
    public var hostname: String
    /// Network configuration systems to leave marker files and directories of.
    public var networkStacks: [NetworkStack]
    /// SSH host keys to generate into `/etc/ssh/` (none by default).
    public var sshHostKeys: [SSHHostKeyType]
    /// busybox applets to link (`nil`: every applet `busybox --list-full` names).
    public var applets: [String]?
    /// More files, by absolute path (parents are created 0755).
    public var files: [String: TreeFile]

    public init(
        release: OSRelease, hostname: String = "lab-host", networkStacks: [NetworkStack] = [],
        sshHostKeys: [SSHHostKeyType] = [], applets: [String]? = nil, files: [String: TreeFile] = [:]
    ) {
        self.release = release
        self.hostname = hostname
        self.networkStacks = networkStacks
        self.sshHostKeys = sshHostKeys
        self.applets = applets
        self.files = files
    }
}

/// A small but real Linux root file system tree built from `busybox-static`: a statically
/// linked `/bin/busybox` with its applet symlinks (`/bin/sh`, `/sbin/init`, …), the standard
/// directories, `/etc/os-release` naming the OS, and optional network-config and SSH host key
/// files, so an OS made from it looks like a real distribution to the host profile code.
///
/// ```swift
/// let spec = OSTreeSpec(release: OSRelease(id: "shoal-a", name: "Shoal Lab A", versionID: "1"),
///                       networkStacks: [.ifupdown], sshHostKeys: [.ed25519])
/// let tree = try OSTree.build(at: dir + "/os-a", spec: spec)
/// try tree.makeImage(at: dir + "/os-a.ext4", size: 32 << 20)
/// ```
public struct OSTree: Sendable, Hashable {
    /// The tree's root directory.
    public var root: String
    public var spec: OSTreeSpec

    /// The busybox binary copied into trees (Debian's busybox-static).
    public static let busyboxPath = "/bin/busybox"

    /// Builds the tree at `root` (which must not exist or be empty).
    /// - Throws: `HostLabError.toolMissing` without busybox or ssh-keygen, `.badPath` for an
    ///   extra file with an unusable path, `.system`.
    @discardableResult
    public static func build(at root: String, spec: OSTreeSpec) throws(HostLabError) -> OSTree {
        let tree = OSTree(root: root, spec: spec)
        try tree.populate()
        return tree
    }

    /// Makes an ext4 image file of `size` bytes holding the tree (labelled with the OS `ID`,
    /// cut to 16 bytes).
    @discardableResult
    public func makeImage(at path: String, size: UInt64) throws(HostLabError) -> Ext4Filesystem {
        try Ext4Filesystem.makeImage(at: path, size: size, from: root, label: String(spec.release.id.prefix(16)))
    }

    private func populate() throws(HostLabError) {
        let busybox = try HostTool.path(of: OSTree.busyboxPath)
        for (directory, mode) in OSTree.directories { try makeDirectory(directory, mode: mode) }

        // busybox and its applets.
        try copyFile(from: busybox, to: "/bin/busybox", mode: 0o755)
        let links: [String]
        if let applets = spec.applets {
            let all = try OSTree.appletPaths(busybox)
            links = applets.map { applet in all.first { $0.hasSuffix("/" + applet) } ?? "bin/" + applet }
        } else {
            links = try OSTree.appletPaths(busybox)
        }
        for link in links where link != "bin/busybox" {
            let path = root + "/" + link
            try makeDirectory("/" + (link.split(separator: "/").dropLast().joined(separator: "/")), mode: 0o755)
            if access(path, F_OK) == 0 || lstatExists(path) { continue }
            guard symlink("/bin/busybox", path) == 0 else { throw .errno("symlink \(path)") }
        }

        // Identity and the basics every distribution has.
        let release = spec.release
        var files: [String: TreeFile] = [
            "/etc/os-release": TreeFile(text: release.text),
            "/etc/hostname": TreeFile(text: spec.hostname + "\n"),
            "/etc/hosts": TreeFile(text: "127.0.0.1\tlocalhost\n127.0.1.1\t\(spec.hostname)\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
            "/etc/passwd": TreeFile(text: "root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n"),
            "/etc/group": TreeFile(text: "root:x:0:\nnogroup:x:65534:\n"),
            "/etc/shadow": TreeFile(text: "root:*:19000:0:99999:7:::\nsshd:*:19000:0:99999:7:::\n", mode: 0o640),
            "/etc/fstab": TreeFile(text: "LABEL=\(release.id.prefix(16)) / ext4 defaults 0 1\n"),
            "/etc/inittab": TreeFile(text: "::sysinit:/bin/mount -a\n::respawn:/bin/sh\n"),
        ]
        for stack in spec.networkStacks { files.merge(OSTree.networkFiles(stack, hostname: spec.hostname)) { a, _ in a } }
        files.merge(spec.files) { _, caller in caller }
        for (path, file) in files.sorted(by: { $0.key < $1.key }) { try writeFile(path, file) }
        for stack in spec.networkStacks {
            for (directory, mode) in OSTree.networkDirectories(stack) { try makeDirectory(directory, mode: mode) }
        }

        if !spec.sshHostKeys.isEmpty {
            try makeDirectory("/etc/ssh", mode: 0o755)
            for type in spec.sshHostKeys {
                let key = root + "/etc/ssh/ssh_host_\(type.rawValue)_key"
                unlink(key)
                unlink(key + ".pub")
                try HostTool.run(["ssh-keygen", "-q", "-t", type.rawValue, "-N", "", "-C", "root@\(spec.hostname)", "-f", key])
                guard chmod(key, 0o600) == 0, chmod(key + ".pub", 0o644) == 0 else { throw .errno("chmod \(key)") }
            }
        }
    }

    /// The standard directories and their modes.
    static let directories: [(String, mode_t)] = [
        ("/bin", 0o755), ("/sbin", 0o755), ("/usr/bin", 0o755), ("/usr/sbin", 0o755), ("/lib", 0o755),
        ("/etc", 0o755), ("/dev", 0o755), ("/proc", 0o555), ("/sys", 0o555), ("/run", 0o755),
        ("/tmp", 0o1777), ("/root", 0o700), ("/home", 0o755), ("/var", 0o755), ("/var/log", 0o755),
        ("/var/lib", 0o755), ("/var/tmp", 0o1777), ("/boot", 0o755), ("/mnt", 0o755),
    ]

    /// `busybox --list-full`: applet paths relative to the root (`bin/sh`, `usr/bin/awk`).
    static func appletPaths(_ busybox: String) throws(HostLabError) -> [String] {
        try HostTool.run([busybox, "--list-full"]).text.split(separator: "\n").map(String.init).filter { $0.contains("/") }
    }

    /// The marker files of a network configuration system (a loopback-only configuration, as a
    /// fresh install has).
    static func networkFiles(_ stack: NetworkStack, hostname: String) -> [String: TreeFile] {
        switch stack {
        case .ifupdown:
            return ["/etc/network/interfaces": TreeFile(text: """
                # interfaces(5) file used by ifup(8) and ifdown(8)
                source /etc/network/interfaces.d/*

                auto lo
                iface lo inet loopback

                """)]
        case .systemdNetworkd:
            return ["/etc/systemd/network/10-lo.network": TreeFile(text: "[Match]\nName=lo\n\n[Network]\nAddress=127.0.0.1/8\n")]
        case .netplan:
            return ["/etc/netplan/01-shoal-lab.yaml": TreeFile(text: "network:\n  version: 2\n  renderer: networkd\n", mode: 0o600)]
        case .networkManager:
            return ["/etc/NetworkManager/NetworkManager.conf": TreeFile(text: "[main]\nplugins=keyfile\n\n[keyfile]\nhostname=\(hostname)\n")]
        }
    }

    /// The (possibly empty) directories of a network configuration system.
    static func networkDirectories(_ stack: NetworkStack) -> [(String, mode_t)] {
        switch stack {
        case .ifupdown: return [("/etc/network/interfaces.d", 0o755)]
        case .systemdNetworkd: return [("/etc/systemd/network", 0o755), ("/usr/lib/systemd/network", 0o755)]
        case .netplan: return [("/etc/netplan", 0o755)]
        case .networkManager: return [("/etc/NetworkManager/system-connections", 0o700)]
        }
    }

    // MARK: Files in the tree

    /// `mkdir -p` under the root; the last component gets `mode`, missing parents 0755.
    private func makeDirectory(_ path: String, mode: mode_t) throws(HostLabError) {
        guard mkdir(root, 0o755) == 0 || errno == EEXIST else { throw .errno("mkdir \(root)") }
        var current = root
        let components = path.split(separator: "/")
        for component in components {
            current += "/" + component
            guard mkdir(current, 0o755) == 0 || errno == EEXIST else { throw .errno("mkdir \(current)") }
        }
        // chmod, not mkdir's mode: the umask would clear bits such as 1777's.
        if !components.isEmpty { guard chmod(current, mode) == 0 else { throw .errno("chmod \(current)") } }
    }

    private func writeFile(_ path: String, _ file: TreeFile) throws(HostLabError) {
        try Ext4Filesystem.validate(path)
        let parent = "/" + path.split(separator: "/").dropLast().joined(separator: "/")
        if !directoryExists(root + parent) { try makeDirectory(parent, mode: 0o755) }
        let full = root + path
        let fd = try FileIO.open(full, O_WRONLY | O_CREAT | O_TRUNC, mode: 0o600)
        defer { close(fd) }
        try FileIO.pwriteFully(fd, file.contents[...], offset: 0, path: full)
        guard fchmod(fd, mode_t(file.mode & 0o7777)) == 0 else { throw .errno("chmod \(full)") }
    }

    private func copyFile(from source: String, to path: String, mode: UInt32) throws(HostLabError) {
        guard let data = FileManager.default.contents(atPath: source) else { throw .errno("read \(source)") }
        try writeFile(path, TreeFile(Array(data), mode: mode))
    }

    private func directoryExists(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    private func lstatExists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }
}
