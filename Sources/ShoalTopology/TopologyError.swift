/// Why a topology file, a rate or a host selector was refused.
///
/// `path` names the place in the YAML document in the usual dotted form, for example
/// `sites[1].wan` or `hosts[3].labels.role`; `line` is the 1-based line of that place in the
/// document when it is known. The description puts them together:
///
///     sites[1].wan: unknown unit "Mbps"; ... (line 7)
public struct TopologyError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Where in the document the problem is (`sites[1].wan`), or `nil` when there is no document
    /// position (a rate or selector parsed on its own, or a document that is not YAML at all).
    public var path: String?
    /// What is wrong, without the path.
    public var message: String
    /// The 1-based line in the YAML text, when known.
    public var line: Int?

    /// Creates an error; `path` and `line` are optional.
    public init(path: String? = nil, message: String, line: Int? = nil) {
        self.path = path
        self.message = message
        self.line = line
    }

    /// `path: message (line N)`, leaving out what is unknown.
    public var description: String {
        var text = message
        if let path, !path.isEmpty { text = "\(path): " + text }
        if let line { text += " (line \(line))" }
        return text
    }

    /// The same error placed at `path` (and `line`), for errors raised by context-free parsers.
    func at(_ path: String, line: Int?) -> TopologyError {
        TopologyError(path: path, message: message, line: line ?? self.line)
    }
}
