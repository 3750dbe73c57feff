/// Why the rollout engine refused a spec, a policy or an operator action.
///
/// Every ``description`` is meant for the operator: it says what was wrong and, where there is
/// one, what to do instead. Nothing is changed in a rollout when one of these is thrown.
public enum RolloutError: Error, Hashable, Sendable, CustomStringConvertible {
    /// An amount (`5`, `"10%"`) could not be read or is out of range.
    case invalidAmount(String)
    /// A policy value is out of range or a policy key is unknown.
    case invalidPolicy(String)
    /// The spec lacks something its kind needs, or a value is out of range.
    case invalidSpec(String)
    /// The action is not possible in the rollout's current status.
    case wrongStatus(action: String, status: RolloutStatus)
    /// Hosts named by the operator are not in the rollout.
    case unknownHosts([String])
    /// A host named by the operator is not in a phase the action applies to.
    case hostNotEligible(action: String, host: String, phase: HostPhase)
    /// The action has nothing to act on (for example a retry with no failed host).
    case nothingToDo(String)

    public var description: String {
        switch self {
        case .invalidAmount(let s): return "invalid amount: \(s)"
        case .invalidPolicy(let s): return "invalid rollout policy: \(s)"
        case .invalidSpec(let s): return "invalid rollout: \(s)"
        case .wrongStatus(let action, let status):
            switch status {
            case .aborted: return "cannot \(action): the rollout was aborted, which is final; start a new rollout"
            case .completed: return "cannot \(action): the rollout is completed"
            default: return "cannot \(action) a rollout that is \(status)"
            }
        case .unknownHosts(let names):
            return "not in this rollout: \(names.joined(separator: ", "))"
        case .hostNotEligible(let action, let host, let phase):
            switch action {
            case "retry": return "cannot retry host \(host): it is \(phase); only failed hosts can be retried"
            case "revert": return "cannot revert host \(host): it is \(phase); only succeeded or failed hosts can be reverted"
            default: return "cannot \(action) host \(host): it is \(phase)"
            }
        case .nothingToDo(let s): return s
        }
    }
}
