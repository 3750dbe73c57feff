import Foundation

/// The agent's source of time: timestamps for the log, deadlines, and the waits between polls.
///
/// Injected so tests drive timeouts with a manual clock (a sleep advances it) instead of waiting.
public protocol AgentClock: Sendable {
    /// The current wall-clock time.
    func now() -> Date
    /// Waits `seconds`. Throws `CancellationError` when the task is cancelled.
    func sleep(seconds: Double) async throws
}

/// The real clock.
public struct SystemAgentClock: AgentClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(seconds: Double) async throws {
        try await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
    }
}
