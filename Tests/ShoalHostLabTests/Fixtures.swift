import Foundation
import ShoalTestKit

@testable import ShoalHostLab

let mib: UInt64 = 1 << 20

enum Fixtures {
    /// A busybox OS tree named `id` turned into an ext4 image of `size` bytes; returns its path.
    static func osImage(
        in dir: TemporaryDirectory, id: String, name: String? = nil, size: UInt64 = 16 * mib,
        stacks: [NetworkStack] = [], keys: [SSHHostKeyType] = [], applets: [String]? = ["sh", "init", "ls", "cat"]
    ) throws -> String {
        let spec = OSTreeSpec(
            release: OSRelease(id: id, name: name ?? "Shoal Lab \(id)", versionID: "1", prettyName: "Shoal Lab \(id) 1"),
            hostname: "host-\(id)", networkStacks: stacks, sshHostKeys: keys, applets: applets)
        let tree = try OSTree.build(at: dir.file("tree-\(id)"), spec: spec)
        let image = dir.file("\(id).ext4")
        try tree.makeImage(at: image, size: size)
        return image
    }
}
