import Foundation
import Testing

@testable import ShoalAgent

struct FileOperationStoreTests {
    func record(_ id: String = "op-1") throws -> OperationRecord {
        let request = Scenario.request(.convert, id: id)
        return OperationRecord(
            request: request, startedIn: .original, plan: try OperationPlan.steps(for: request, startingIn: .original),
            at: Date(timeIntervalSince1970: 1_750_000_000.25))
    }

    @Test func savesAndLoadsTheSameRecord() throws {
        let store = try FileOperationStore(directory: temporaryStoreDirectory())
        #expect(try store.load() == nil)
        var r = try record()
        r.start(0, at: Date(timeIntervalSince1970: 1_750_000_001.5))
        r.profile = ProfileReference(location: "p", checksum: "c")
        _ = try store.begin(r)
        #expect(try store.load() == r)
        r.complete(0, "ok", at: Date(timeIntervalSince1970: 1_750_000_002.125))
        try store.save(r)
        #expect(try store.load() == r)
        // Written by rename: no temporary file is left behind.
        let files = try FileManager.default.contentsOfDirectory(atPath: store.directory).sorted()
        #expect(files == ["current.json", "history", "lock"])
        // Plain JSON an operator can read.
        let text = try String(contentsOfFile: store.currentPath, encoding: .utf8)
        #expect(text.contains("\"kind\" : \"convert\"") && text.contains("\"status\" : \"done\""))
    }

    @Test(arguments: [
        ("garbage", "{ this is not json"),
        ("empty", ""),
        ("truncated", "{\"format\": 1, \"id\": \"op-1\""),
        ("other format", "FORMAT2"),
    ])
    func corruptStateIsAnErrorAndIsLeftInPlace(_ name: String, _ content: String) async throws {
        let dir = temporaryStoreDirectory()
        let store = try FileOperationStore(directory: dir)
        var text = content
        if content == "FORMAT2" {
            var r = try record()
            r.format = 2
            _ = try store.begin(r)
            text = try String(contentsOfFile: store.currentPath, encoding: .utf8)
        }
        try text.write(toFile: store.currentPath, atomically: false, encoding: .utf8)

        #expect { try store.load() } throws: { error in
            guard case .corruptState(let path, let detail) = error as? AgentError else { return false }
            return path == store.currentPath && !detail.isEmpty
        }
        let agent = Agent(driver: FakeHost(), store: store, clock: ManualClock())
        await #expect(throws: AgentError.self) { try await agent.resume() }
        await #expect(throws: AgentError.self) { try await agent.accept(Scenario.request(.maintenance, id: "new")) }
        do {
            _ = try await agent.resume()
        } catch {
            #expect(error.code == 600)
            #expect(error.description.contains("corrupt") && error.description.contains(store.currentPath))
        }
        // Never reset: the bytes are as they were.
        #expect(try String(contentsOfFile: store.currentPath, encoding: .utf8) == text)
    }

    @Test func beginIsTheHostLock() throws {
        let store = try FileOperationStore(directory: temporaryStoreDirectory())
        let first = try record("a")
        #expect(try store.begin(first) == first)
        #expect(throws: AgentError.operationInProgress(id: "a", kind: .convert, step: "preflight#1")) {
            try store.begin(try record("b"))
        }
        // A second store on the same directory (another agent process) sees the same lock.
        let other = try FileOperationStore(directory: store.directory)
        #expect(throws: AgentError.self) { try other.begin(try record("b")) }
        #expect(try other.begin(try record("a")) == first)
    }

    @Test func historyNamesAreSafeForAnyID() throws {
        var r = try record("../../etc/passwd rollout/7")
        r.conclude(in: .base, at: Date(timeIntervalSince1970: 1_750_000_100))
        let name = FileOperationStore.historyName(r)
        #expect(!name.contains("/"))
        #expect(name.hasSuffix(".json"))
    }
}
