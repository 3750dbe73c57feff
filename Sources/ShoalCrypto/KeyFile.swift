import Glibc

/// Writing key and certificate files: created with their mode from the start (a private key is
/// never readable by others, not even briefly), never silently replaced, fsynced.
public enum KeyFile {
    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The file exists and `overwrite` was false.
        case exists(String)
        case failed(String)

        public var description: String {
            switch self {
            case .exists(let path): return "\(path) exists; refusing to overwrite"
            case .failed(let why): return why
            }
        }
    }

    public static func write(_ text: String, to path: String, mode: mode_t, overwrite: Bool = false) throws(Failure) {
        var st = stat()
        if !overwrite && stat(path, &st) == 0 { throw .exists(path) }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw .failed("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        fchmod(fd, mode)
        let bytes = Array(text.utf8)
        guard Glibc.write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw .failed("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
