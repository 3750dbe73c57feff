import Foundation
import ShoalTestKit
import Testing

@testable import ShoalHostLab

@Suite struct GrubEnvTests {
    @Test func setListUnsetThroughGrubEditenv() throws {
        try TemporaryDirectory.with("hostlab-grub") { dir in
            let env = try GrubEnv.create(at: dir.file("grubenv"))
            #expect(try env.variables().isEmpty)
            // A real block: 1024 bytes with GRUB's header.
            let bytes = try TestData.read(env.path)
            #expect(bytes.count == 1024)
            #expect(String(decoding: bytes.prefix(24), as: UTF8.self) == "# GRUB Environment Block")
            try env.setDefault("base")
            try env.setOneShot("staging")
            #expect(try env.variables() == ["saved_entry": "base", "next_entry": "staging"])
            try env.unset("next_entry")
            #expect(try env.value("next_entry") == nil)
            try env.set("next_entry", to: "")
            #expect(try env.value("next_entry") == nil)
            #expect(throws: HostLabError.self) { try env.set("bad", to: "a\nb") }
            #expect(throws: HostLabError.self) { try GrubEnv(path: dir.file("missing")).variables() }
        }
    }

    @Test func bootMenuRoundTrip() throws {
        let menu = BootMenu(defaultEntry: "base", entries: [
            .init(name: "base", disk: "disk0.img", partition: "root"),
            .init(name: "staging", disk: "/abs/disk1.img", partition: "2"),
        ])
        #expect(try BootMenu(parsing: menu.text) == menu)
        #expect(throws: HostLabError.self) { try BootMenu(parsing: "entry a d p\n") }  // no default
        #expect(throws: HostLabError.self) { try BootMenu(parsing: "default b\nentry a d p\n") }
        #expect(throws: HostLabError.self) { try BootMenu(parsing: "default a\nentry a d\n") }
        #expect(throws: HostLabError.self) { try BootMenu(parsing: "default a\nentry a d p\nentry a d q\n") }
    }

    @Test func osReleaseParsesQuotesAndRendersBack() {
        let release = OSRelease(parsing: """
            # comment
            PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
            NAME='Debian GNU/Linux'
            VERSION_ID="12"
            ID=debian
            HOME_URL="https://www.debian.org/"
            WEIRD="a \\"quoted\\" \\$word"
            """)
        #expect(release.id == "debian" && release.name == "Debian GNU/Linux" && release.versionID == "12")
        #expect(release.prettyName == "Debian GNU/Linux 12 (bookworm)")
        #expect(release.fields["WEIRD"] == "a \"quoted\" $word")
        #expect(OSRelease(parsing: release.text) == release)
        #expect(OSRelease(parsing: "").id == "linux")
    }
}
