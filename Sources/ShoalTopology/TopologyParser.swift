import Yams

extension Topology {
    /// Parses and validates a topology document (the format is in `topology/README.md`).
    ///
    ///     origin: { name: origin, uplink: 100Mbit, seeds: [seed] }
    ///     sites:
    ///       - { name: a, wan: 50Mbit, host_link: 100Mbit }
    ///     hosts:
    ///       - { name: a1, site: a }
    ///
    /// - Throws: `TopologyError` naming the YAML path (`sites[1].wan: unknown unit "Mbps"`) and
    ///   line of the first problem: invalid YAML, a missing, unknown or mistyped key, a bad rate or
    ///   name, a duplicate name, a host in an undeclared site or rack.
    public static func parse(yaml: String) throws -> Topology {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw TopologyError(yaml: error)
        }
        guard let root else {
            throw TopologyError(message: "empty document; a topology needs origin, sites and hosts")
        }
        var reader = DocumentReader()
        let topology = try reader.topology(Element(node: root, path: ""))
        do {
            try topology.validate()
        } catch var error as TopologyError {
            // Validation knows paths, not lines: take the line (and the spelling the file used) from the reader.
            if let path = error.path {
                let spelled = reader.spelling[path] ?? path
                error.path = spelled
                error.line = reader.lines[spelled] ?? reader.lines[parentPath(of: spelled)]
                for (model, spelling) in reader.spelling {
                    error.message = error.message.replacing("(also \(model))", with: "(also \(spelling))")
                }
            }
            throw error
        }
        return topology
    }

    private static func parentPath(of path: String) -> String {
        if let dot = path.lastIndex(of: ".") { return String(path[..<dot]) }
        return ""
    }
}

extension TopologyError {
    /// A YAML syntax error, reduced to its problem and line.
    init(yaml error: YamlError) {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let extra = context.map { " (\($0.text))" } ?? ""
            self.init(message: "invalid YAML: \(problem)\(extra)", line: mark.line)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.sorted().map { "\"\($0)\"" }.joined(separator: ", ")
            self.init(message: "invalid YAML: duplicate key \(keys) in one mapping", line: context.mark.line)
        default:
            self.init(message: "invalid YAML: \(error)")
        }
    }
}

/// A YAML node and its path in the document.
private struct Element {
    let node: Node
    let path: String

    var line: Int? { node.mark?.line }

    func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ message: String) -> TopologyError { TopologyError(path: path.isEmpty ? nil : path, message: message, line: line) }

    var isNull: Bool {
        if case .scalar = node { return node.tag.description == Tag.Name.null.rawValue }
        return false
    }

    private var kind: String {
        switch node {
        case .scalar: return isNull ? "nothing" : "a value"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }

    /// The mapping's values by key; any key outside `allowed` is an error.
    func mapping(allowed: [String]) throws -> Fields {
        guard case .mapping(let mapping) = node else { throw error("expected a mapping with keys \(allowed.joined(separator: ", ")), found \(kind)") }
        var values: [String: Element] = [:]
        for (key, value) in mapping {
            guard case .scalar(let scalar) = key else { throw error("mapping keys must be plain words") }
            let name = scalar.string
            guard allowed.contains(name) else {
                throw TopologyError(path: child(name), message: "unknown key; expected one of \(allowed.joined(separator: ", "))", line: key.mark?.line)
            }
            values[name] = Element(node: value, path: child(name))
        }
        return Fields(owner: self, values: values)
    }

    /// The list's items (an empty value counts as an empty list).
    func sequence() throws -> [Element] {
        if isNull { return [] }
        guard case .sequence(let items) = node else { throw error("expected a list, found \(kind)") }
        return items.enumerated().map { Element(node: $1, path: "\(path)[\($0)]") }
    }

    /// The scalar's text as written (so `tier: 1` reads as "1").
    func string() throws -> String {
        guard case .scalar(let scalar) = node else { throw error("expected a value, found \(kind)") }
        guard !isNull else { throw error("value is missing") }
        return scalar.string
    }

    /// A name (see `Topology.checkName`).
    func name(_ what: String = "name") throws -> String {
        let text = try string()
        try Topology.checkName(text, at: path, what: what)
        return text
    }

    func rate() throws -> Rate {
        let text = try string()
        do { return try Rate.parse(text) } catch let error as TopologyError { throw error.at(path, line: line) }
    }
}

/// The values of one mapping, looked up by key.
private struct Fields {
    let owner: Element
    let values: [String: Element]

    subscript(key: String) -> Element? { values[key] }

    func required(_ key: String) throws -> Element {
        guard let value = values[key] else {
            throw TopologyError(path: owner.child(key), message: "required key is missing", line: owner.line)
        }
        return value
    }

    /// Refuses a mapping that has both `key` and any of `others`.
    func exclusive(_ key: String, _ others: [String]) throws {
        guard values[key] != nil, let other = others.first(where: { values[$0] != nil }) else { return }
        let element = values[other]!
        throw element.error("give either \(key) or \(others.joined(separator: "/")), not both")
    }
}

/// Reads a document into a `Topology`, remembering the line of each path for later errors.
private struct DocumentReader {
    /// The line of every path read.
    var lines: [String: Int] = [:]
    /// Model paths the file spelled another way (`origin.seeds[0]` written as `origin.seed`).
    var spelling: [String: String] = [:]

    mutating func note(_ element: Element) {
        if let line = element.line { lines[element.path] = line }
    }

    mutating func topology(_ root: Element) throws -> Topology {
        let fields = try root.mapping(allowed: ["origin", "sites", "hosts"])
        let origin = try self.origin(fields.required("origin"))
        let sitesElement = try fields.required("sites")
        note(sitesElement)
        var sites: [Site] = []
        for element in try sitesElement.sequence() { sites.append(try site(element)) }
        guard !sites.isEmpty else {
            // Said here, before hosts are read, so that hosts do not all name an unknown site.
            throw sitesElement.error("at least one site is required")
        }
        let hostsElement = try fields.required("hosts")
        note(hostsElement)
        var hosts: [Host] = []
        for element in try hostsElement.sequence() { hosts.append(try host(element, sites: sites)) }
        return Topology(origin: origin, sites: sites, hosts: hosts)
    }

    mutating func origin(_ element: Element) throws -> Origin {
        note(element)
        let fields = try element.mapping(allowed: ["name", "uplink", "uplink_limit", "seed", "seeds"])
        var name = "origin"
        if let value = fields["name"] { note(value); name = try value.name() }
        let uplink = try fields.required("uplink")
        note(uplink)
        try fields.exclusive("seed", ["seeds"])
        var seeds: [String] = []
        if let seed = fields["seed"] {
            note(seed)
            spelling["origin.seeds[0]"] = seed.path
            seeds = [try seed.name("seed name")]
        } else if let list = fields["seeds"] {
            note(list)
            for item in try list.sequence() { note(item); seeds.append(try item.name("seed name")) }
        } else {
            throw TopologyError(path: element.child("seeds"), message: "required key is missing (give seed: NAME or seeds: [NAME, ...])", line: element.line)
        }
        var uplinkLimit: Rate? = nil
        if let value = fields["uplink_limit"] { note(value); uplinkLimit = try value.rate() }
        return Origin(name: name, uplink: try uplink.rate(), seeds: seeds, uplinkLimit: uplinkLimit)
    }

    mutating func site(_ element: Element) throws -> Site {
        note(element)
        let fields = try element.mapping(allowed: ["name", "wan", "wan_up", "wan_down", "racks", "host_link", "host_up", "host_down",
                                                              "wan_limit", "wan_limit_up", "wan_limit_down", "host_limit"])
        for value in fields.values.values { note(value) }
        let name = try fields.required("name").name("site name")
        try fields.exclusive("wan", ["wan_up", "wan_down"])
        try fields.exclusive("host_link", ["host_up", "host_down"])
        let up: Rate, down: Rate
        if let wan = fields["wan"] {
            (up, down) = (try wan.rate(), try wan.rate())
            spelling[element.child("wan_up")] = wan.path
            spelling[element.child("wan_down")] = wan.path
        } else if fields["wan_up"] != nil || fields["wan_down"] != nil {
            up = try fields.required("wan_up").rate()
            down = try fields.required("wan_down").rate()
        } else {
            throw TopologyError(path: element.child("wan"), message: "required key is missing (give wan, or wan_up and wan_down)", line: element.line)
        }
        var racks: [String] = []
        if let list = fields["racks"] {
            for item in try list.sequence() { note(item); racks.append(try item.name("rack name")) }
        }
        var hostUp = try fields["host_up"]?.rate(), hostDown = try fields["host_down"]?.rate()
        if let link = fields["host_link"] {
            (hostUp, hostDown) = (try link.rate(), try link.rate())
            spelling[element.child("host_up")] = link.path
            spelling[element.child("host_down")] = link.path
        }
        try fields.exclusive("wan_limit", ["wan_limit_up", "wan_limit_down"])
        var wanLimitUp = try fields["wan_limit_up"]?.rate(), wanLimitDown = try fields["wan_limit_down"]?.rate()
        if let limit = fields["wan_limit"] {
            (wanLimitUp, wanLimitDown) = (try limit.rate(), try limit.rate())
            spelling[element.child("wan_limit_up")] = limit.path
            spelling[element.child("wan_limit_down")] = limit.path
        }
        let hostLimit = try fields["host_limit"]?.rate()
        return Site(name: name, wanUp: up, wanDown: down, racks: racks, hostUp: hostUp, hostDown: hostDown,
                    wanLimitUp: wanLimitUp, wanLimitDown: wanLimitDown, hostLimit: hostLimit)
    }

    mutating func host(_ element: Element, sites: [Site]) throws -> Host {
        note(element)
        let fields = try element.mapping(allowed: ["name", "site", "rack", "labels", "link", "up", "down", "limit"])
        for value in fields.values.values { note(value) }
        let name = try fields.required("name").name("host name")
        let siteElement = try fields.required("site")
        let siteName = try siteElement.name("site name")
        guard let site = sites.first(where: { $0.name == siteName }) else {
            throw siteElement.error("unknown site \"\(siteName)\"; sites are \(sites.map(\.name).joined(separator: ", "))")
        }
        let rack = try fields["rack"]?.name("rack name")
        var labels: [String: String] = [:]
        if let labelsElement = fields["labels"], !labelsElement.isNull {
            guard case .mapping(let mapping) = labelsElement.node else { throw labelsElement.error("expected a mapping of label keys to values") }
            for (key, value) in mapping {
                let keyElement = Element(node: key, path: labelsElement.path)
                let keyText = try keyElement.name("label key")
                let valueElement = Element(node: value, path: labelsElement.child(keyText))
                note(valueElement)
                labels[keyText] = try valueElement.string()
            }
        }
        try fields.exclusive("link", ["up", "down"])
        var up = try fields["up"]?.rate(), down = try fields["down"]?.rate()
        if let link = fields["link"] {
            (up, down) = (try link.rate(), try link.rate())
            spelling[element.child("up")] = link.path
            spelling[element.child("down")] = link.path
        }
        guard let up = up ?? site.hostUp else {
            throw element.error("no upload rate: set link or up on the host, or host_link or host_up on site \"\(site.name)\"")
        }
        guard let down = down ?? site.hostDown else {
            throw element.error("no download rate: set link or down on the host, or host_link or host_down on site \"\(site.name)\"")
        }
        return Host(name: name, site: siteName, rack: rack, labels: labels, up: up, down: down, limit: try fields["limit"]?.rate())
    }
}
