import Foundation
import ShoalAgent
import ShoalHostLab
import ShoalTestKit
import Testing

@testable import ShoalHostDrivers

/// The convert on a real Debian image (opt-in, for docs/AGENT.md's measurements):
/// `SHOAL_LAB_DEBIAN_IMAGE=/var/cache/shoal-bench/debian-bookworm-minbase.ext4 swift test --filter DebianMeasureTests`.
/// The image (a debootstrap minbase, 212 MiB ext4) is copied, given a netplan file as an installer
/// would leave (minbase has no network stack, so no format could be detected otherwise), bundled,
/// and a busybox "alpha" host is converted to it.
@Suite struct DebianMeasureTests {
    static let image = ProcessInfo.processInfo.environment["SHOAL_LAB_DEBIAN_IMAGE"]

    @Test(.enabled(if: image != nil)) func convertsToDebianBookworm() async throws {
        var layout = LabHost.Layout()
        layout.disk0Size = 320 * mib
        let method = LabDriver.WriteMethod(rawValue: ProcessInfo.processInfo.environment["SHOAL_LAB_WRITE"] ?? "") ?? .imageFile
        let world = try LabWorld.make("driver-debian", layout: layout, betaImage: { dir in
            let copy = dir.file("debian.ext4")
            _ = try ChildProcess.sh("cp --sparse=always '\(Self.image!)' '\(copy)'")
            try Ext4Filesystem(region: ByteRegion.wholeFile(copy))
                .writeText("/etc/netplan/01-installer.yaml", "network:\n  version: 2\n  renderer: networkd\n", mode: 0o600)
            return copy
        }, writeMethod: method)
        defer { world.remove() }
        let before = try world.identity()
        let started = Date()
        let record = try await world.machine().run(world.request("convert-debian", .convert))
        let seconds = Date().timeIntervalSince(started)
        #expect(record.outcome?.result == .succeeded, "\(record.outcome.map { "\($0)" } ?? "no outcome")")
        #expect(try world.host.bootedOS().osRelease.id == "debian")
        #expect(try world.identity() == before)
        #expect(try world.host.filesystem("target").check() == nil)
        let timings = stepTimings(record).map { "\($0.0)=\(String(format: "%.3f", $0.1))s" }.joined(separator: " ")
        let w = try #require(world.driver.writeLog().last)
        print("lab convert to Debian (\(method)): \(String(format: "%.2f", seconds)) s total; steps: \(timings)")
        print("lab convert to Debian (\(method)): image \(w.imageBytes) B from a \(w.bundleBytes) B bundle; apply wrote \(w.applyBytesWritten) B in \(String(format: "%.3f", w.applySeconds)) s, copy wrote \(w.partitionBytesWritten) B in \(String(format: "%.3f", w.copySeconds)) s")
    }
}
