/// A choice of hosts, as given to `--hosts SELECTOR`.
///
/// A selector is `all` or a comma-separated list of conditions, all of which a host must meet:
///
/// | condition          | a host matches when                                           |
/// |--------------------|---------------------------------------------------------------|
/// | `all`              | always                                                        |
/// | `site=NAME`        | it is in site `NAME`                                          |
/// | `rack=NAME`        | its rack is `NAME` (in whichever site)                        |
/// | `name=GLOB`        | its name matches `GLOB`, where `*` is any run of characters   |
/// |                    | (also none) and `?` is one character: `name=a*`, `name=?1`    |
/// | `label=KEY=VALUE`  | it has label `KEY` with value `VALUE`                         |
/// | `label=KEY`        | it has label `KEY`, with any value                            |
///
/// Spaces around conditions are ignored: `site=a, rack=r1` is `site=a,rack=r1`.
public struct HostSelector: Hashable, Sendable, CustomStringConvertible {
    /// One condition of a selector.
    public enum Condition: Hashable, Sendable {
        /// Every host.
        case all
        /// The hosts of one site.
        case site(String)
        /// The hosts of one rack (racks of the same name in several sites all match).
        case rack(String)
        /// The hosts whose name matches a glob with `*` and `?`.
        case name(String)
        /// The hosts with a label; `value` nil matches any value.
        case label(key: String, value: String?)
    }

    /// The conditions, all of which must hold.
    public var conditions: [Condition]

    /// A selector of the given conditions (an empty list selects every host).
    public init(conditions: [Condition]) {
        self.conditions = conditions
    }

    /// The selector as written, normalized: `site=a,rack=r1`.
    public var description: String {
        conditions.map { condition in
            switch condition {
            case .all: return "all"
            case .site(let site): return "site=\(site)"
            case .rack(let rack): return "rack=\(rack)"
            case .name(let glob): return "name=\(glob)"
            case .label(let key, let value): return "label=\(key)" + (value.map { "=\($0)" } ?? "")
            }
        }.joined(separator: ",")
    }

    /// Parses a selector (see the type's documentation).
    ///
    /// - Throws: `TopologyError` for an empty selector or condition, an unknown key (`zone=a`),
    ///   a condition without `=`, or an empty value.
    public static func parse(_ text: String) throws -> HostSelector {
        let trimmed = text.trimmingSpaces
        guard !trimmed.isEmpty else {
            throw TopologyError(message: "empty host selector; write all, site=NAME, rack=NAME, name=GLOB or label=KEY=VALUE, joined by commas")
        }
        var conditions: [Condition] = []
        for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let term = String(part).trimmingSpaces
            func fail(_ message: String) -> TopologyError { TopologyError(message: "host selector \"\(trimmed)\": \(message)") }
            guard !term.isEmpty else { throw fail("empty condition between commas") }
            if term == "all" { conditions.append(.all); continue }
            guard let equals = term.firstIndex(of: "=") else {
                throw fail("condition \"\(term)\" has no \"=\"; expected all, site=, rack=, name= or label=")
            }
            let key = String(term[..<equals]).trimmingSpaces
            let value = String(term[term.index(after: equals)...]).trimmingSpaces
            guard !value.isEmpty else { throw fail("condition \"\(term)\" has no value") }
            switch key {
            case "site": conditions.append(.site(value))
            case "rack": conditions.append(.rack(value))
            case "name": conditions.append(.name(value))
            case "label":
                if let inner = value.firstIndex(of: "=") {
                    let labelKey = String(value[..<inner]).trimmingSpaces
                    let labelValue = String(value[value.index(after: inner)...]).trimmingSpaces
                    guard !labelKey.isEmpty else { throw fail("condition \"\(term)\" has no label key") }
                    guard !labelValue.isEmpty else { throw fail("condition \"\(term)\" has no label value (write label=KEY to match any value)") }
                    conditions.append(.label(key: labelKey, value: labelValue))
                } else {
                    conditions.append(.label(key: value, value: nil))
                }
            default:
                throw fail("unknown key \"\(key)\" in \"\(term)\"; expected all, site=, rack=, name= or label=")
            }
        }
        return HostSelector(conditions: conditions)
    }

    /// Whether `host` meets every condition.
    public func matches(_ host: Host) -> Bool {
        conditions.allSatisfy { condition in
            switch condition {
            case .all: return true
            case .site(let site): return host.site == site
            case .rack(let rack): return host.rack == rack
            case .name(let glob): return HostSelector.glob(glob, matches: host.name)
            case .label(let key, let value):
                guard let actual = host.labels[key] else { return false }
                return value.map { $0 == actual } ?? true
            }
        }
    }

    /// Glob matching with `*` (any run, also empty) and `?` (one character), over characters.
    static func glob(_ pattern: String, matches text: String) -> Bool {
        let p = Array(pattern), t = Array(text)
        var (pi, ti) = (0, 0)
        var star: Int? = nil, resume = 0
        while ti < t.count {
            if pi < p.count, p[pi] == "?" || p[pi] == t[ti] {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == "*" {
                star = pi; resume = ti; pi += 1
            } else if let s = star {
                pi = s + 1; resume += 1; ti = resume
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == "*" { pi += 1 }
        return pi == p.count
    }
}

extension Topology {
    /// The hosts `selector` chooses, in file order.
    ///
    /// Typos do not silently select nothing: a `site=` naming no site, a `rack=` naming no rack
    /// (declared by a site or used by a host), a `name=` without wildcards naming no host, and a
    /// selector that matches no host at all are errors.
    public func hosts(matching selector: HostSelector) throws -> [Host] {
        for condition in selector.conditions {
            switch condition {
            case .site(let name) where site(named: name) == nil:
                throw TopologyError(message: "host selector \"\(selector)\": unknown site \"\(name)\"; sites are \(sites.map(\.name).joined(separator: ", "))")
            case .rack(let name) where !sites.contains(where: { $0.racks.contains(name) }) && !hosts.contains(where: { $0.rack == name }):
                throw TopologyError(message: "host selector \"\(selector)\": unknown rack \"\(name)\"")
            case .name(let glob) where !glob.contains("*") && !glob.contains("?") && host(named: glob) == nil:
                throw TopologyError(message: "host selector \"\(selector)\": unknown host \"\(glob)\"")
            default:
                break
            }
        }
        let chosen = hosts.filter(selector.matches)
        guard !chosen.isEmpty else { throw TopologyError(message: "host selector \"\(selector)\" matches no host") }
        return chosen
    }

    /// The hosts the selector text chooses (`site=a,rack=r1`), in file order; see
    /// `HostSelector.parse(_:)` and `hosts(matching: HostSelector)` for the errors.
    public func hosts(matching selector: String) throws -> [Host] {
        try hosts(matching: HostSelector.parse(selector))
    }
}
