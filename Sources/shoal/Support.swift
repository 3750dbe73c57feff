import ArgumentParser
import Foundation
import Glibc
import ShoalBundle
import ShoalCrypto
import ShoalStorage

/// Runs `body`, turning Shoal's errors into a one-line message on stderr and a distinct exit code.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as BundleError {
        Terminal.error(error.description)
        throw ExitCode(error.exitCode)
    } catch let error as StorageError {
        Terminal.error(error.description)
        throw ExitCode(error.exitCode)
    } catch let error as CryptoError {
        Terminal.error(error.description)
        throw ExitCode(1)
    } catch let error as CLIError {
        Terminal.error(error.message)
        throw ExitCode(error.code)
    }
}

struct CLIError: Error {
    var message: String
    var code: Int32 = 1
}

enum Terminal {
    static let isInteractive = isatty(STDERR_FILENO) == 1

    static func error(_ message: String) {
        FileHandle.standardError.write(Data("shoal: error: \(message)\n".utf8))
    }

    static func note(_ message: String) {
        FileHandle.standardError.write(Data("shoal: \(message)\n".utf8))
    }

    /// A progress line on stderr, redrawn in place; printed only on a terminal.
    final class ProgressLine: @unchecked Sendable {
        // Invariant: all state guarded by `lock`.
        private let label: String
        private let lock = NSLock()
        private var last = 0.0
        private let start = Date()
        private var shown = false

        init(_ label: String) { self.label = label }

        func update(done: UInt64, total: UInt64) {
            guard Terminal.isInteractive else { return }
            lock.withLock {
                let now = Date().timeIntervalSince(start)
                guard now - last >= 0.2 || done == total else { return }
                last = now
                let pct = total == 0 ? 100 : Int(Double(done) * 100 / Double(total))
                let rate = now > 0 ? Double(done) / now : 0
                let line = "\r  \(label) \(pct)%  \(Format.bytes(done)) of \(Format.bytes(total))  \(Format.bytes(UInt64(rate)))/s   "
                FileHandle.standardError.write(Data(line.utf8))
                shown = true
            }
        }

        func finish() {
            lock.withLock { if shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) } }
        }
    }
}

enum Format {
    static func bytes(_ n: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    static func rate(_ bytes: UInt64, _ seconds: Double) -> String {
        seconds > 0 ? String(format: "%.0f MB/s", Double(bytes) / seconds / 1e6) : "-"
    }

    static func date(_ unix: Int64) -> String {
        let f = ISO8601DateFormatter()
        return f.string(from: Date(timeIntervalSince1970: TimeInterval(unix)))
    }
}

/// Sizes on the command line: `4194304`, `4M`, `4MiB`, `512K`, `1G`.
struct ByteSize: ExpressibleByArgument {
    var bytes: UInt64

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).uppercased()
        let digits = text.prefix { $0.isNumber }
        guard let value = UInt64(digits), !digits.isEmpty else { return nil }
        let suffix = text.dropFirst(digits.count)
        let multiplier: UInt64
        switch suffix {
        case "", "B": multiplier = 1
        case "K", "KB", "KIB": multiplier = 1 << 10
        case "M", "MB", "MIB": multiplier = 1 << 20
        case "G", "GB", "GIB": multiplier = 1 << 30
        default: return nil
        }
        bytes = value * multiplier
    }
}

enum KeyFiles {
    static func read(_ path: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CLIError(message: "cannot read \(path)")
        }
        return Array(data)
    }

    static func publicKey(_ path: String) throws -> Ed25519PublicKey {
        do {
            return try Ed25519PublicKey(pem: String(decoding: try read(path), as: UTF8.self))
        } catch let error as CryptoError {
            throw CLIError(message: "\(path): \(error.description)")
        }
    }

    static func privateKey(_ path: String) throws -> Ed25519PrivateKey {
        do {
            return try Ed25519PrivateKey(pem: String(decoding: try read(path), as: UTF8.self))
        } catch let error as CryptoError {
            throw CLIError(message: "\(path): \(error.description)")
        }
    }

    static func symmetricKey(_ path: String) throws -> SymmetricKey {
        do {
            return try SymmetricKey(keyFileContents: try read(path))
        } catch let error as CryptoError {
            throw CLIError(message: "\(path): \(error.description)")
        }
    }

    /// Writes `contents` to `path` with `mode`, refusing to replace an existing file unless `force`.
    static func write(_ contents: String, to path: String, mode: mode_t, force: Bool) throws {
        do {
            try KeyFile.write(contents, to: path, mode: mode, overwrite: force)
        } catch .exists(let path) {
            throw CLIError(message: "\(path) exists; use --force to replace it")
        } catch {
            throw CLIError(message: error.description)
        }
    }
}

func jsonString(_ value: Any) -> String {
    let data = try! JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys])
    return String(decoding: data, as: UTF8.self)
}

/// Blocks until SIGINT or SIGTERM arrives (the daemons' way to stop cleanly).
func waitForTerminationSignal() {
    let done = DispatchSemaphore(value: 0)
    let sources = ([SIGINT, SIGTERM] as [Int32]).map { sig -> any DispatchSourceSignal in
        signal(sig, SIG_IGN)
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        s.setEventHandler { done.signal() }
        s.resume()
        return s
    }
    done.wait()
    sources.forEach { $0.cancel() }
}
