/// Where the agent keeps its operation records.
///
/// The store is also the per-host lock: while the current record has no outcome, the host belongs
/// to that operation and ``begin(_:)`` refuses any other. The lock survives reboots because it is
/// the record itself; it must therefore live on a disk no step wipes (the staging disk).
public protocol OperationStore: Sendable {
    /// The current record: the unfinished operation holding the host, or the last finished one;
    /// nil when the host never ran one.
    ///
    /// - Throws: ``AgentError/corruptState(path:detail:)`` when the stored record cannot be read.
    ///   It is never replaced silently.
    func load() throws(AgentError) -> OperationRecord?

    /// The record of operation `id`: the current one or a finished one kept in the history; nil
    /// when this host never ran it. Lets a caller re-sending an order find out how it went.
    func record(id: String) throws(AgentError) -> OperationRecord?

    /// Replaces the current record. When it returns the record is durable (survives power loss).
    func save(_ record: OperationRecord) throws(AgentError)

    /// Makes `record` the current one if the host is free, atomically with the check.
    ///
    /// - Returns: the current record after the call: `record`, or the existing record (current or
    ///   finished) with the same id when the request is a repeat (so a re-sent order does not start
    ///   a second run).
    /// - Throws: ``AgentError/operationInProgress(id:kind:step:)`` naming the operation that holds
    ///   the host.
    func begin(_ record: OperationRecord) throws(AgentError) -> OperationRecord
}
