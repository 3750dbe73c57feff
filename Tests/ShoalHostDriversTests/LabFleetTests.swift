import Foundation
import ShoalAgent
import ShoalHostDrivers
import ShoalHostLab
import ShoalPeer
import ShoalTestKit
import ShoalWire
import Testing

/// The lab fleet of `shoal lab run --convert`: hosts made from the embedded default images with
/// an empty staging partition; the peer's agent writes the staging bundle there when the first
/// conversion is ordered, then converts, keeping the host's identity.
@Suite(.serialized)
struct LabFleetTests {
    static func waitForOutcome(_ agent: PeerAgent, id: String, timeout: Double = 90) async throws -> OperationProgress {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let p = agent.progress, p.id == id, p.isFinished { return p }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw CLIFailure("no outcome for \(id) within \(timeout) s (last: \(String(describing: agent.progress)))")
    }

    struct CLIFailure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    @Test func orderedConvertWritesTheStagingBundleFirstAndKeepsTheIdentity() async throws {
        let dir = TemporaryDirectory("lab-fleet")
        defer { dir.remove() }
        let images = try LabFleet.makeDefaultImages(in: dir.file("images"))
        let nic = LabFleet.NIC.lab(index: 7, address: "10.1.0.17")
        #expect(nic.mac == "52:54:00:00:00:07" && nic.gateway == "10.1.0.1")
        let host = try LabFleet.createHost(at: dir.file("a1"), name: "a1", baseImage: images.baseImage, nic: nic)
        let before = try LabFleet.identity(of: host, nic: nic)
        #expect(before.hostname == "a1")
        #expect(before.os == "Shoal Lab Alpha 1")
        #expect(before.addressConfiguredIn == ["/etc/network/interfaces"])
        #expect(before.sshHostKeys.count == 4)

        let driver = LabDriver(host: host)
        let alpha = try driver.importBundle(from: images.baseBundle)
        let beta = try driver.importBundle(from: images.targetBundle)
        #expect(driver.installedStagingBundle == nil)

        let agent = PeerAgent(driver: .lab(hostDirectory: host.directory, writeMethod: .imageFile), stateDirectory: nil)
        let order = OperationOrder(id: "conv-1", kind: "convert", stagingBundle: alpha, targetBundle: beta,
                                   healthTimeoutSeconds: 30, healthPollSeconds: 0.5)
        #expect(agent.take(order))
        let outcome = try await Self.waitForOutcome(agent, id: "conv-1")
        #expect(outcome.status == .succeeded, "\(outcome)")
        #expect(driver.installedStagingBundle == alpha)
        let after = try LabFleet.identity(of: host, nic: nic)
        #expect(after.os == "Shoal Lab Beta 1")
        #expect(after.entry == "target")
        #expect(LabFleet.differences(before: before, after: after) == [])
        #expect(after.addressConfiguredIn.contains("/etc/netplan/90-shoal.yaml"))
        // The staging partition holds the base-OS copy the bundle unpacks to.
        #expect(try host.osRelease("staging").prettyName == "Shoal Lab Alpha 1")
    }

    @Test func aStagingBundleNotInTheStoreIsRefusedWithTheStagingPartitionUntouched() async throws {
        let dir = TemporaryDirectory("lab-fleet-missing")
        defer { dir.remove() }
        let images = try LabFleet.makeDefaultImages(in: dir.file("images"))
        let nic = LabFleet.NIC.lab(index: 8, address: "10.1.0.18")
        let host = try LabFleet.createHost(at: dir.file("a2"), name: "a2", baseImage: images.baseImage, nic: nic)
        let driver = LabDriver(host: host)
        let beta = try driver.importBundle(from: images.targetBundle)
        let disk1 = try Data(contentsOf: URL(fileURLWithPath: host.directory + "/disk1.img"))
        let agent = PeerAgent(driver: .lab(hostDirectory: host.directory, writeMethod: .imageFile), stateDirectory: nil)
        let missing = String(repeating: "ab", count: 32)
        #expect(agent.take(OperationOrder(id: "conv-2", kind: "convert", stagingBundle: missing, targetBundle: beta)))
        let outcome = try await Self.waitForOutcome(agent, id: "conv-2")
        #expect(outcome.status == .refused, "\(outcome)")
        #expect(outcome.code == 402)
        #expect(outcome.message?.contains("staging bundle") == true)
        #expect(driver.installedStagingBundle == nil)
        #expect(try Data(contentsOf: URL(fileURLWithPath: host.directory + "/disk1.img")) == disk1)
        #expect(try host.bootedOS().entry == "base")
        #expect(try host.osRelease("base").prettyName == "Shoal Lab Alpha 1")
    }
}
