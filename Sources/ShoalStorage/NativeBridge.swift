import CShoalNative

/// Swift names for the C shims of `CShoalNative` used by this module.
enum CShoalNativeBridge {
    static func blockDeviceSize(_ fd: Int32, _ size: inout UInt64) -> Int32 { CShoalNative_blockDeviceSize(fd, &size) }
    static func logicalSectorSize(_ fd: Int32) -> Int? {
        var s: Int32 = 0
        return CShoalNative_blockDeviceLogicalSectorSize(fd, &s) == 0 ? Int(s) : nil
    }
    static func zeroOut(_ fd: Int32, offset: UInt64, length: UInt64) -> Int32 { CShoalNative_blockDeviceZeroOut(fd, offset, length) }
    static func fallocate(_ fd: Int32, _ mode: Int32, _ offset: off_t, _ length: off_t) -> Int32 { CShoalNative_fallocate(fd, mode, offset, length) }
    static var oDirect: Int32 { CShoalNative_O_DIRECT }
    static var punchHole: Int32 { CShoalNative_FALLOC_FL_PUNCH_HOLE }
    static var keepSize: Int32 { CShoalNative_FALLOC_FL_KEEP_SIZE }
    static var zeroRange: Int32 { CShoalNative_FALLOC_FL_ZERO_RANGE }
    static func major(_ dev: UInt) -> UInt32 { CShoalNative_major(dev) }
    static func minor(_ dev: UInt) -> UInt32 { CShoalNative_minor(dev) }
}
