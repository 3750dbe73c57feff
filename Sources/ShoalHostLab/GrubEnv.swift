import Foundation

/// A real GRUB environment block (the 1024-byte `grubenv` file), edited with `grub-editenv`
/// exactly as `grub-reboot` and `grub-set-default` edit it on a real host.
///
/// ```swift
/// let env = try GrubEnv.create(at: hostDir + "/grubenv")
/// try env.setDefault("base")        // grub-set-default base  → saved_entry=base
/// try env.setOneShot("staging")     // grub-reboot staging    → next_entry=staging
/// ```
public struct GrubEnv: Sendable, Hashable {
    /// The block's file.
    public var path: String

    /// The variable `grub-reboot` sets: the entry to boot once.
    public static let nextEntry = "next_entry"
    /// The variable `grub-set-default` sets: the entry to boot from then on.
    public static let savedEntry = "saved_entry"

    /// The block at `path` (it must exist; see `create(at:)`).
    public init(path: String) { self.path = path }

    /// Creates an empty block at `path` (`grub-editenv FILE create`), replacing an existing one.
    public static func create(at path: String) throws(HostLabError) -> GrubEnv {
        if access(path, F_OK) == 0 { guard unlink(path) == 0 else { throw .errno("unlink \(path)") } }
        try HostTool.run(["grub-editenv", path, "create"])
        return GrubEnv(path: path)
    }

    /// All variables in the block (`grub-editenv FILE list`).
    /// - Throws: `HostLabError.badBootConfiguration` when the file is missing or not a block.
    public func variables() throws(HostLabError) -> [String: String] {
        guard access(path, R_OK) == 0 else { throw .badBootConfiguration("no GRUB environment block at \(path)") }
        let output = try HostTool.run(["grub-editenv", path, "list"], checked: false)
        guard output.status == 0 else {
            throw .badBootConfiguration("grub-editenv cannot read \(path): \(output.stderr)")
        }
        var result: [String: String] = [:]
        for line in output.text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            result[String(line[..<equals])] = String(line[line.index(after: equals)...])
        }
        return result
    }

    /// One variable, `nil` when unset or empty (GRUB's `[ "${name}" ]` treats both alike).
    public func value(_ name: String) throws(HostLabError) -> String? {
        guard let value = try variables()[name], !value.isEmpty else { return nil }
        return value
    }

    /// Sets variables (`grub-editenv FILE set NAME=VALUE…`).
    /// - Throws: `HostLabError.badBootConfiguration` for a name or value the block cannot hold
    ///   (a newline, an `=` in the name), `.toolFailed` (for example when the block is full).
    public func set(_ variables: [String: String]) throws(HostLabError) {
        for (name, value) in variables {
            guard !name.isEmpty, !name.contains("="), !(name + value).contains("\n") else {
                throw .badBootConfiguration("GRUB variable \(name)=\(value)")
            }
        }
        try HostTool.run(["grub-editenv", path, "set"] + variables.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" })
    }

    /// Sets one variable.
    public func set(_ name: String, to value: String) throws(HostLabError) { try set([name: value]) }

    /// Removes variables (`grub-editenv FILE unset NAME…`).
    public func unset(_ names: String...) throws(HostLabError) {
        try HostTool.run(["grub-editenv", path, "unset"] + names)
    }

    /// Boots `entry` once at the next boot, as `grub-reboot ENTRY` does.
    public func setOneShot(_ entry: String) throws(HostLabError) { try set(GrubEnv.nextEntry, to: entry) }

    /// Makes `entry` the default from now on, as `grub-set-default ENTRY` does: only
    /// `saved_entry` changes, so a pending one-shot still wins once.
    public func setDefault(_ entry: String) throws(HostLabError) { try set(GrubEnv.savedEntry, to: entry) }
}
