import Foundation
import ShoalTopology

/// Topologies and scratch space for the lab tests.
enum LabFixtures {
    /// `topology/small.yaml` of this repository.
    static func small() throws -> Topology {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("topology/small.yaml")
        return try Topology.parse(yaml: String(contentsOf: url, encoding: .utf8))
    }

    /// Two sites behind 20 Mbit/s WAN links, one host each, for the shaping test.
    static func twoSites20Mbit() throws -> Topology {
        try Topology.parse(yaml: """
        origin: { name: origin, uplink: 100Mbit/s, seed: seed }
        sites:
          - { name: x, wan: 20Mbit/s, host_link: 200Mbit/s }
          - { name: y, wan: 20Mbit/s, host_link: 200Mbit/s }
        hosts:
          - { name: x1, site: x }
          - { name: y1, site: y }
        """)
    }

    /// A fresh scratch directory (removed by the caller).
    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-lab-test-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
