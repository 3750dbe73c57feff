import Foundation
import ShoalLab
import ShoalTopology
import Testing

/// The namespace lab, for real: root only. Serialized so the shaping measurement has the
/// machine to itself (as far as this suite goes).
@Suite(.serialized, .enabled(if: NetworkLab.isSupported, "needs root and network namespaces"))
struct NetworkLabTests {
    /// This run's namespaces still listed by `ip netns list`.
    func leftovers(_ runID: String) -> [String] {
        NetworkLab.listNamespaces().filter { $0.hasPrefix(LabPlan.namespacePrefix + runID + "-") }
    }

    @Test func smallTopologyReachabilityShapingAndTeardown() throws {
        let topology = try LabFixtures.small()
        let started = Date()
        let lab = try NetworkLab.build(topology: topology)
        let buildSeconds = Date().timeIntervalSince(started)
        let runID = lab.runID
        var tornDown = false
        defer { if !tornDown { lab.teardown() } }
        print("small.yaml built in \(String(format: "%.2f", buildSeconds)) s (\(lab.namespaces.count) namespaces)")

        #expect(lab.mode == .netns)
        #expect(Set(leftovers(runID)) == Set(lab.namespaces))
        #expect(lab.originAddress == "10.77.0.2")
        #expect(lab.address(of: "seed") == lab.originAddress)
        #expect(lab.address(of: "b2") == "10.77.2.3")
        #expect(lab.namespace(of: "a1") == "shoal-lab-\(runID)-host-a1")
        #expect(lab.namespace(of: "seed") == lab.originNamespace)

        // Every host reaches every other host, every site's router and the origin; the origin
        // reaches every host.
        let everyone = topology.hosts.map { lab.address(of: $0.name) } + [lab.originAddress]
        let routers = topology.sites.map { lab.plan.routerAddresses[$0.name]! }
        for host in topology.hosts {
            let targets = everyone.filter { $0 != lab.address(of: host.name) } + routers
            let answers = try lab.ping(from: host.name, to: targets)
            for target in targets { #expect(answers[target] == true, "\(host.name) → \(target)") }
        }
        let fromOrigin = try lab.ping(from: "seed", to: topology.hosts.map { lab.address(of: $0.name) })
        #expect(fromOrigin.values.allSatisfy { $0 }, "origin → hosts: \(fromOrigin)")

        // HTB classes carry the topology's rates (read back from tc).
        let readback = try lab.shapingReadback()
        #expect(readback.count == 2 * lab.plan.links.count)
        for end in readback { #expect(end.ok, "\(end)") }
        let wanA = try runTool(["tc", "-n", lab.routerNamespace(site: "a")!, "class", "show", "dev", "wan"])
        #expect(wanA.contains("rate 100Mbit ceil 100Mbit burst 25000b cburst 25000b"), "\(wanA)")
        let portA1 = try runTool(["tc", "-n", lab.routerNamespace(site: "a")!, "class", "show", "dev", "p1"])
        #expect(portA1.contains("rate 400Mbit ceil 400Mbit"), "\(portA1)")
        let originUp = try runTool(["tc", "-n", lab.originNamespace, "class", "show", "dev", "eth0"])
        #expect(originUp.contains("rate 200Mbit ceil 200Mbit"), "\(originUp)")

        // Processes in a namespace: terminate by PID, and teardown stops what is left.
        let sleeper = try lab.spawn(in: "a2", executable: "sleep", arguments: ["30"])
        let shell = try lab.spawn(in: "seed", executable: "sh", arguments: ["-c", "sleep 30 & wait"])
        #expect(sleeper.isRunning && shell.isRunning)
        sleeper.terminate(grace: 2)
        #expect(sleeper.termination == .signaled(SIGTERM))
        #expect(throws: LabError.self) { try lab.spawn(in: "nobody", executable: "true") }

        lab.teardown()
        tornDown = true
        #expect(!shell.isRunning)
        #expect(leftovers(runID).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: NetworkLab.stateDirectory + "/\(runID).owner"))
        lab.teardown()   // idempotent
        #expect(throws: LabError.self) { try lab.spawn(in: "a1", executable: "true") }
    }

    @Test(arguments: ["forwarding", "links", "shaping", "verify"])
    func failedBuildLeavesNothing(step: String) throws {
        let runID = "fail\(getpid())" + step.prefix(4)
        #expect(throws: LabError.self) {
            var options = NetworkLab.Options()
            options.beforeStep = { name in
                if name == step { throw LabError.other("injected failure before \(name)") }
            }
            _ = try NetworkLab.build(topology: LabFixtures.small(), runID: runID, options: options)
        }
        #expect(leftovers(runID).isEmpty)
        #expect(!FileManager.default.fileExists(atPath: NetworkLab.stateDirectory + "/\(runID).owner"))
    }

    @Test func sweepRemovesOnlyDeadOwnersLabs() throws {
        // A PID that is certainly dead: a child that has exited and been reaped.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let deadPID = child.processIdentifier

        let deadByName = "\(deadPID)x00dead"                 // owner in the run ID
        let deadByFile = "sweep\(getpid())dead"              // owner only in the owner file
        let alive = "\(getpid())x0a11fe"                     // our own PID: must survive
        let names = [deadByName, deadByFile, alive].map { LabPlan.namespacePrefix + $0 + "-core" }
        defer { for name in names { _ = try? runTool(["ip", "netns", "del", name]) } }
        for name in names { _ = try runTool(["ip", "netns", "add", name]) }
        try FileManager.default.createDirectory(atPath: NetworkLab.stateDirectory, withIntermediateDirectories: true)
        try "pid \(deadPID)\nstart 1\n".write(toFile: NetworkLab.stateDirectory + "/\(deadByFile).owner", atomically: true, encoding: .utf8)

        let removed = NetworkLab.sweepStale()
        #expect(removed.contains(names[0]) && removed.contains(names[1]))
        let now = NetworkLab.listNamespaces()
        #expect(!now.contains(names[0]) && !now.contains(names[1]))
        #expect(now.contains(names[2]))
        #expect(!FileManager.default.fileExists(atPath: NetworkLab.stateDirectory + "/\(deadByFile).owner"))
    }

    @Test func teardownAllStopsEveryLiveLab() throws {
        let lab = try NetworkLab.build(topology: LabFixtures.twoSites20Mbit())
        defer { lab.teardown() }
        let sleeper = try lab.spawn(in: "x1", executable: "sleep", arguments: ["30"])
        #expect(leftovers(lab.runID).count == lab.namespaces.count)
        NetworkLab.teardownAll()   // what a SIGINT handler of `shoal lab run` calls
        #expect(!sleeper.isRunning)
        #expect(leftovers(lab.runID).isEmpty)
        #expect(throws: LabError.self) { try lab.spawn(in: "x1", executable: "true") }
    }

    @Test func shapedWANThroughputAndCounters() throws {
        let topology = try LabFixtures.twoSites20Mbit()
        let lab = try NetworkLab.build(topology: topology)
        defer { lab.teardown() }
        let dir = try LabFixtures.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }

        let bytes = 4_000_000
        let port = 5201
        let result = dir.appendingPathComponent("receiver.out").path
        let receiverLog = dir.appendingPathComponent("receiver.err").path
        let senderLog = dir.appendingPathComponent("sender.err").path
        let receiver = try lab.spawn(in: "y1", executable: "python3", arguments: ["-c", """
            import socket, sys, time
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(20)
            c, _ = s.accept(); c.settimeout(20); n = 0; first = None
            while True:
                d = c.recv(1 << 16)
                if not d: break
                if first is None: first = time.monotonic()
                n += len(d)
            print(n, time.monotonic() - first, flush=True)
            """, lab.address(of: "y1"), "\(port)"], environment: nil, stdout: result, stderr: receiverLog)
        try lab.resetCounters()
        let sender = try lab.spawn(in: "x1", executable: "python3", arguments: ["-c", """
            import socket, sys, time
            deadline = time.monotonic() + 10
            while True:
                try:
                    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2); break
                except OSError:
                    if time.monotonic() > deadline: raise
                    time.sleep(0.05)
            s.settimeout(20); s.sendall(b"\\x5a" * int(sys.argv[3])); s.shutdown(socket.SHUT_WR); s.recv(1); s.close()
            """, lab.address(of: "y1"), "\(port)", "\(bytes)"], environment: nil, stdout: nil, stderr: senderLog)
        #expect(sender.waitUntilExit(timeout: 25), "sender still running")
        #expect(receiver.waitUntilExit(timeout: 5), "receiver still running")
        #expect(sender.exitStatus == 0, "sender: \((try? String(contentsOfFile: senderLog, encoding: .utf8)) ?? "")")
        #expect(receiver.exitStatus == 0, "receiver: \((try? String(contentsOfFile: receiverLog, encoding: .utf8)) ?? "")")

        let words = try String(contentsOfFile: result, encoding: .utf8).split(whereSeparator: \.isWhitespace)
        try #require(words.count == 2)
        let received = try #require(Int(words[0]))
        let seconds = try #require(Double(words[1]))
        #expect(received == bytes)
        let goodput = Double(received) * 8 / seconds
        let wanRate = Double(topology.site(named: "x")!.wanUp.bitsPerSecond)
        let ratio = goodput / wanRate
        print(String(format: "shaped WAN: %d bytes in %.3f s = %.2f Mbit/s payload, %.1f%% of the 20 Mbit/s WAN rate", received, seconds, goodput / 1e6, ratio * 100))
        #expect(ratio >= 0.60 && ratio <= 1.10, "goodput \(goodput / 1e6) Mbit/s over a 20 Mbit/s WAN")

        let x = try lab.wanCounters(site: "x"), y = try lab.wanCounters(site: "y")
        print("WAN counters: x out \(x.outBytes) in \(x.inBytes); y in \(y.inBytes) out \(y.outBytes); origin egress \(try lab.originEgressBytes)")
        for (what, value) in [("site x out", x.outBytes), ("site y in", y.inBytes)] {
            let ratio = Double(value) / Double(bytes)
            #expect(ratio >= 0.85 && ratio <= 1.15, "\(what): \(value) bytes for \(bytes) sent")
        }
        // The reverse direction carries only ACKs, and the origin took no part.
        #expect(x.inBytes < UInt64(bytes / 10) && y.outBytes < UInt64(bytes / 10))
        #expect(try lab.originEgressBytes < 10_000)
    }
}

/// Runs a command (looked up in /usr/sbin, /usr/bin, /sbin, /bin) and returns its stdout; throws on failure.
@discardableResult
func runTool(_ argv: [String]) throws -> String {
    let candidates = ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].map { $0 + argv[0] }
    let path = candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? argv[0]
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = Array(argv.dropFirst())
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw LabError.other("\(argv.joined(separator: " ")) failed") }
    return String(decoding: data, as: UTF8.self)
}
