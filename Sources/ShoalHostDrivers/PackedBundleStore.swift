#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ShoalAgent
import ShoalStorage

/// A host's packed store as both drivers keep it: whole bundle files named `<bundle id>.shoal`
/// in one directory.
public struct PackedBundleStore: Sendable {
    public let directory: String

    public init(directory: String) { self.directory = directory }

    public func path(_ id: String) -> String { directory + "/\(id).shoal" }

    /// Puts a bundle file into the store (a hard link when possible, else a copy) after checking
    /// it opens as a bundle. Returns its id.
    @discardableResult
    public func importBundle(from source: String) throws -> String {
        let id = try BundleFile(path: source).bundleID.hex
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let destination = path(id)
        if FileManager.default.fileExists(atPath: destination) { return id }
        if link(source, destination) != 0 { try FileManager.default.copyItem(atPath: source, toPath: destination) }
        return id
    }

    /// The state of one bundle: missing, corrupt (structure, id, a chunk or the image digest) or
    /// verified.
    public func state(_ id: String) -> BundleState {
        let file = path(id)
        guard FileManager.default.fileExists(atPath: file) else { return .missing }
        do {
            let bundle = try BundleFile(path: file)
            guard bundle.bundleID.hex == id else { return .corrupt("\(file) holds bundle \(bundle.bundleID.hex), not \(id)") }
            _ = try BundleVerifier().verify(bundle)
            return .verified(imageBytes: bundle.manifest.imageSize)
        } catch {
            return .corrupt("\(error)")
        }
    }
}

/// A driver's small JSON state file: read (a missing or unreadable file gives `fallback`) and
/// written atomically.
enum DriverStateFile {
    static func load<State: Decodable>(_ path: String, fallback: State) -> State {
        guard let data = FileManager.default.contents(atPath: path), let state = try? JSONDecoder().decode(State.self, from: data) else {
            return fallback
        }
        return state
    }

    static func save<State: Encodable>(_ state: State, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try LabDriver.writeAtomically(Array(try encoder.encode(state)), to: path)
    }
}
