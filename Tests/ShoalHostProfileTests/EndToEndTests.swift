import Foundation
import Testing
@testable import ShoalHostProfile

/// The closing check, without a VM: capture a host, store the envelope, render into a fresh
/// tree as each Linux format, write it to disk with the modes asked for, capture that tree again, and
/// compare — same name, same addresses, same DHCP decisions, same SSH host key bytes, same keys.
struct EndToEndTests {
    /// Writes rendered files the way the driver's writer must (modes exact, directories created).
    static func write(_ files: [RenderedFile], under root: String) throws {
        let fm = FileManager.default
        for f in files {
            let full = root + f.path
            switch f.kind {
            case .directory:
                try fm.createDirectory(atPath: full, withIntermediateDirectories: true)
            case .file:
                try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                try f.contents.write(to: URL(fileURLWithPath: full))
            case .symlink(let target):
                try fm.createSymbolicLink(atPath: full, withDestinationPath: target)
                continue
            }
            try fm.setAttributes([.posixPermissions: Int(f.mode)], ofItemAtPath: full)
        }
    }

    @Test(arguments: [NetworkConfigFormat.ifupdown, .systemdNetworkd, .netplan, .networkManager])
    func aConvertedHostCapturesAsItself(_ format: NetworkConfigFormat) throws {
        let original = try Fixtures.edgeCapture().profile
        let stored = try HostProfileEnvelope.decode(HostProfileEnvelope.encode(original))

        let fm = FileManager.default
        let root = fm.temporaryDirectory.appendingPathComponent("shoal-e2e-\(UUID().uuidString)").path
        defer { try? fm.removeItem(atPath: root) }
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let files = try HostProfileRenderer.render(stored, as: format)
        try Self.write(files, under: root)
        // The target tree: what the renderer wrote, plus a user database that has bob (whose home is
        // outside /home, so only passwd finds his keys: the target must know its users).
        try Data("root:x:0:0::/root:/bin/sh\nbob:x:1001:1001::/srv/bob:/bin/sh\n".utf8).write(to: URL(fileURLWithPath: root + "/etc/passwd"))

        let again = try HostProfileCapture.capture(from: CaptureInput(
            ipAddressJSON: Fixtures.edgeAddresses, ipRouteJSON: Fixtures.edgeRoutes4, ipv6RouteJSON: Fixtures.edgeRoutes6,
            files: DirectoryFileSource(root: root))).profile

        #expect(again.hostname == original.hostname)
        #expect(again.domain == original.domain)  // from the rendered /etc/hosts
        #expect(again.interfaces.map(\.mac) == original.interfaces.map(\.mac))
        #expect(again.interfaces.map(\.addresses) == original.interfaces.map(\.addresses))
        #expect(again.interfaces.map(\.dhcp4) == original.interfaces.map(\.dhcp4))
        #expect(again.interfaces.map(\.acceptRA) == original.interfaces.map(\.acceptRA))
        #expect(again.routes == original.routes)
        if format == .ifupdown { #expect(again.dns == original.dns) }  // the only format that writes resolv.conf
        // Same host key bytes, with the modes sshd wants.
        #expect(again.security.sshHostKeys.map(\.contents) == original.security.sshHostKeys.map(\.contents))
        #expect(again.security.sshHostKeys.map(\.mode) == [0o600, 0o644])
        #expect(Set(again.security.authorizedKeys.map(\.path)) == Set(original.security.authorizedKeys.map(\.path)))
        #expect(again.security.authorizedKeys.allSatisfy { $0.mode == 0o600 })
        #expect(again.security.shoalKey?.contents == original.security.shoalKey?.contents && again.security.shoalKey?.mode == 0o600)
        #expect(again.security.fleetCA == nil ? false : again.security.fleetCA?.contents == original.security.fleetCA?.contents)
        var st = stat()
        #expect(stat(root + "/home/alice/.ssh", &st) == 0 && st.st_mode & 0o777 == 0o700)
    }
}
