import Glibc

/// Splits a decoded region into runs of data and runs of zeros, so zeros are punched or
/// discarded instead of written.
///
/// The region is examined in blocks of `blockSize` bytes (the last block may be shorter); a
/// block is zero only if every byte is zero. Adjacent blocks of the same kind merge into one run.
public enum ZeroRuns {
    public struct Run: Equatable, Sendable {
        public var offset: Int
        public var length: Int
        public var isZero: Bool
        public init(offset: Int, length: Int, isZero: Bool) {
            self.offset = offset
            self.length = length
            self.isZero = isZero
        }
    }

    // Read-only after initialisation.
    nonisolated(unsafe) private static let zeroPage: UnsafeMutableRawPointer = {
        let p = calloc(1, 1 << 16)!
        return p
    }()
    private static let zeroPageSize = 1 << 16

    /// True when `count` bytes at `pointer` are all zero.
    public static func isZero(_ pointer: UnsafeRawPointer, count: Int) -> Bool {
        var done = 0
        while done < count {
            let n = min(zeroPageSize, count - done)
            if memcmp(pointer + done, zeroPage, n) != 0 { return false }
            done += n
        }
        return true
    }

    public static func split(_ region: UnsafeRawBufferPointer, blockSize: Int) -> [Run] {
        precondition(blockSize > 0)
        var runs: [Run] = []
        var offset = 0
        while offset < region.count {
            let length = min(blockSize, region.count - offset)
            let zero = isZero(region.baseAddress! + offset, count: length)
            if var last = runs.last, last.isZero == zero {
                last.length += length
                runs[runs.count - 1] = last
            } else {
                runs.append(Run(offset: offset, length: length, isZero: zero))
            }
            offset += length
        }
        return runs
    }
}
