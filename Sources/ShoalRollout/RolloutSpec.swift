/// One host of a rollout, with where it sits.
public struct RolloutHost: Codable, Hashable, Sendable {
    public var name: String
    public var site: String
    /// Hosts without a rack are not held by the per-rack cap.
    public var rack: String?
    public var labels: [String: String]

    public init(name: String, site: String, rack: String? = nil, labels: [String: String] = [:]) {
        self.name = name
        self.site = site
        self.rack = rack
        self.labels = labels
    }
}

/// What the operator asked for: run `kind` on these hosts with these bundles, under this policy.
public struct RolloutSpec: Codable, Hashable, Sendable {
    /// 1…64 characters of `A-Z a-z 0-9 . _ -`; part of every operation id.
    public var id: String
    public var kind: RolloutKind
    public var stagingBundle: String
    /// Needed for `convert`.
    public var targetBundle: String?
    /// Needed for `maintenance`.
    public var maintenanceBundle: String?
    /// The selector the operator used to pick the hosts (kept for display).
    public var selector: String
    /// The hosts, in the operator's order (the order host orders are drawn in).
    public var hosts: [RolloutHost]
    public var policy: RolloutPolicy

    public init(
        id: String, kind: RolloutKind, stagingBundle: String, targetBundle: String? = nil,
        maintenanceBundle: String? = nil, selector: String = "", hosts: [RolloutHost], policy: RolloutPolicy = RolloutPolicy()
    ) {
        self.id = id
        self.kind = kind
        self.stagingBundle = stagingBundle
        self.targetBundle = targetBundle
        self.maintenanceBundle = maintenanceBundle
        self.selector = selector
        self.hosts = hosts
        self.policy = policy
    }

    /// Checks the id, the bundles the kind needs, the hosts and the policy.
    ///
    /// - Throws: ``RolloutError/invalidSpec(_:)`` or ``RolloutError/invalidPolicy(_:)``.
    public func validate() throws(RolloutError) {
        let idOK = (1...64).contains(id.count)
            && id.unicodeScalars.allSatisfy { s in
                ("a"..."z").contains(s) || ("A"..."Z").contains(s) || ("0"..."9").contains(s) || s == "." || s == "_" || s == "-"
            }
        if !idOK { throw .invalidSpec("id \"\(id)\" must be 1…64 characters of A-Z a-z 0-9 . _ -") }
        if stagingBundle.isEmpty { throw .invalidSpec("stagingBundle is empty") }
        switch kind {
        case .convert:
            if (targetBundle ?? "").isEmpty { throw .invalidSpec("a convert rollout needs targetBundle (the OS to convert to)") }
        case .maintenance:
            if (maintenanceBundle ?? "").isEmpty { throw .invalidSpec("a maintenance rollout needs maintenanceBundle") }
        }
        if hosts.isEmpty { throw .invalidSpec("no hosts: selector \"\(selector)\" matched none") }
        var seen = Set<String>()
        for h in hosts {
            if h.name.isEmpty { throw .invalidSpec("a host has an empty name") }
            if h.site.isEmpty { throw .invalidSpec("host \(h.name) has no site") }
            if !seen.insert(h.name).inserted { throw .invalidSpec("host \(h.name) is listed twice") }
        }
        try policy.validate()
    }
}
