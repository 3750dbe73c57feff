import Glibc

/// A deterministic, disk-image-like sample: runs of zeros (free space), text-like and
/// binary-like compressible data (files, metadata) and incompressible runs (compressed files),
/// in proportions close to a freshly installed OS image. The same seed gives the same bytes.
public enum SampleImage {
    public static func write(to path: String, size: UInt64, seed: UInt64 = 0x5EED_5A4D) throws {
        let fd = try Posix.open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        defer { Posix.close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else { throw StorageError.errno("ftruncate \(path)") }
        var rng = SplitMix(state: seed)
        let words = ["the", "kernel", "module", "lib", "usr", "share", "config", "systemd", "network", "debian",
                     "package", "version", "license", "copyright", "install", "#include", "static", "return", "void", "int"]
            .map { Array(($0 + " ").utf8) }
        let block = 1 << 16
        var buffer = [UInt8](repeating: 0, count: block)
        var offset: UInt64 = 0
        while offset < size {
            let n = Int(min(UInt64(block), size - offset))
            let kind = rng.next() % 100
            if kind < 40 {
                offset += UInt64(n)  // zeros: leave a hole
                continue
            }
            buffer.withUnsafeMutableBytes { b in
                let p = b.baseAddress!
                if kind < 75 {
                    var i = 0
                    while i < n {
                        let w = words[Int(rng.next() % UInt64(words.count))]
                        for c in w where i < n { p.storeBytes(of: c, toByteOffset: i, as: UInt8.self); i += 1 }
                        if rng.next() % 12 == 0, i < n { p.storeBytes(of: 10, toByteOffset: i, as: UInt8.self); i += 1 }
                    }
                } else if kind < 90 {
                    var i = 0
                    while i + 8 <= n {
                        let r = rng.next()
                        p.storeBytes(of: (r & 0x0F0F_0F0F_0000_0000) | UInt64(i), toByteOffset: i, as: UInt64.self)
                        i += 8
                    }
                } else {
                    var i = 0
                    while i + 8 <= n {
                        p.storeBytes(of: rng.next(), toByteOffset: i, as: UInt64.self)
                        i += 8
                    }
                }
            }
            try buffer.withUnsafeBytes { b in try Posix.pwriteFully(fd, b.baseAddress!, count: n, offset: offset, path: path) }
            offset += UInt64(n)
        }
        try Posix.fsync(fd, path: path)
    }

    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
