import Foundation

@testable import ShoalAgent

/// A host set up for one kind of operation, and the request to run on it.
struct Scenario: Sendable, CustomStringConvertible {
    var name: String
    var request: OperationRequest
    var setup: @Sendable (inout FakeHost.State) -> Void
    /// Where a successful run leaves the host.
    var expectedSystem: HostSystem
    /// What the original disk holds after a successful run.
    var expectedOriginal: FakeContent

    var description: String { name }

    func makeHost() -> FakeHost { FakeHost(setup) }

    static let parameters = OperationParameters(
        stagingBundle: "staging-b", targetBundle: "target-b", maintenanceBundle: "maint-b",
        monitoring: .active(intervalSeconds: 5), captureName: "golden", healthTimeoutSeconds: 120,
        healthPollSeconds: 10, maintenanceTimeoutSeconds: 300, bootAttempts: 3)

    static func request(_ kind: OperationKind, id: String? = nil) -> OperationRequest {
        OperationRequest(id: id ?? "op-\(kind)", kind: kind, parameters: parameters)
    }

    /// A host already converted to osB (profile stored, rendered, target the default).
    @Sendable static func converted(_ s: inout FakeHost.State) {
        s.content[.original] = .os("osB")
        s.rendered[.original] = s.identity
        s.storedProfile = ProfileReference(location: "staging:/var/lib/shoal/profile.json", checksum: FakeHost.checksum(s.identity))
    }

    /// A host left in the staging OS by a failed conversion (original disk wiped).
    @Sendable static func leftInStaging(_ s: inout FakeHost.State) {
        s.content[.original] = .wiped
        s.defaultEntry = .staging
        s.booted = .staging
        s.bootHistory = [.staging]
        s.rendered[.staging] = s.identity
        s.storedProfile = ProfileReference(location: "staging:/var/lib/shoal/profile.json", checksum: FakeHost.checksum(s.identity))
    }

    static let all: [Scenario] = [
        Scenario(name: "convert", request: request(.convert), setup: { _ in }, expectedSystem: .target, expectedOriginal: .os("osB")),
        Scenario(
            name: "reinstall from the target", request: request(.reinstall), setup: converted, expectedSystem: .target,
            expectedOriginal: .os("osB")),
        Scenario(
            name: "reinstall from staging", request: request(.reinstall), setup: leftInStaging, expectedSystem: .target,
            expectedOriginal: .os("osB")),
        Scenario(
            name: "revert from the target", request: request(.revert), setup: converted, expectedSystem: .target,
            expectedOriginal: .os("osA-copy")),
        Scenario(
            name: "revert from staging", request: request(.revert), setup: leftInStaging, expectedSystem: .target,
            expectedOriginal: .os("osA-copy")),
        Scenario(name: "maintenance", request: request(.maintenance), setup: { _ in }, expectedSystem: .base, expectedOriginal: .os("osA")),
        Scenario(name: "capture", request: request(.capture), setup: { _ in }, expectedSystem: .base, expectedOriginal: .os("osA")),
    ]
}

/// Runs a scenario with one power loss at `kill` (or none), on a fresh host and store.
func run(_ scenario: Scenario, killAt kill: KillPoint? = nil, configure: (inout FakeHost.State) -> Void = { _ in })
    async throws -> (record: OperationRecord, host: FakeHost, store: KillingStore)
{
    try await run(scenario, killAt: kill.map { [$0] } ?? [], configure: configure)
}

/// Runs a scenario with a power loss at each of `kills` in turn, on a fresh host and store.
func run(_ scenario: Scenario, killAt kills: [KillPoint], configure: (inout FakeHost.State) -> Void = { _ in })
    async throws -> (record: OperationRecord, host: FakeHost, store: KillingStore)
{
    let host = scenario.makeHost()
    let clock = ManualClock()
    host.with { $0.clock = clock }
    host.with(configure)
    let store = KillingStore(try FileOperationStore(directory: temporaryStoreDirectory()), host: host, killAt: kills)
    let agent = Agent(driver: host, store: store, clock: clock)
    _ = try await agent.accept(scenario.request)
    let record = try await driveToEnd(host, store: store, clock: clock)
    return (record, host, store)
}

/// The clock of a host made by ``run(_:killAt:configure:)``.
extension FakeHost {
    var manualClock: ManualClock { with { $0.clock! } }
}
