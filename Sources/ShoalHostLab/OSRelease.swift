/// The identity of an OS as `/etc/os-release` states it (os-release(5)).
public struct OSRelease: Sendable, Hashable, Codable, CustomStringConvertible {
    /// `ID`: lower-case, no spaces (`debian`, `shoal-a`).
    public var id: String
    /// `NAME` (`Debian GNU/Linux`).
    public var name: String
    /// `VERSION_ID` (`12`), empty when absent.
    public var versionID: String
    /// `PRETTY_NAME`, empty when absent.
    public var prettyName: String
    /// Every field of the file, unquoted.
    public var fields: [String: String]

    public init(id: String, name: String, versionID: String = "", prettyName: String = "", extra: [String: String] = [:]) {
        self.id = id
        self.name = name
        self.versionID = versionID
        self.prettyName = prettyName
        var fields = extra
        fields["ID"] = id
        fields["NAME"] = name
        if !versionID.isEmpty { fields["VERSION_ID"] = versionID }
        if !prettyName.isEmpty { fields["PRETTY_NAME"] = prettyName }
        self.fields = fields
    }

    /// Parses os-release text: `KEY=value` lines, values optionally in single or double quotes
    /// with backslash escapes; comments and blank lines skipped. `ID` defaults to `linux` and
    /// `NAME` to `Linux`, as os-release(5) says.
    public init(parsing text: String) {
        var fields: [String: String] = [:]
        for rawLine in text.split(separator: "\n") {
            let line = rawLine.trimmingSpaces()
            guard !line.isEmpty, !line.hasPrefix("#"), let equals = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<equals])
            var value = Substring(line[line.index(after: equals)...])
            if let quote = value.first, quote == "\"" || quote == "'", value.count >= 2, value.last == quote {
                value = value.dropFirst().dropLast()
                var unescaped = ""
                var escaping = false
                for character in value {
                    if escaping { unescaped.append(character); escaping = false }
                    else if character == "\\" && quote == "\"" { escaping = true }
                    else { unescaped.append(character) }
                }
                fields[key] = unescaped
            } else {
                fields[key] = String(value)
            }
        }
        self.fields = fields
        id = fields["ID"] ?? "linux"
        name = fields["NAME"] ?? "Linux"
        versionID = fields["VERSION_ID"] ?? ""
        prettyName = fields["PRETTY_NAME"] ?? ""
    }

    /// The file's text: every field, values in double quotes (`ID` first, then sorted).
    public var text: String {
        let keys = ["NAME", "ID", "VERSION_ID", "PRETTY_NAME"].filter { fields[$0] != nil }
            + fields.keys.filter { !["NAME", "ID", "VERSION_ID", "PRETTY_NAME"].contains($0) }.sorted()
        return keys.map { key in
            var quoted = ""
            for character in fields[key]! {
                if "\"\\$`".contains(character) { quoted.append("\\") }
                quoted.append(character)
            }
            return "\(key)=\"\(quoted)\""
        }.joined(separator: "\n") + "\n"
    }

    public var description: String { prettyName.isEmpty ? "\(name) (\(id))" : "\(prettyName) (\(id))" }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return s
    }
}
