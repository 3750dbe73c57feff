import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto
import ShoalStorage

/// A directory under /tmp, removed (with everything in it) by `remove()`.
public final class TemporaryDirectory: @unchecked Sendable {
    // Invariant: immutable after init.
    public let path: String

    public init(_ label: String = "shoal-test") {
        var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(p != nil, "mkdtemp failed")
        path = String(cString: p!)
    }

    public func file(_ name: String) -> String { path + "/" + name }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Runs `body` with a fresh directory and removes it afterwards, also when `body` throws.
    @discardableResult
    public static func with<T>(_ label: String = "shoal-test", _ body: (TemporaryDirectory) throws -> T) rethrows -> T {
        let dir = TemporaryDirectory(label)
        defer { dir.remove() }
        return try body(dir)
    }
}

public enum TestData {
    /// Deterministic pseudo-random bytes (incompressible).
    public static func random(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        var out = [UInt8](repeating: 0, count: count)
        var i = 0
        while i < count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            for k in 0..<8 where i + k < count { out[i + k] = UInt8(truncatingIfNeeded: z >> (8 * k)) }
            i += 8
        }
        return out
    }

    /// An image with runs of zeros, text and random data, as a disk image has.
    public static func mixedImage(_ count: Int, seed: UInt64) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let text = Array("shoal moves bundles across the fleet; ".utf8)
        var block = 0
        while block * 16384 < count {
            let start = block * 16384, end = min(count, start + 16384)
            switch (block &* 7 &+ Int(seed % 5)) % 4 {
            case 0: break
            case 1: for i in start..<end { out[i] = text[i % text.count] }
            default:
                let r = random(end - start, seed: seed &+ UInt64(block))
                out.replaceSubrange(start..<end, with: r)
            }
            block += 1
        }
        return out
    }

    public static func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    public static func read(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

public enum TestBundles {
    /// Writes `image` to DIR/name.img and makes DIR/name.shoal from it.
    @discardableResult
    public static func make(
        _ image: [UInt8], in dir: TemporaryDirectory, name: String = "image", regionSize: Int = 64 << 10,
        signingKey: Ed25519PrivateKey? = nil, encryptionKey: SymmetricKey? = nil, level: Int32 = 3
    ) throws -> (image: String, bundle: String, result: BundleCreator.Result) {
        let imagePath = dir.file(name + ".img")
        let bundlePath = dir.file(name + ".shoal")
        try TestData.write(image, to: imagePath)
        var options = BundleCreator.Options(name: name)
        options.regionSize = regionSize
        options.signingKey = signingKey
        options.encryptionKey = encryptionKey
        options.level = level
        options.createdAt = 1_700_000_000
        let result = try BundleCreator(options: options).create(image: imagePath, output: bundlePath)
        return (imagePath, bundlePath, result)
    }

    /// Flips one bit of the file at `offset`.
    public static func flipBit(in path: String, at offset: UInt64) throws {
        let fd = open(path, O_RDWR)
        precondition(fd >= 0)
        defer { close(fd) }
        var byte: UInt8 = 0
        precondition(pread(fd, &byte, 1, off_t(offset)) == 1)
        byte ^= 0x10
        precondition(pwrite(fd, &byte, 1, off_t(offset)) == 1)
    }

    public static func truncate(_ path: String, to length: UInt64) {
        precondition(Glibc.truncate(path, off_t(length)) == 0)
    }
}

/// A child process with captured output.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

public enum ChildProcess {
    /// Runs `executable` with `arguments` and waits; stdout/stderr captured.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = arguments
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        let errData = ResultSlot<Data>()
        let t = Thread { errData.value = err.fileHandleForReading.readDataToEndOfFile() }
        t.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        while errData.value == nil { usleep(1000) }
        return ProcessResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData.value!, as: UTF8.self))
    }

    /// Path of an executable found on PATH.
    public static func which(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let dirs = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        for dir in dirs {
            let path = "\(dir)/\(tool)"
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Runs a shell command and returns its trimmed stdout, throwing on failure.
    @discardableResult
    public static func sh(_ command: String) throws -> String {
        let r = try run("/bin/sh", ["-c", command])
        guard r.status == 0 else { throw TestKitError("`\(command)` failed (\(r.status)): \(r.stderr)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

final class ResultSlot<T>: @unchecked Sendable {
    // Invariant: written once by one thread, then only read.
    private let lock = NSLock()
    private var stored: T?
    var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

public struct TestKitError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Loop devices for block-device tests (root only). Always detached by `detach()`.
public struct LoopDevice {
    public let device: String
    public let backingFile: String
    /// Made by `attachPartitioned`: its partitions are removed (`partx -d`) before it is detached.
    public var partitioned = false

    public static var isAvailable: Bool { getuid() == 0 && ChildProcess.which("losetup") != nil }

    public static func attach(backingFile: String, size: UInt64) throws -> LoopDevice {
        let fd = open(backingFile, O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else { throw TestKitError("cannot create \(backingFile)") }
        ftruncate(fd, off_t(size))
        close(fd)
        let dev = try ChildProcess.sh("losetup --find --show \(backingFile)")
        return LoopDevice(device: dev, backingFile: backingFile)
    }

    public func detach() {
        if partitioned { _ = try? ChildProcess.sh("partx -d \(device) 2>/dev/null") }
        _ = try? ChildProcess.sh("losetup -d \(device)")
    }
}

extension LoopDevice {
    /// Makes a sparse disk image of `size` bytes at `backingFile`, writes a partition table with
    /// `sfdisk` from `sfdiskScript`, and attaches it with `losetup -P` so the kernel makes
    /// `/dev/loopNpK` for its partitions (waits up to 5 s for them). Root only; call `detach()`
    /// (also on failure: use `defer`).
    public static func attachPartitioned(backingFile: String, size: UInt64, sfdiskScript: String, partitions: Int) throws -> LoopDevice {
        let fd = open(backingFile, O_RDWR | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw TestKitError("cannot create \(backingFile)") }
        ftruncate(fd, off_t(size))
        close(fd)
        let script = backingFile + ".sfdisk"
        try sfdiskScript.write(toFile: script, atomically: true, encoding: .utf8)
        defer { unlink(script) }
        try ChildProcess.sh("sfdisk --quiet '\(backingFile)' < '\(script)'")
        let dev = try ChildProcess.sh("losetup --find --show '\(backingFile)'")
        let loop = LoopDevice(device: dev, backingFile: backingFile, partitioned: true)
        // A loop device detached while it had BLKPG partitions keeps them (the kernel drops them
        // on detach only with partscan): clear whatever an earlier user left, then add ours.
        _ = try? ChildProcess.sh("partx -d '\(dev)'")
        do { try ChildProcess.sh("partx -a '\(dev)'") } catch { loop.detach(); throw error }
        for _ in 0..<500 {
            if (1...max(1, partitions)).allSatisfy({ access("\(dev)p\($0)", F_OK) == 0 }) { return loop }
            usleep(10_000)
        }
        loop.detach()
        throw TestKitError("\(dev): partition nodes did not appear")
    }

    /// The device node of partition `n`.
    public func partition(_ n: Int) -> String { "\(device)p\(n)" }
}

/// SplitMix64: a tiny seeded generator, so property tests and simulations reproduce from their
/// seed (`var rng = SplitMix64(seed: 42); Int.random(in: 0..<10, using: &rng)`).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
