import Foundation
import Testing

@testable import ShoalHostLab

@Suite struct HostToolTests {
    @Test func capturesOutputAndFeedsInput() throws {
        let output = try HostTool.run(["busybox", "cat"], input: Array("line 1\nline 2\n".utf8))
        #expect(output.status == 0 && output.text == "line 1\nline 2\n")
        // Binary and large output does not block on a pipe.
        let big = try HostTool.run(["busybox", "head", "-c", "300000", "/dev/zero"])
        #expect(big.stdout.count == 300_000 && big.stdout.allSatisfy { $0 == 0 })
    }

    @Test func failuresCarryTheToolsStderr() {
        #expect {
            try HostTool.run(["busybox", "sh", "-c", "echo 'disk on fire' >&2; exit 3"])
        } throws: { error in
            guard case .toolFailed(let command, let status, let stderr) = error as? HostLabError else { return false }
            return command.hasPrefix("busybox sh -c") && status == 3 && stderr == "disk on fire\n"
                && (error as! HostLabError).description.hasSuffix("failed (exit 3): disk on fire")
        }
        let unchecked = try? HostTool.run(["busybox", "false"], checked: false)
        #expect(unchecked?.status == 1)
    }

    @Test func missingToolsNameTheirPackage() {
        #expect(throws: HostLabError.toolMissing(tool: "no-such-tool-xyz", package: "no-such-tool-xyz")) {
            try HostTool.run(["no-such-tool-xyz"])
        }
        #expect(HostLabError.toolMissing(tool: "sfdisk", package: "fdisk").description == "sfdisk is not installed (apt-get install fdisk)")
    }

    @Test func childrenGetAnEmptySignalMask() async throws {
        // Run from a concurrency thread, where most signals are blocked: the tool must not inherit that.
        let status = try await Task.detached {
            try HostTool.run(["busybox", "grep", "^SigBlk", "/proc/self/status"]).text
        }.value
        #expect(status.trimmingCharacters(in: .whitespacesAndNewlines) == "SigBlk:\t0000000000000000")
    }
}
