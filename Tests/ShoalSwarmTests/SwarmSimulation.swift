import ShoalTestKit
import ShoalSwarm
import ShoalWire


/// A whole swarm in memory: one seed in the origin and a ``PiecePicker`` per host, exchanging
/// requests and blocks in synchronous rounds over links with a capacity in bytes per round. No
/// sockets, no clocks, no randomness beyond the fixed inputs.
///
/// Each round: (1) every host asks its picker what to request from every other node, up to
/// `depth` outstanding requests per connection, and the requests join the server's FIFO queue
/// for that connection; (2) connections send queued blocks, one per turn, least recently served
/// first (per-connection fairness, as TCP shares a bottleneck), as long as every link on the path
/// (server uplink — origin uplink for the seed —, the sending site's WAN out and the receiving
/// site's WAN in when the sites differ, the receiver's downlink) has budget left; a link's budget
/// is refilled to its rate each round, a block may overdraw it and the overdraft is carried over
/// (so short blocks cost exactly their bytes); (3) blocks are delivered, cancels remove queued requests,
/// complete chunks are "verified" (a chunk with a block from a corrupting host fails) and
/// announced to everyone. A failed chunk whose culprit the picker bans is reported to the
/// "coordinator", which drops that host from the plan (new epoch) and from every peer.
final class SwarmSimulation {
    struct Config {
        var sites: [String: [String]]
        var chunkLengths: [Int]
        var blockSize: Int
        /// Bytes per round.
        var originUplink: Int
        var wanIn: Int
        var wanOut: Int
        var hostUp: Int
        var hostDown: Int
        /// Outstanding requests per connection.
        var depth: Int = 4
        var corrupting: Set<String> = []
        var maxRounds: Int = 5_000

        var bundleBytes: Int { chunkLengths.reduce(0, +) }

        /// The lower bound of BRIEF.md, in rounds: max(F/u₀, F/w, F/d, N·F/(u₀ + Σu)).
        var boundRounds: Double {
            let f = Double(bundleBytes)
            let hosts = Double(sites.values.map(\.count).reduce(0, +))
            return max(
                f / Double(originUplink), f / Double(wanIn), f / Double(hostDown),
                hosts * f / Double(originUplink + Int(hosts) * hostUp))
        }
    }

    struct Node {
        let host: String
        let site: String
        let isSeed: Bool
        var picker: PiecePicker?
        var alive = true
        var completedRound: Int?
    }

    let config: Config
    private(set) var plan: SwarmPlan
    private(set) var nodes: [Node] = []
    private(set) var round = 0

    // Measurements.
    private(set) var originEgress = 0
    private(set) var wanInBytes: [String: Int] = [:]
    private(set) var wanOutBytes: [String: Int] = [:]
    /// Bytes of each chunk that crossed each site's WAN link inward.
    private(set) var wanInPerChunk: [String: [Int]] = [:]
    private(set) var cancelsSent = 0
    private(set) var duplicateBytes = 0
    private(set) var failedChunks = 0
    private(set) var bans: [(reporter: String, banned: String)] = []
    /// Bytes into each site over its WAN link, per round (index 0 is round 1).
    private(set) var wanInTimeline: [String: [Int]] = [:]
    /// Chunks requested in round 1, per host, in order.
    private(set) var firstRequests: [String: [Int]] = [:]

    private var queues: [[[BlockRequest]]]  // [server][requester], FIFO
    /// Bytes each connection sent recently (decaying), for fair sharing of links.
    private var recent: [[Double]]
    private var connections: [(server: Int, requester: Int)] = []
    /// The links from server to requester.
    private var paths: [[[Int]]] = []
    private var rates: [Int] = []
    private var budgets: [Int] = []
    private var siteLinks: [String: (wanIn: Int, wanOut: Int)] = [:]
    /// Who sent each block of the chunk being assembled: [node][chunk][offset] → server.
    private var assembly: [[[UInt32: Int]]]

    init(_ config: Config) {
        self.config = config
        plan = SwarmPlan(chunkCount: config.chunkLengths.count, origin: "origin", sites: config.sites)
        let count = config.chunkLengths.count
        nodes.append(Node(host: "seed", site: "origin", isSeed: true))
        rates.append(config.originUplink)
        for site in config.sites.keys.sorted() {
            siteLinks[site] = (rates.count, rates.count + 1)
            rates += [config.wanIn, config.wanOut]
            wanInPerChunk[site] = Array(repeating: 0, count: count)
            wanInBytes[site] = 0
            wanOutBytes[site] = 0
            for host in config.sites[site]!.sorted() {
                let picker = PiecePicker(
                    me: host, site: site, chunkLengths: config.chunkLengths, blockSize: config.blockSize,
                    plan: plan, have: Bitfield(count: count))
                nodes.append(Node(host: host, site: site, isSeed: false, picker: picker))
            }
        }
        for _ in nodes { rates += [config.hostUp, config.hostDown] }  // up: 2i + base, down: 2i + base + 1
        budgets = rates
        queues = Array(repeating: Array(repeating: [], count: nodes.count), count: nodes.count)
        recent = Array(repeating: Array(repeating: 0, count: nodes.count), count: nodes.count)
        for s in nodes.indices { for r in nodes.indices where r != s && !nodes[r].isSeed { connections.append((s, r)) } }
        assembly = Array(repeating: Array(repeating: [:], count: count), count: nodes.count)
        paths = nodes.indices.map { s in nodes.indices.map { r in r == s || nodes[r].isSeed ? [] : path(from: s, to: r) } }
        for r in nodes.indices where !nodes[r].isSeed {
            for s in nodes.indices where s != r {
                nodes[r].picker!.peerJoined(PeerID(s), host: nodes[s].host, site: nodes[s].site, isOrigin: nodes[s].isSeed)
                if nodes[s].isSeed { nodes[r].picker!.peerHave(PeerID(s), .full(count: count)) }
            }
        }
    }

    func index(of host: String) -> Int { nodes.firstIndex { $0.host == host }! }

    var everyoneDone: Bool { nodes.allSatisfy { $0.isSeed || !$0.alive || $0.picker!.isComplete } }

    /// Runs until every live host is complete; `before(round)` runs at the start of each round.
    /// Returns false if `maxRounds` passed first.
    @discardableResult
    func run(before: (SwarmSimulation) -> Void = { _ in }) -> Bool {
        while !everyoneDone {
            guard round < config.maxRounds else { return false }
            round += 1
            before(self)
            step()
        }
        return true
    }

    /// Runs `count` rounds (or fewer, if everyone is done).
    func run(rounds count: Int) {
        for _ in 0..<count where !everyoneDone {
            round += 1
            step()
        }
    }

    /// The host dies (or is expelled): every peer drops it and the coordinator removes it from
    /// the plan.
    func kill(_ host: String) {
        let dead = index(of: host)
        guard nodes[dead].alive else { return }
        nodes[dead].alive = false
        for other in nodes.indices {
            queues[dead][other] = []
            queues[other][dead] = []
        }
        plan = plan.removing(hosts: [host])
        for r in nodes.indices where nodes[r].alive && !nodes[r].isSeed {
            nodes[r].picker!.peerLeft(PeerID(dead))
            nodes[r].picker!.updatePlan(plan)
        }
    }

    /// Live hosts of `site` that have verified `chunk`.
    func holders(of chunk: Int, in site: String) -> [String] {
        nodes.filter { $0.alive && !$0.isSeed && $0.site == site && $0.picker!.have[chunk] }.map(\.host)
    }

    private func step() {
        // 1. Requests.
        for r in nodes.indices where nodes[r].alive && !nodes[r].isSeed && !nodes[r].picker!.isComplete {
            for s in nodes.indices where s != r && nodes[s].alive {
                let room = config.depth - nodes[r].picker!.outstandingCount(for: PeerID(s))
                guard room > 0 else { continue }
                let requests = nodes[r].picker!.nextRequests(for: PeerID(s), limit: room)
                queues[s][r] += requests
                if round == 1 { firstRequests[nodes[r].host, default: []] += requests.map { Int($0.chunk) } }
            }
        }

        // 2. Transfers.
        for link in budgets.indices { budgets[link] = min(budgets[link] + rates[link], rates[link]) }
        for site in wanInBytes.keys { wanInTimeline[site, default: []].append(0) }
        var sent: [(server: Int, requester: Int, block: BlockRequest)] = []
        // Per-connection fairness, as TCP gives it: connections with queued blocks take turns,
        // the one with the least recent service first, one block per turn.
        let waiting = connections.filter { !queues[$0.server][$0.requester].isEmpty && nodes[$0.server].alive }
            .sorted { (recent[$0.server][$0.requester], $0.server, $0.requester) < (recent[$1.server][$1.requester], $1.server, $1.requester) }
        var moved = true
        while moved {
            moved = false
            for (s, r) in waiting where !queues[s][r].isEmpty {
                let block = queues[s][r][0]
                let path = paths[s][r]
                guard path.allSatisfy({ budgets[$0] > 0 }) else { continue }
                queues[s][r].removeFirst()
                let length = Int(block.length)
                for link in path { budgets[link] -= length }
                recent[s][r] += Double(length)
                if path.count != 2 {  // crossed a WAN
                    wanInBytes[nodes[r].site]! += length
                    wanInTimeline[nodes[r].site]![round - 1] += length
                    wanInPerChunk[nodes[r].site]![Int(block.chunk)] += length
                    if s == 0 { originEgress += length } else { wanOutBytes[nodes[s].site]! += length }
                }
                sent.append((s, r, block))
                moved = true
            }
        }
        for s in recent.indices { for r in recent[s].indices { recent[s][r] *= 0.8 } }

        // 3. Deliveries.
        for (s, r, block) in sent where nodes[r].alive {
            let chunk = Int(block.chunk)
            // The owner checks before using the bytes: late (cancelled) blocks are dropped.
            if !nodes[r].picker!.isOutstanding(block, at: PeerID(s)) {
                duplicateBytes += Int(block.length)
                continue
            }
            assembly[r][chunk][block.offset] = s  // a re-fetched block overwrites a discarded one
            let outcome = nodes[r].picker!.blockReceived(from: PeerID(s), block)
            for cancel in outcome.cancels {
                cancelsSent += 1
                if let at = queues[cancel.peer.rawValue][r].firstIndex(of: cancel.request) {
                    queues[cancel.peer.rawValue][r].remove(at: at)  // not sent yet: the server drops it
                }
            }
            guard let complete = outcome.chunkComplete else { continue }
            let corrupt = assembly[r][complete].values.contains { config.corrupting.contains(nodes[$0].host) }
            assembly[r][complete] = [:]
            if corrupt {
                failedChunks += 1
                if let culprit = nodes[r].picker!.chunkFailed(complete, blame: nil) {
                    // Disconnect and report; the coordinator bans the host everywhere and drops it
                    // from the plan.
                    let host = nodes[culprit.rawValue].host
                    bans.append((nodes[r].host, host))
                    for o in nodes.indices where nodes[o].alive && !nodes[o].isSeed { nodes[o].picker!.ban(host: host) }
                    kill(host)
                }
            } else {
                nodes[r].picker!.chunkVerified(complete)
                for o in nodes.indices where o != r && nodes[o].alive && !nodes[o].isSeed {
                    nodes[o].picker!.peerHas(PeerID(r), chunk: complete)
                }
                if nodes[r].picker!.isComplete { nodes[r].completedRound = round }
            }
        }
    }

    private func path(from s: Int, to r: Int) -> [Int] {
        let base = 1 + 2 * siteLinks.count
        let down = base + 2 * r + 1
        if nodes[s].isSeed { return [0, siteLinks[nodes[r].site]!.wanIn, down] }
        let up = base + 2 * s
        if nodes[s].site == nodes[r].site { return [up, down] }
        return [up, siteLinks[nodes[s].site]!.wanOut, siteLinks[nodes[r].site]!.wanIn, down]
    }

    /// One line for the test log.
    var summary: String {
        let bundle = Double(config.bundleBytes)
        let sites = wanInBytes.keys.sorted().map { site in
            let inCopies = Double(wanInBytes[site]!) / bundle
            let outCopies = Double(wanOutBytes[site]!) / bundle
            return "\(site): in \(fmt(inCopies)) out \(fmt(outCopies))"
        }
        return "rounds \(round) vs bound \(fmt(config.boundRounds)) (×\(fmt(Double(round) / config.boundRounds))), "
            + "origin egress ×\(fmt(Double(originEgress) / bundle)), WAN copies [\(sites.joined(separator: ", "))], "
            + "cancels \(cancelsSent), duplicate bytes \(duplicateBytes), failed chunks \(failedChunks)"
    }

    private func fmt(_ value: Double) -> String {
        let scaled = (value * 1000).rounded() / 1000
        return "\(scaled)"
    }
}
