import Foundation
import ShoalTestKit
import Testing

@testable import ShoalHostLab

@Suite struct LabHostTests {
    /// A host with OS A on disk0 and a copy of it (named as the staging OS) on disk1.
    private func makeHost(in dir: TemporaryDirectory, layout: LabHost.Layout = LabHost.Layout()) throws -> LabHost {
        let a = try Fixtures.osImage(in: dir, id: "os-a", stacks: [.ifupdown])
        let staging = try Fixtures.osImage(in: dir, id: "staging")
        return try LabHost.create(at: dir.file("host"), baseImage: a, stagingImage: staging, layout: layout)
    }

    @Test func bootsOSAThenStagingOnceThenFallsBackToA() throws {
        try TemporaryDirectory.with("hostlab-host") { dir in
            let host = try makeHost(in: dir)
            #expect(throws: HostLabError.notBooted(host: host.directory)) { try host.bootedOS() }
            #expect(try host.firmware.nextChoice() == ("base", .menuDefault))

            let first = try host.boot()
            #expect(first.entry == "base" && first.source == .menuDefault && first.osRelease.id == "os-a")
            #expect(try host.bootedOS() == first)

            try host.env.setOneShot("staging")  // grub-reboot staging
            #expect(try host.firmware.nextChoice() == ("staging", .oneShot))
            let trial = try host.boot()
            #expect(trial.entry == "staging" && trial.source == .oneShot)
            #expect(trial.osRelease.id == "staging" && trial.osRelease.name == "Shoal Lab staging")
            #expect(try host.env.value(GrubEnv.nextEntry) == nil)  // consumed by the boot
            #expect(try host.bootedOS().osRelease.id == "staging")

            let back = try host.boot()
            #expect(back.entry == "base" && back.osRelease.id == "os-a")
            #expect(host.bootLog().count == 3)

            // Power loss with a one-shot pending: it is still pending at the next power-on.
            try host.env.setOneShot("staging")
            host.powerOff()
            #expect(throws: HostLabError.notBooted(host: host.directory)) { try host.bootedOS() }
            #expect(try host.boot().entry == "staging")
        }
    }

    /// os-release(5): `/etc/os-release` may be a symlink to `../usr/lib/os-release` (Debian does
    /// that); the firmware then reads `/usr/lib/os-release`.
    @Test func bootsAnOSWhoseOSReleaseIsASymlinkToUsrLib() throws {
        try TemporaryDirectory.with("hostlab-osrelease") { dir in
            let host = try makeHost(in: dir)
            let fs = try host.filesystem("base")
            let text = try fs.readText("/etc/os-release")
            try fs.writeText("/usr/lib/os-release", text)
            try fs.remove("/etc/os-release")
            try fs.writeSymlink("/etc/os-release", to: "../usr/lib/os-release")
            #expect(try fs.info("/etc/os-release")?.isSymbolicLink == true)
            let booted = try host.boot()
            #expect(booted.entry == "base" && booted.osRelease.id == "os-a" && !booted.fellBack)
            #expect(try host.osRelease("base").id == "os-a")
            try fs.remove("/usr/lib/os-release")  // dangling now: no os-release, does not boot
            #expect(throws: HostLabError.self) { try host.boot() }
        }
    }

    @Test func nextEntryWinsOnceOverSavedEntryWhichThenStays() throws {
        try TemporaryDirectory.with("hostlab-host") { dir in
            let host = try makeHost(in: dir)
            try host.env.setDefault("staging")   // grub-set-default staging
            try host.env.setOneShot("base")      // grub-reboot base
            let once = try host.boot()
            #expect(once.entry == "base" && once.source == .oneShot)
            #expect(try host.env.value(GrubEnv.nextEntry) == nil)
            #expect(try host.env.value(GrubEnv.savedEntry) == "staging")
            for _ in 0..<2 {
                let saved = try host.boot()
                #expect(saved.entry == "staging" && saved.source == .saved)
            }
        }
    }

    @Test func unbootableChoiceFallsBackToTheDefault() throws {
        try TemporaryDirectory.with("hostlab-host") { dir in
            let a = try Fixtures.osImage(in: dir, id: "os-a")
            // The staging partition is still empty (its bundle not written yet).
            let host = try LabHost.create(at: dir.file("host"), baseImage: a)
            try host.env.setOneShot("staging")
            let record = try host.boot()
            #expect(record.entry == "base" && record.requested == "staging" && record.fellBack)
            #expect(record.osRelease.id == "os-a")
            #expect(try host.env.value(GrubEnv.nextEntry) == nil)  // the one-shot is gone even so

            // An entry the menu does not have, as GRUB with a stale saved_entry.
            try host.env.setDefault("nonexistent")
            let stale = try host.boot()
            #expect(stale.entry == "base" && stale.fallbackReason == "no menu entry nonexistent")

            // Nothing bootable at all: the host is dead and runs nothing.
            try host.disk0.wipe(LabHost.rootPartition)
            #expect(throws: HostLabError.self) { try host.boot() }
            #expect(throws: HostLabError.notBooted(host: host.directory)) { try host.bootedOS() }
            #expect(host.bootLog().last?.contains("boot failed") == true)
            #expect(host.bootLog().first?.hasSuffix("staging did not boot: no ext4 file system") == true)
        }
    }

    @Test func filesWrittenIntoAnEntryAreSeenByItsOS() throws {
        try TemporaryDirectory.with("hostlab-host") { dir in
            let host = try makeHost(in: dir)
            try host.writeText("staging", "/etc/shoal/profile.json", "{\"hostname\":\"web-1\"}\n", mode: 0o600)
            #expect(try host.readText("staging", "/etc/shoal/profile.json") == "{\"hostname\":\"web-1\"}\n")
            #expect(try host.filesystem("staging").info("/etc/shoal/profile.json")?.permissions == 0o600)
            #expect(try host.readText("base", "/etc/network/interfaces").contains("auto lo"))
            // base and target are the same partition by default.
            #expect(try host.osRelease("target").id == "os-a")
            #expect(try host.filesystem("base").check() == nil)
            #expect(try host.filesystem("staging").check() == nil)
            #expect(throws: HostLabError.unknownBootEntry("nope")) { try host.readFile("nope", "/etc/hostname") }
        }
    }

    @Test func theTargetOSReplacesOSAAndBecomesTheDefaultAfterATrial() throws {
        try TemporaryDirectory.with("hostlab-host") { dir in
            var layout = LabHost.Layout()
            layout.rootSize = 24 * mib  // free space after root
            let host = try makeHost(in: dir, layout: layout)
            let b = try Fixtures.osImage(in: dir, id: "os-b", size: 32 * mib, stacks: [.netplan])
            try host.boot()

            // In the staging OS: wipe the original root, grow it, write OS B, one-shot into it.
            try host.env.setOneShot("staging")
            #expect(try host.boot().entry == "staging")
            try host.disk0.wipe(LabHost.rootPartition)
            #expect(throws: HostLabError.self) { try host.disk0.write(image: b, to: LabHost.rootPartition) }
            try host.disk0.growPartition(LabHost.rootPartition)
            try host.disk0.write(image: b, to: LabHost.rootPartition)
            try host.env.setOneShot("target")
            let trial = try host.boot()
            #expect(trial.entry == "target" && trial.osRelease.id == "os-b")
            // Not made permanent: the next boot falls back to… base, which now is OS B as well
            // (same partition); make the target the default as the health check would.
            try host.env.setDefault("target")
            #expect(try host.boot().source == .saved)
            #expect(try host.bootedOS().osRelease.id == "os-b")
            #expect(try host.filesystem("target").check() == nil)
        }
    }

    @Test func maintenanceEntryAndMenuChanges() throws {
        try TemporaryDirectory.with("hostlab-host") { dir in
            let a = try Fixtures.osImage(in: dir, id: "os-a")
            let m = try Fixtures.osImage(in: dir, id: "maint", size: 8 * mib)
            var layout = LabHost.Layout()
            layout.maintenanceSize = 12 * mib
            let host = try LabHost.create(at: dir.file("host"), baseImage: a, maintenanceImage: m, layout: layout)
            #expect(try host.menu().entries.map(\.name) == ["base", "staging", "target", "maintenance"])
            try host.env.setOneShot("maintenance")
            #expect(try host.boot().osRelease.id == "maint")
            #expect(try host.boot().osRelease.id == "os-a")

            // Point "target" at the staging disk, as a driver installing elsewhere would.
            try host.updateMenu { $0.setEntry(.init(name: "target", disk: "disk1.img", partition: "maintenance")) }
            #expect(try host.osRelease("target").id == "maint")
            #expect(try BootMenu.load(host.menuPath).entry("target")?.disk == "disk1.img")
        }
    }
}
