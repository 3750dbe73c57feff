import CShoalNative

/// Compresses whole regions into independent zstd frames. One per thread (owns a `ZSTD_CCtx`).
public final class ZstdCompressor {
    private let context: OpaquePointer
    public let level: Int32

    public init(level: Int32, checksums: Bool = true) {
        self.context = ZSTD_createCCtx()!
        self.level = level
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, checksums ? 1 : 0)
        // The content size is always written (the whole region is given at once), so every
        // frame is "single segment" and a decoder needs no window beyond the region itself.
        ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    public static var levelRange: ClosedRange<Int32> { ZSTD_minCLevel()...ZSTD_maxCLevel() }

    /// Compresses `input` as one complete frame.
    public func compress(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        let bound = ZSTD_compressBound(input.count)
        var out = [UInt8](repeating: 0, count: bound)
        let written = out.withUnsafeMutableBytes { o in
            ZSTD_compress2(context, o.baseAddress, o.count, input.baseAddress, input.count)
        }
        precondition(ZSTD_isError(written) == 0, "ZSTD_compress2: \(String(cString: ZSTD_getErrorName(written)))")
        out.removeSubrange(written...)
        return out
    }
}

/// Decodes one zstd frame into a caller-provided region buffer, with bounded memory.
///
/// Uses the streaming API (`ZSTD_decompressStream`) with `ZSTD_d_windowLogMax` set from the
/// region size: a frame that asks for a larger window is refused instead of allocating. When
/// the whole frame and an output buffer of its content size are given (the normal case for
/// a region), zstd decodes straight into the output without an intermediate window copy.
public final class ZstdDecoder {
    private let context: OpaquePointer

    public init(maxWindowBytes: Int) {
        self.context = ZSTD_createDCtx()!
        var log: Int32 = 10
        while (1 << log) < maxWindowBytes && log < 31 { log += 1 }
        ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, log)
    }

    deinit { ZSTD_freeDCtx(context) }

    public enum Failure: Error, Equatable { case corrupt(String), wrongSize(Int), trailingBytes(Int) }

    /// Decodes exactly one frame that must fill `output` exactly.
    public func decode(frame input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(Failure) {
        ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        while true {
            let result = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
            if ZSTD_isError(result) != 0 { throw .corrupt(String(cString: ZSTD_getErrorName(result))) }
            if result == 0 { break }  // frame complete
            if inBuffer.pos == inBuffer.size {
                throw .corrupt("frame ends early")
            }
            if outBuffer.pos == outBuffer.size {
                // Output is full but the frame is not finished: it decodes to more than expected.
                var scratch = [UInt8](repeating: 0, count: 1)
                let extra = scratch.withUnsafeMutableBytes { s -> Int in
                    var o = ZSTD_outBuffer(dst: s.baseAddress, size: 1, pos: 0)
                    _ = ZSTD_decompressStream(context, &o, &inBuffer)
                    return o.pos
                }
                if extra > 0 { throw .wrongSize(output.count + extra) }
            }
        }
        guard outBuffer.pos == output.count else { throw .wrongSize(outBuffer.pos) }
        guard inBuffer.pos == input.count else { throw .trailingBytes(input.count - inBuffer.pos) }
    }
}
