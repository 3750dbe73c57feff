import CShoalNative
import Glibc

/// A minimal io_uring owned by one thread: queue writes and fallocates, submit, reap.
///
/// Completions carry the 64-bit `userData` given at submission. Not thread-safe by design:
/// the staging writer's I/O thread is its only user.
final class IORing {
    private var ring = io_uring()
    let entries: UInt32
    private(set) var inFlight = 0

    init(entries: UInt32 = 64) throws(StorageError) {
        self.entries = entries
        let rc = io_uring_queue_init(entries, &ring, 0)
        guard rc == 0 else { throw .system(operation: "io_uring_queue_init(\(entries))", errno: -rc) }
    }

    deinit { io_uring_queue_exit(&ring) }

    struct Completion { var userData: UInt64; var result: Int32 }

    private func nextSQE() throws(StorageError) -> UnsafeMutablePointer<io_uring_sqe> {
        if let sqe = io_uring_get_sqe(&ring) { return sqe }
        // Submission queue full: hand what we have to the kernel and try again.
        let rc = io_uring_submit(&ring)
        guard rc >= 0 else { throw .system(operation: "io_uring_submit", errno: -rc) }
        guard let sqe = io_uring_get_sqe(&ring) else { throw .system(operation: "io_uring_get_sqe", errno: EBUSY) }
        return sqe
    }

    func queueWrite(fd: Int32, buffer: UnsafeRawPointer, count: Int, offset: UInt64, userData: UInt64) throws(StorageError) {
        let sqe = try nextSQE()
        io_uring_prep_write(sqe, fd, buffer, UInt32(count), offset)
        sqe.pointee.user_data = userData
        inFlight += 1
    }

    func queueFallocate(fd: Int32, mode: Int32, offset: UInt64, length: UInt64, userData: UInt64) throws(StorageError) {
        let sqe = try nextSQE()
        io_uring_prep_fallocate(sqe, fd, mode, off_t(offset), off_t(length))
        sqe.pointee.user_data = userData
        inFlight += 1
    }

    /// Submits queued entries and, when `wait` is true, blocks until at least one completes.
    func submit(wait: Bool) throws(StorageError) {
        while true {
            let rc = wait ? io_uring_submit_and_wait(&ring, 1) : io_uring_submit(&ring)
            if rc >= 0 { return }
            if rc == -EINTR || rc == -EAGAIN || rc == -EBUSY { if wait { continue } else { return } }
            throw .system(operation: "io_uring_submit", errno: -rc)
        }
    }

    /// Every completion currently available, without blocking.
    func reap() -> [Completion] {
        var out: [Completion] = []
        var cqe: UnsafeMutablePointer<io_uring_cqe>? = nil
        while io_uring_peek_cqe(&ring, &cqe) == 0, let c = cqe {
            out.append(Completion(userData: c.pointee.user_data, result: c.pointee.res))
            io_uring_cqe_seen(&ring, c)
            inFlight -= 1
        }
        return out
    }
}
