import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto
import ShoalStorage
import ShoalTestKit
import Testing

/// The `shoal` executable built next to this test binary.
enum ShoalTool {
    static let path: String = {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(cString: Array(buffer[0..<max(0, n)]) + [0])
        return (exe as NSString).deletingLastPathComponent + "/shoal"
    }()

    static func run(_ arguments: String...) throws -> ProcessResult { try ChildProcess.run(path, arguments) }
    static func run(_ arguments: [String]) throws -> ProcessResult { try ChildProcess.run(path, arguments) }
}

@Suite(.serialized) struct CLITests {
    @Test func keysBundleVerifyInspectApply() throws {
        try TemporaryDirectory.with { dir in
            let image = TestData.mixedImage(300_000, seed: 1)
            try TestData.write(image, to: dir.file("img"))
            var r = try ShoalTool.run("keys", "generate", "--out", dir.file("keys"))
            #expect(r.status == 0, "\(r.stderr)")
            var st = stat()
            stat(dir.file("keys/shoal-signing.key"), &st)
            #expect(st.st_mode & 0o777 == 0o600)
            // The key files are standard PEM: openssl derives the same public key.
            if let openssl = ChildProcess.which("openssl") {
                let derived = try ChildProcess.run(openssl, ["pkey", "-in", dir.file("keys/shoal-signing.key"), "-pubout"])
                #expect(derived.stdout == String(decoding: try TestData.read(dir.file("keys/shoal-signing.pub")), as: UTF8.self))
            }
            #expect(try ShoalTool.run("keys", "generate", "--out", dir.file("keys")).status != 0)  // no silent overwrite

            r = try ShoalTool.run("bundle", "create", dir.file("img"), "-o", dir.file("b.shoal"), "--chunk-size", "64K", "--sign", dir.file("keys/shoal-signing.key"), "--name", "test-os")
            #expect(r.status == 0, "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir.file("b.shoal.partial")))
            r = try ShoalTool.run("bundle", "verify", dir.file("b.shoal"), "--trust", dir.file("keys/shoal-signing.pub"))
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("OK"))

            r = try ShoalTool.run("bundle", "inspect", dir.file("b.shoal"), "--json")
            #expect(r.status == 0)
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            #expect(json["name"] as? String == "test-os")
            #expect(json["signed"] as? Bool == true)
            #expect(json["frame_count"] as? Int == 5)
            #expect(json["readable_by_stock_zstd"] as? Bool == true)
            #expect(json["image_sha256"] as? String == SHA256.hash(image).hex)

            r = try ShoalTool.run("bundle", "apply", dir.file("b.shoal"), "--to", dir.file("t"), "--trust", dir.file("keys/shoal-signing.pub"), "--json")
            #expect(r.status == 0, "\(r.stderr)")
            let applied = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            #expect(applied["chunks_written"] as? Int == 5)
            #expect(try TestData.read(dir.file("t")) == image)
            r = try ShoalTool.run("bundle", "apply", dir.file("b.shoal"), "--to", dir.file("t"))
            #expect(r.status == 0 && r.stdout.contains("already applied"), "\(r.stdout)")
        }
    }

    @Test func distinctExitCodesAndClearMessages() throws {
        try TemporaryDirectory.with { dir in
            let image = TestData.mixedImage(400_000, seed: 2)
            try TestData.write(image, to: dir.file("img"))
            _ = try ShoalTool.run("keys", "generate", "--out", dir.file("k1"))
            _ = try ShoalTool.run("keys", "generate", "--out", dir.file("k2"))
            _ = try ShoalTool.run("keys", "secret", "--out", dir.file("aes"))
            _ = try ShoalTool.run("keys", "secret", "--out", dir.file("aes2"))
            let signed = dir.file("s.shoal"), unsigned = dir.file("u.shoal"), sealed = dir.file("e.shoal")
            #expect(try ShoalTool.run("bundle", "create", dir.file("img"), "-o", signed, "--chunk-size", "64K", "--sign", dir.file("k1/shoal-signing.key")).status == 0)
            #expect(try ShoalTool.run("bundle", "create", dir.file("img"), "-o", unsigned, "--chunk-size", "64K").status == 0)
            #expect(try ShoalTool.run("bundle", "create", dir.file("img"), "-o", sealed, "--chunk-size", "64K", "--encrypt", dir.file("aes")).status == 0)

            func expectExit(_ code: Int32, _ args: [String], mentioning text: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws {
                let r = try ShoalTool.run(args)
                #expect(r.status == code, "\(args): \(r.stderr)", sourceLocation: sourceLocation)
                if let text { #expect(r.stderr.contains(text), "\(r.stderr)", sourceLocation: sourceLocation) }
            }
            // Trust.
            try expectExit(14, ["bundle", "verify", signed, "--trust", dir.file("k2/shoal-signing.pub")], mentioning: "untrusted")
            try expectExit(14, ["bundle", "verify", unsigned, "--trust", dir.file("k1/shoal-signing.pub")], mentioning: "unsigned")
            try expectExit(14, ["bundle", "apply", unsigned, "--to", dir.file("t1"), "--trust", dir.file("k1/shoal-signing.pub")])
            #expect(!FileManager.default.fileExists(atPath: dir.file("t1")))
            // Not a bundle, truncated, corrupt chunk.
            try expectExit(10, ["bundle", "verify", dir.file("img")], mentioning: "not a Shoal bundle")
            let full = try TestData.read(signed)
            try TestData.write(Array(full.prefix(full.count - 100)), to: dir.file("cut.shoal"))
            try expectExit(11, ["bundle", "apply", dir.file("cut.shoal"), "--to", dir.file("t2")], mentioning: "truncated")
            let frame = try BundleFile(path: signed).manifest.frames[4]
            try TestBundles.flipBit(in: signed, at: frame.offset + 10)
            try expectExit(15, ["bundle", "verify", signed], mentioning: "chunk 4")
            try expectExit(15, ["bundle", "apply", signed, "--to", dir.file("t3")], mentioning: "chunk 4")
            // Encryption.
            try expectExit(0, ["bundle", "verify", sealed])
            try expectExit(16, ["bundle", "apply", sealed, "--to", dir.file("t4")], mentioning: "--key")
            try expectExit(16, ["bundle", "apply", sealed, "--to", dir.file("t5"), "--key", dir.file("aes2")], mentioning: "wrong key")
            try expectExit(0, ["bundle", "apply", sealed, "--to", dir.file("t6"), "--key", dir.file("aes")])
            #expect(try TestData.read(dir.file("t6")) == image)
            let inspect = try ShoalTool.run("bundle", "inspect", sealed)
            #expect(inspect.stdout.contains("NOT readable"))
            // Targets and usage.
            try expectExit(23, ["bundle", "apply", unsigned, "--to", dir.path], mentioning: "neither a regular file")
            try expectExit(64, ["bundle", "create", dir.file("img"), "-o", dir.file("x"), "--chunk-size", "1000"])
            try expectExit(20, ["bundle", "create", dir.file("missing"), "-o", dir.file("x")], mentioning: "No such file")
        }
    }

    @Test func anUnreachableCoordinatorIsAClearError() throws {
        try TemporaryDirectory.with { dir in
            #expect(try ShoalTool.run("ca", "init", "--dir", dir.file("ca")).status == 0)
            #expect(try ShoalTool.run("ca", "issue", "--dir", dir.file("ca"), "--host", "ops", "--site", "origin", "--role", "operator", "--out", dir.file("ops")).status == 0)
            let r = try ShoalTool.run("status", "--coordinator", "127.0.0.1:1", "--tls", dir.file("ops"))
            #expect(r.status == 1, "\(r.stderr)")
            #expect(r.stderr.contains("cannot connect to the coordinator"), "\(r.stderr)")
            let noTLS = try ShoalTool.run("status", "--coordinator", "127.0.0.1:1", "--tls", dir.file("missing"))
            #expect(noTLS.status == 1 && noTLS.stderr.contains("shoal ca issue"), "\(noTLS.stderr)")
        }
    }

    @Test func helpExplainsCommands() throws {
        let r = try ShoalTool.run("--help")
        #expect(r.status == 0)
        for word in ["keys", "bundle", "demo", "Exit codes"] { #expect(r.stdout.contains(word), "\(word)") }
        let apply = try ShoalTool.run("bundle", "apply", "--help")
        for word in ["--to", "--trust", "--key", "resume"] { #expect(apply.stdout.contains(word), "\(word)") }
    }

    /// kill -9 in the middle of an apply, then apply again: only unsynced chunks are rewritten.
    @Test func resumeAfterKillDashNine() throws {
        try TemporaryDirectory.with { dir in
            let size: UInt64 = 48 << 20
            try SampleImage.write(to: dir.file("img"), size: size, seed: 77)
            #expect(try ShoalTool.run("bundle", "create", dir.file("img"), "-o", dir.file("b.shoal"), "--chunk-size", "1M").status == 0)
            let target = dir.file("t.img"), resume = dir.file("t.img.shoal-resume")

            let p = Process()
            p.executableURL = URL(fileURLWithPath: ShoalTool.path)
            p.arguments = ["bundle", "apply", dir.file("b.shoal"), "--to", target, "--max-rate", "8M"]
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            // Wait for the first committed progress (the resume file gets its first slot), then kill.
            var waited = 0
            while waited < 200 {
                var st = stat()
                if stat(resume, &st) == 0 && st.st_size > 0 { break }
                usleep(50_000)
                waited += 1
            }
            usleep(300_000)
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            #expect(p.terminationReason == .uncaughtSignal)

            let file = try BundleFile(path: dir.file("b.shoal"))
            var st = stat()
            stat(target, &st)
            let doneAtKill = try ResumeLog(path: resume, bundleID: file.bundleID, frameCount: file.manifest.frames.count,
                                           targetIdentity: (UInt64(st.st_dev), UInt64(st.st_ino))).doneCount
            #expect(doneAtKill > 0 && doneAtKill < 48, "done at kill: \(doneAtKill)")

            let r = try ShoalTool.run("bundle", "apply", dir.file("b.shoal"), "--to", target, "--json")
            #expect(r.status == 0, "\(r.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            #expect(json["chunks_already_done"] as? Int == doneAtKill)
            #expect(json["chunks_written"] as? Int == 48 - doneAtKill)
            #expect(try TestData.read(target) == TestData.read(dir.file("img")))
        }
    }

    @Test func demoRunsEndToEnd() throws {
        let r = try ShoalTool.run("demo", "--size", "16M", "--chunk-size", "1M")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("target equals the image byte for byte: yes"))
    }
}

@Suite(.serialized) struct InterruptTests {
    /// SIGINT stops an apply cleanly: queued chunks are synced and recorded, exit code 130,
    /// and the next run resumes from there.
    @Test func sigintKeepsProgressAndExits130() throws {
        try TemporaryDirectory.with { dir in
            try SampleImage.write(to: dir.file("img"), size: 24 << 20, seed: 78)
            #expect(try ShoalTool.run("bundle", "create", dir.file("img"), "-o", dir.file("b.shoal"), "--chunk-size", "1M").status == 0)
            let target = dir.file("t.img")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: ShoalTool.path)
            p.arguments = ["bundle", "apply", dir.file("b.shoal"), "--to", target, "--max-rate", "6M"]
            let err = Pipe()
            p.standardOutput = FileHandle.nullDevice
            p.standardError = err
            try p.run()
            usleep(1_500_000)
            kill(p.processIdentifier, SIGINT)
            let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            p.waitUntilExit()
            #expect(p.terminationStatus == 130, "\(message)")
            #expect(message.contains("interrupted") && message.contains("run the same command again"), "\(message)")

            let r = try ShoalTool.run("bundle", "apply", dir.file("b.shoal"), "--to", target, "--json")
            #expect(r.status == 0, "\(r.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            let kept = json["chunks_already_done"] as? Int ?? 0
            // About 1.5 s at 6 MB/s: several chunks were written before the signal and all were kept.
            #expect(kept >= 3 && kept < 24, "kept \(kept)")
            #expect(json["chunks_written"] as? Int == 24 - kept)
            #expect(try TestData.read(target) == TestData.read(dir.file("img")))
        }
    }
}
