import Foundation

/// Where the coordinator's `Tracker.State` survives restarts.
///
/// The tracker stays pure logic: it records which rows each request changed (`Tracker.Changes`),
/// and the server hands those keys, with the state to read their values from, to `save`. A store
/// therefore never scans the fleet on a save; it writes the named rows and nothing else. That is
/// all a second backend needs (PostgreSQL for an HA pair: the same tables, the same one-transaction
/// `save`), without touching the tracker.
public protocol CoordinatorStore: Sendable {
    /// The whole state as last saved (an empty state for a new store).
    func load() throws -> Tracker.State

    /// Writes the rows `changes` names, with their values as they are in `state`, in ONE
    /// transaction: either all of them are stored or none is. A key whose value is gone from
    /// `state` (a removed document) deletes its row. `changes.badPeerReportsAppended` means the
    /// last that many lines of `state.badPeerReports` are new.
    func save(_ changes: Tracker.Changes, of state: Tracker.State) throws

    /// Releases the store (the server calls it once, on stop, after its last save).
    func close() throws
}

extension CoordinatorStore {
    public func close() throws {}
}

/// A store that cannot be opened, read or written; the message names the file and the cause.
public struct CoordinatorStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
