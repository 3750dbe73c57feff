import ShoalTestKit
import ShoalSwarm
import ShoalWire
import Testing

/// The lab's 3 × 4 topology scaled down: origin uplink 2 blocks per round, each site's WAN 1 block
/// per round each way, hosts 2 blocks per round each way (100 / 50 / 100 Mbit/s), 64 chunks of
/// 2.2–4 blocks (never a whole number of blocks).
enum Swarm3x4 {
    static let block = 1024

    static func config(corrupting: Set<String> = [], seed: UInt64 = 0x5EED_5A4A) -> SwarmSimulation.Config {
        var rng = SplitMix64(seed: seed)
        let lengths = (0..<64).map { _ in Int.random(in: 2253...4095, using: &rng) }
        return SwarmSimulation.Config(
            sites: [
                "a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2", "b3", "b4"], "c": ["c1", "c2", "c3", "c4"],
            ],
            chunkLengths: lengths, blockSize: block,
            originUplink: 2 * block, wanIn: block, wanOut: block, hostUp: 2 * block, hostDown: 2 * block,
            depth: 4, corrupting: corrupting)
    }
}

struct SimulationTests {
    @Test func everyChunkCrossesEachWANOnceAndTheOriginSendsOneCopy() {
        let sim = SwarmSimulation(Swarm3x4.config())
        let finished = sim.run()
        print("swarm 3x4, clean: \(sim.summary)")
        #expect(finished, "\(sim.summary)")
        let config = sim.config
        for site in ["a", "b", "c"] {
            #expect(sim.wanInPerChunk[site]! == config.chunkLengths, "site \(site) got a chunk twice or never")
            #expect(sim.wanInBytes[site]! == config.bundleBytes)
        }
        #expect(sim.originEgress == config.bundleBytes)  // ≤ 1.05 × asked; exactly 1 achieved
        #expect(Double(sim.round) <= 1.15 * config.boundRounds, "\(sim.summary)")
        #expect(sim.nodes.allSatisfy { $0.isSeed || $0.picker!.isComplete })
    }

    @Test func hostsStartOnDifferentChunks() {
        let sim = SwarmSimulation(Swarm3x4.config())
        sim.run(rounds: 1)
        // In round 1 only the origin has anything; each ingress host asks it for its own home
        // chunks, so the twelve hosts start on twelve different chunks.
        let first = sim.firstRequests.values.compactMap(\.first)
        #expect(first.count == 12)
        #expect(Set(first).count == 12)
    }

    @Test func aHostKilledMidRunCostsAtMostItsInFlightChunksTwice() {
        let sim = SwarmSimulation(Swarm3x4.config())
        let original = sim.plan
        var atRisk: Set<Int> = []
        let finished = sim.run { sim in
            guard sim.round == 90 else { return }
            // a2's in-flight chunks: bytes of them already crossed into site a (through a2, the
            // ingress host), and no other host of site a holds them yet.
            atRisk = Set((0..<64).filter {
                original.ingressHost(site: "a", chunk: $0) == "a2" && sim.wanInPerChunk["a"]![$0] > 0
                    && sim.holders(of: $0, in: "a").allSatisfy { $0 == "a2" }
            })
            sim.kill("a2")
        }
        let twice = (0..<64).filter { sim.wanInPerChunk["a"]![$0] > sim.config.chunkLengths[$0] }
        print("swarm 3x4, a2 killed at round 90: \(sim.summary); a2's in-flight chunks \(atRisk.sorted()), crossed twice (in part) \(twice)")
        #expect(finished, "\(sim.summary)")
        let lengths = sim.config.chunkLengths
        for site in ["b", "c"] {
            #expect(sim.wanInPerChunk[site]! == lengths)
        }
        for chunk in 0..<64 {
            let crossed = sim.wanInPerChunk["a"]![chunk]
            #expect(crossed >= lengths[chunk] && crossed <= 2 * lengths[chunk])
            if crossed > lengths[chunk] { #expect(atRisk.contains(chunk), "chunk \(chunk) crossed twice") }
        }
        let extra = sim.wanInBytes["a"]! - sim.config.bundleBytes
        #expect(extra <= atRisk.reduce(0) { $0 + lengths[$1] })
        #expect(sim.originEgress <= sim.config.bundleBytes + atRisk.reduce(0) { $0 + lengths[$1] })
        #expect(sim.nodes.allSatisfy { $0.isSeed || $0.host == "a2" || $0.picker!.isComplete })
    }

    @Test func aCorruptingPeerIsBannedAndItsChunksComeFromElsewhere() {
        let sim = SwarmSimulation(Swarm3x4.config(corrupting: ["b3"]))
        let finished = sim.run()
        print("swarm 3x4, b3 corrupts: \(sim.summary); bans \(sim.bans)")
        #expect(finished, "\(sim.summary)")
        #expect(sim.failedChunks > 0)
        #expect(!sim.bans.isEmpty && sim.bans.allSatisfy { $0.banned == "b3" })
        let reporter = sim.nodes[sim.index(of: sim.bans[0].reporter)]
        #expect(reporter.picker!.isBanned(host: "b3"))
        #expect(!sim.nodes[sim.index(of: "b3")].alive)
        #expect(sim.nodes.allSatisfy { $0.isSeed || $0.host == "b3" || $0.picker!.isComplete })
        // Only chunks that passed through b3 may have crossed a WAN a second time.
        for site in ["a", "b", "c"] {
            for chunk in 0..<64 {
                #expect(sim.wanInPerChunk[site]![chunk] <= 2 * sim.config.chunkLengths[chunk])
            }
        }
    }

    @Test func theEndGameIssuesCancels() {
        // Slow hosts, a fast WAN, and deep pipelines: the tail is long enough for duplicates.
        var config = Swarm3x4.config()
        config.wanIn = 8 * Swarm3x4.block
        config.wanOut = 8 * Swarm3x4.block
        config.originUplink = 8 * Swarm3x4.block
        config.hostUp = Swarm3x4.block
        config.hostDown = 4 * Swarm3x4.block
        config.depth = 8
        let sim = SwarmSimulation(config)
        let finished = sim.run()
        print("swarm 3x4, end game: \(sim.summary)")
        #expect(finished, "\(sim.summary)")
        #expect(sim.cancelsSent > 0)
        for site in ["a", "b", "c"] {
            #expect(sim.wanInPerChunk[site]! == config.chunkLengths)  // end-game copies never cross a WAN
        }
    }
}
