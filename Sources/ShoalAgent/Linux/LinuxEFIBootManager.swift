/// One UEFI boot entry as `efibootmgr` lists it.
public struct LinuxEFIBootEntry: Hashable, Sendable {
    public var number: UInt16
    public var label: String
    /// `*` in the listing: the firmware will consider it.
    public var active: Bool
    /// The device path (`HD(1,GPT,…)/File(\EFI\debian\shimx64.efi)`), printed with `-v` and by efibootmgr ≥ 18.
    public var devicePath: String?

    /// `Boot0003`-style name.
    public var name: String { "Boot" + LinuxEFIBootManager.hex(number) }
}

/// The state `efibootmgr` prints.
public struct LinuxEFIBootState: Hashable, Sendable {
    public var bootCurrent: UInt16?
    public var bootNext: UInt16?
    public var bootOrder: [UInt16]
    public var timeoutSeconds: Int?
    public var entries: [LinuxEFIBootEntry]

    /// The number of the entry labelled `label` (exact match; surrounding spaces ignored).
    /// - Throws: ``LinuxDriverError/bootEntryNotFound(label:available:)`` or
    ///   ``LinuxDriverError/bootEntryAmbiguous(label:numbers:)``: a one-shot boot into the wrong entry is
    ///   worse than no conversion.
    public func entryNumber(label: String) throws(LinuxDriverError) -> UInt16 {
        let wanted = label.linuxTrimmed()
        let matches = entries.filter { $0.label.linuxTrimmed() == wanted }
        guard let first = matches.first else {
            throw .bootEntryNotFound(label: label, available: entries.map { "\($0.name) '\($0.label)'" })
        }
        guard matches.count == 1 else { throw .bootEntryAmbiguous(label: label, numbers: matches.map { LinuxEFIBootManager.hex($0.number) }) }
        return first.number
    }
}

/// Reads `efibootmgr` output (with or without `-v`).
public enum LinuxEFIBootManager {
    /// Parses the listing. Unknown lines (`MirroredPercentageAbove4G`, …) are ignored.
    /// - Throws: ``LinuxDriverError/unparsable(source:reason:)`` for a malformed `Boot…` line or header.
    public static func parse(_ output: String) throws(LinuxDriverError) -> LinuxEFIBootState {
        var state = LinuxEFIBootState(bootOrder: [], entries: [])
        for raw in output.split(whereSeparator: \.isNewline) {
            let line = String(raw)
            if let v = value(line, "BootCurrent") {
                state.bootCurrent = try number(v, line: line)
            } else if let v = value(line, "BootNext") {
                state.bootNext = try number(v, line: line)
            } else if let v = value(line, "BootOrder") {
                state.bootOrder = try v.isEmpty ? [] : v.split(separator: ",").map { (s: Substring) throws(LinuxDriverError) in try number(String(s), line: line) }
            } else if let v = value(line, "Timeout") {
                state.timeoutSeconds = Int(v.split(separator: " ").first ?? "")
            } else if let entry = try bootEntry(line) {
                guard !state.entries.contains(where: { $0.number == entry.number }) else {
                    throw .unparsable(source: "efibootmgr", reason: "\(entry.name) listed twice")
                }
                state.entries.append(entry)
            }
        }
        return state
    }

    /// Four uppercase hex digits, as efibootmgr prints and takes them.
    public static func hex(_ n: UInt16) -> String {
        let s = String(n, radix: 16, uppercase: true)
        return String(repeating: "0", count: 4 - s.count) + s
    }

    static func value(_ line: String, _ key: String) -> String? {
        guard line.hasPrefix(key + ":") else { return nil }
        return String(line.dropFirst(key.count + 1)).linuxTrimmed()
    }

    static func number(_ text: String, line: String) throws(LinuxDriverError) -> UInt16 {
        let t = text.linuxTrimmed()
        guard t.count == 4, let n = UInt16(t, radix: 16) else {
            throw .unparsable(source: "efibootmgr", reason: "'\(t)' is not a 4-digit boot number in '\(line)'")
        }
        return n
    }

    /// `BootXXXX* LABEL<TAB>DEVICE-PATH` (`*` = active, a space = inactive; the tab and path only with -v or ≥ 18).
    static func bootEntry(_ line: String) throws(LinuxDriverError) -> LinuxEFIBootEntry? {
        let chars = Array(line)
        guard line.hasPrefix("Boot"), chars.count >= 8, chars[4..<8].allSatisfy(\.isHexDigit) else { return nil }
        guard chars.count >= 10, chars[8] == "*" || chars[8] == " ", chars[9] == " " else {
            throw .unparsable(source: "efibootmgr", reason: "boot entry line '\(line)'")
        }
        let n = UInt16(String(chars[4..<8]), radix: 16)!
        let rest = String(chars[10...])
        let parts = rest.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
        let label = String(parts[0]).linuxTrimmed()
        let path = parts.count > 1 ? String(parts[1]).linuxTrimmed() : nil
        return LinuxEFIBootEntry(number: n, label: label, active: chars[8] == "*", devicePath: path?.isEmpty == true ? nil : path)
    }
}

/// Prefixed: ShoalAgent is shared with another part of the agent.
extension String {
    func linuxTrimmed() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
