import Foundation

/// One file (or directory, or symbolic link) a renderer wants in the target tree.
///
/// Paths are absolute inside the target tree (`/etc/hostname`, `/Windows/Panther/unattend.xml`).
/// The writer (the agent's driver) replaces what is at `path` without following a symbolic link
/// there, creates missing parent directories with mode 0755 owned by root, and applies `mode` and
/// the owner exactly (not through the umask).
public struct RenderedFile: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case file
        case directory
        case symlink(target: String)
    }

    public var path: String
    public var contents: Data
    /// Permission bits (`0o600`).
    public var mode: UInt32
    public var kind: Kind
    /// Owner; `nil` means root (0:0).
    public var uid: UInt32?
    public var gid: UInt32?

    public init(path: String, contents: Data, mode: UInt32, kind: Kind = .file, uid: UInt32? = nil, gid: UInt32? = nil) {
        self.path = path
        self.contents = contents
        self.mode = mode
        self.kind = kind
        self.uid = uid
        self.gid = gid
    }

    public init(path: String, text: String, mode: UInt32, uid: UInt32? = nil, gid: UInt32? = nil) {
        self.init(path: path, contents: Data(text.utf8), mode: mode, uid: uid, gid: gid)
    }

    public static func directory(_ path: String, mode: UInt32, uid: UInt32? = nil, gid: UInt32? = nil) -> RenderedFile {
        RenderedFile(path: path, contents: Data(), mode: mode, kind: .directory, uid: uid, gid: gid)
    }

    public var text: String { String(decoding: contents, as: UTF8.self) }
}

/// Knobs for rendering.
public struct RenderOptions: Hashable, Sendable {
    /// Keep each interface's source-OS name in the new OS (a systemd `.link` file, netplan
    /// `set-name`). ifupdown matches by name only, so it always gets `.link` files.
    public var keepInterfaceNames: Bool
    /// Where the Shoal TLS files go in the target (same defaults as capture).
    public var paths: CaptureOptions
    /// The target's current `/etc/hosts`, to merge into (its other entries are kept); `nil` writes a
    /// standard file.
    public var existingHosts: String?
    /// Render SSH host keys, authorized keys and the Shoal TLS files.
    public var includeSecurity: Bool
    /// `processorArchitecture` of the unattend components: `amd64` or `arm64`.
    public var windowsArchitecture: String
    /// The Windows ComputerName, when the host name does not fit Windows' 15-character limit.
    public var windowsComputerName: String?

    public init(
        keepInterfaceNames: Bool = true, paths: CaptureOptions = CaptureOptions(), existingHosts: String? = nil,
        includeSecurity: Bool = true, windowsArchitecture: String = "amd64", windowsComputerName: String? = nil
    ) {
        self.keepInterfaceNames = keepInterfaceNames
        self.paths = paths
        self.existingHosts = existingHosts
        self.includeSecurity = includeSecurity
        self.windowsArchitecture = windowsArchitecture
        self.windowsComputerName = windowsComputerName
    }
}
