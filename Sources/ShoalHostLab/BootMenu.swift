#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation

/// The lab's boot menu: which GRUB entry name boots which partition of which disk — the part of
/// `grub.cfg` the firmware needs. Stored as a small text file (see docs/HOSTLAB.md):
///
/// ```
/// # Shoal lab boot menu
/// default base
/// entry base        disk0.img root
/// entry staging     disk1.img staging
/// entry target      disk0.img root
/// ```
/// Disk paths are relative to the menu file's directory unless absolute; the partition is a GPT
/// partition name (or number). Entry order is kept.
public struct BootMenu: Sendable, Hashable {
    /// One menu entry.
    public struct Entry: Sendable, Hashable, Codable {
        /// The name `next_entry`/`saved_entry` refer to.
        public var name: String
        /// The disk image, relative to the host directory unless absolute.
        public var disk: String
        /// The partition's GPT name (or number).
        public var partition: String

        public init(name: String, disk: String, partition: String) {
            self.name = name
            self.disk = disk
            self.partition = partition
        }
    }

    /// The entry booted when the environment block names none (GRUB's `default`, entry 0).
    public var defaultEntry: String
    public var entries: [Entry]

    public init(defaultEntry: String, entries: [Entry]) {
        self.defaultEntry = defaultEntry
        self.entries = entries
    }

    /// The entry named `name`.
    public func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }

    /// Adds an entry or points an existing one elsewhere (as regenerating grub.cfg would).
    public mutating func setEntry(_ entry: Entry) {
        if let index = entries.firstIndex(where: { $0.name == entry.name }) {
            entries[index] = entry
        } else {
            entries.append(entry)
        }
    }

    /// Parses the menu file's text.
    /// - Throws: `HostLabError.badBootConfiguration` naming the bad line.
    public init(parsing text: String) throws(HostLabError) {
        var defaultEntry: String?
        var entries: [Entry] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let words = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = words.first, !keyword.hasPrefix("#") else { continue }
            switch (keyword, words.count) {
            case ("default", 2):
                defaultEntry = words[1]
            case ("entry", 4):
                guard !entries.contains(where: { $0.name == words[1] }) else {
                    throw .badBootConfiguration("boot menu line \(index + 1): entry \(words[1]) appears twice")
                }
                entries.append(Entry(name: words[1], disk: words[2], partition: words[3]))
            default:
                throw .badBootConfiguration("boot menu line \(index + 1): expected \"default NAME\" or \"entry NAME DISK PARTITION\", got \"\(rawLine)\"")
            }
        }
        guard let defaultEntry else { throw .badBootConfiguration("boot menu has no \"default\" line") }
        guard entries.contains(where: { $0.name == defaultEntry }) else {
            throw .badBootConfiguration("boot menu default \(defaultEntry) is not an entry")
        }
        self.init(defaultEntry: defaultEntry, entries: entries)
    }

    /// The menu file's text.
    public var text: String {
        var lines = ["# Shoal lab boot menu: entry NAME DISK PARTITION (see docs/HOSTLAB.md)", "default \(defaultEntry)"]
        for entry in entries { lines.append("entry \(entry.name) \(entry.disk) \(entry.partition)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads the menu file at `path`.
    public static func load(_ path: String) throws(HostLabError) -> BootMenu {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .badBootConfiguration("no boot menu at \(path)")
        }
        return try BootMenu(parsing: String(decoding: data, as: UTF8.self))
    }

    /// Writes the menu file at `path` (atomically: a new file renamed over the old one).
    /// - Throws: `HostLabError.badBootConfiguration` for names that would not read back.
    public func save(to path: String) throws(HostLabError) {
        for entry in entries {
            for word in [entry.name, entry.disk, entry.partition]
            where word.isEmpty || word.hasPrefix("#") || word.contains(where: { $0.isWhitespace }) {
                throw .badBootConfiguration("boot menu entry \(entry.name): unusable word \"\(word)\"")
            }
        }
        guard entries.contains(where: { $0.name == defaultEntry }) else {
            throw .badBootConfiguration("boot menu default \(defaultEntry) is not an entry")
        }
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw .badBootConfiguration("cannot write boot menu \(path): \(error)")
        }
    }
}
