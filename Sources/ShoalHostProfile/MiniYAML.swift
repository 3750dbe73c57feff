/// A reader for the block-style YAML subset that netplan files use: nested mappings, block
/// sequences (also of mappings), flow sequences of scalars (`[a, "b"]`), `{}`/`[]`, plain and
/// quoted scalars, and comments.
///
/// ShoalHostProfile depends on ShoalCrypto only, and the netplan files it reads (to tell DHCP from
/// static at capture) and writes are this small subset, so a 150-line reader beats a dependency.
/// Anchors, tags, multi-line scalars and flow mappings with content are rejected with an error.
public enum YAMLValue: Hashable, Sendable {
    case scalar(String)
    case sequence([YAMLValue])
    case mapping([YAMLEntry])
    case null

    /// The value under `key` when this is a mapping.
    public subscript(key: String) -> YAMLValue? {
        if case .mapping(let entries) = self { return entries.first { $0.key == key }?.value }
        return nil
    }

    public var string: String? { if case .scalar(let s) = self { s } else { nil } }
    public var bool: Bool? {
        switch string?.lowercased() {
        case "true", "yes", "on", "y": true
        case "false", "no", "off", "n": false
        default: nil
        }
    }
    public var array: [YAMLValue]? { if case .sequence(let a) = self { a } else { nil } }
    public var entries: [YAMLEntry]? { if case .mapping(let e) = self { e } else { nil } }
    public var keys: [String] { entries?.map(\.key) ?? [] }
}

public struct YAMLEntry: Hashable, Sendable {
    public var key: String
    public var value: YAMLValue
}

public enum MiniYAML {
    /// Parses `text`.
    /// - Throws: ``HostProfileError/unparsable(source:reason:)`` naming `source` and the line.
    public static func parse(_ text: String, source: String = "YAML") throws(HostProfileError) -> YAMLValue {
        var reader = Reader(source: source)
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = try reader.stripComment(String(raw), line: number + 1)
            let trimmed = line.drop { $0 == " " }
            if trimmed.isEmpty || line.hasPrefix("---") { continue }
            if trimmed.first == "\t" { throw reader.fail(number + 1, "tab used for indentation") }
            reader.lines.append(Line(number: number + 1, indent: line.count - trimmed.count, text: String(trimmed)))
        }
        guard !reader.lines.isEmpty else { return .null }
        let value = try reader.block(indent: reader.lines[0].indent)
        if reader.index < reader.lines.count {
            throw reader.fail(reader.lines[reader.index].number, "unexpected indentation")
        }
        return value
    }

    struct Line {
        var number: Int
        var indent: Int
        var text: String
    }

    struct Reader {
        let source: String
        var lines: [Line] = []
        var index = 0

        func fail(_ line: Int, _ why: String) -> HostProfileError {
            .unparsable(source: source, reason: "line \(line): \(why)")
        }

        func stripComment(_ line: String, line number: Int) throws(HostProfileError) -> String {
            var quote: Character?
            var previous: Character = " "
            for (offset, c) in line.enumerated() {
                if let q = quote {
                    if c == q { quote = nil }
                } else if c == "\"" || c == "'" {
                    quote = c
                } else if c == "#" && (previous == " " || offset == 0) {
                    return String(line.prefix(offset)).trimmingTrailingSpaces()
                } else if ["&", "*", "!", "|", ">"].contains(c) && previous == " " && offset > 0 {
                    throw fail(number, "anchors, tags and block scalars are not supported")
                }
                previous = c
            }
            return line.trimmingTrailingSpaces()
        }

        mutating func block(indent: Int) throws(HostProfileError) -> YAMLValue {
            let first = lines[index]
            if first.text == "-" || first.text.hasPrefix("- ") { return try sequence(indent: indent) }
            return try mapping(indent: indent)
        }

        mutating func sequence(indent: Int) throws(HostProfileError) -> YAMLValue {
            var items: [YAMLValue] = []
            while index < lines.count, lines[index].indent == indent,
                lines[index].text == "-" || lines[index].text.hasPrefix("- ")
            {
                let line = lines[index]
                let rest = line.text.dropFirst(1).drop { $0 == " " }
                if rest.isEmpty {
                    index += 1
                    guard index < lines.count, lines[index].indent > indent else { items.append(.null); continue }
                    items.append(try block(indent: lines[index].indent))
                } else if splitKey(String(rest)) != nil {
                    // "- key: value" opens a mapping whose keys line up with "key".
                    let column = indent + (line.text.count - rest.count)
                    lines[index] = Line(number: line.number, indent: column, text: String(rest))
                    items.append(try mapping(indent: column))
                } else {
                    index += 1
                    items.append(try scalarOrFlow(String(rest), line: line.number))
                }
            }
            return .sequence(items)
        }

        mutating func mapping(indent: Int) throws(HostProfileError) -> YAMLValue {
            var entries: [YAMLEntry] = []
            while index < lines.count, lines[index].indent == indent {
                let line = lines[index]
                if line.text.hasPrefix("- ") || line.text == "-" { break }
                guard let (key, rest) = splitKey(line.text) else { throw fail(line.number, "expected 'key: value'") }
                if entries.contains(where: { $0.key == key }) { throw fail(line.number, "duplicate key '\(key)'") }
                index += 1
                let value: YAMLValue
                if !rest.isEmpty {
                    value = try scalarOrFlow(rest, line: line.number)
                } else if index < lines.count, lines[index].indent > indent {
                    value = try block(indent: lines[index].indent)
                } else if index < lines.count, lines[index].indent == indent, lines[index].text.hasPrefix("- ") {
                    value = try sequence(indent: indent)
                } else {
                    value = .null
                }
                entries.append(YAMLEntry(key: key, value: value))
            }
            if index < lines.count, lines[index].indent > indent {
                throw fail(lines[index].number, "unexpected indentation")
            }
            return .mapping(entries)
        }

        /// Splits `key: value` at the first `:` followed by a space or the end, outside quotes.
        func splitKey(_ text: String) -> (String, String)? {
            var quote: Character?
            let chars = Array(text)
            for i in chars.indices {
                let c = chars[i]
                if let q = quote {
                    if c == q { quote = nil }
                    continue
                }
                if (c == "\"" || c == "'") && i == 0 { quote = c; continue }
                if c == ":" && (i + 1 == chars.count || chars[i + 1] == " ") {
                    guard let key = try? unquote(String(chars[0..<i]).trimmingTrailingSpaces(), line: 0) else { return nil }
                    return (key, String(chars[(i + 1)...]).trimmingLeadingSpaces())
                }
                if c == "[" || c == "{" { return nil }
            }
            return nil
        }

        func scalarOrFlow(_ text: String, line: Int) throws(HostProfileError) -> YAMLValue {
            if text == "[]" { return .sequence([]) }
            if text == "{}" { return .mapping([]) }
            if text.hasPrefix("{") { throw fail(line, "flow mappings are not supported") }
            if text.hasPrefix("[") {
                guard text.hasSuffix("]") else { throw fail(line, "flow sequence not closed on its line") }
                var items: [YAMLValue] = []
                var current = "", quote: Character?
                for c in text.dropFirst().dropLast() {
                    if let q = quote {
                        current.append(c)
                        if c == q { quote = nil }
                    } else if c == "\"" || c == "'" {
                        quote = c
                        current.append(c)
                    } else if c == "," {
                        items.append(.scalar(try unquote(current.trimmingLeadingSpaces().trimmingTrailingSpaces(), line: line)))
                        current = ""
                    } else if c == "[" || c == "{" {
                        throw fail(line, "nested flow collections are not supported")
                    } else {
                        current.append(c)
                    }
                }
                let last = current.trimmingLeadingSpaces().trimmingTrailingSpaces()
                if !last.isEmpty { items.append(.scalar(try unquote(last, line: line))) }
                return .sequence(items)
            }
            if text == "~" || text == "null" { return .null }
            return .scalar(try unquote(text, line: line))
        }

        func unquote(_ text: String, line: Int) throws(HostProfileError) -> String {
            guard let q = text.first, q == "\"" || q == "'" else { return text }
            guard text.count >= 2, text.last == q else { throw fail(line, "unterminated quoted scalar") }
            let inner = String(text.dropFirst().dropLast())
            if q == "'" { return inner.replacingOccurrences("''", with: "'") }
            var out = "", escaped = false
            for c in inner {
                if escaped {
                    switch c {
                    case "n": out.append("\n")
                    case "t": out.append("\t")
                    default: out.append(c)
                    }
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else {
                    out.append(c)
                }
            }
            return out
        }
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var s = self
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return s
    }

    func trimmingLeadingSpaces() -> String { String(drop { $0 == " " || $0 == "\t" }) }

    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
