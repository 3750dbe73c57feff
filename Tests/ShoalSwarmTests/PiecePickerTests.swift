import ShoalSwarm
import ShoalWire
import Testing

/// A bitfield of `count` chunks with `chunks` set.
func bits(_ count: Int, _ chunks: some Sequence<Int>) -> Bitfield {
    var field = Bitfield(count: count)
    for chunk in chunks { field[chunk] = true }
    return field
}

/// Three sites of four hosts; with 12 chunks, site a's ingress hosts are a1 for chunks 0–2, a2 for
/// 3–5, a3 for 6–8, a4 for 9–11, and chunk c's home is a, b, c for c % 3 = 0, 1, 2.
enum Layout {
    static let sites: [String: [String]] = [
        "a": ["a1", "a2", "a3", "a4"], "b": ["b1", "b2", "b3", "b4"], "c": ["c1", "c2", "c3", "c4"],
    ]
    static func plan(_ chunks: Int = 12) -> SwarmPlan { SwarmPlan(chunkCount: chunks, origin: "origin", sites: sites) }

    static let seed = PeerID(0)
    static let b1 = PeerID(1)
    static let b2 = PeerID(2)
    static let c1 = PeerID(3)
    static let a2 = PeerID(4)
    static let a3 = PeerID(5)
    static let a4 = PeerID(6)

    /// A picker for `me` in site a, with the seed, b1, b2, c1 (all holding everything) and a2, a3,
    /// a4 (holding nothing) joined.
    static func picker(
        me: String = "a1", lengths: [Int] = Array(repeating: 2500, count: 12), blockSize: Int = 1024,
        have: Bitfield? = nil, endGameCopies: Int = 2
    ) -> PiecePicker {
        var picker = PiecePicker(
            me: me, site: "a", chunkLengths: lengths, blockSize: blockSize, plan: plan(lengths.count),
            have: have ?? Bitfield(count: lengths.count), endGameCopies: endGameCopies)
        picker.peerJoined(seed, host: "seed", site: "origin", isOrigin: true)
        picker.peerJoined(b1, host: "b1", site: "b", isOrigin: false)
        picker.peerJoined(b2, host: "b2", site: "b", isOrigin: false)
        picker.peerJoined(c1, host: "c1", site: "c", isOrigin: false)
        for id in [seed, b1, b2, c1] { picker.peerHave(id, .full(count: lengths.count)) }
        picker.peerJoined(a2, host: "a2", site: "a", isOrigin: false)
        picker.peerJoined(a3, host: "a3", site: "a", isOrigin: false)
        picker.peerJoined(a4, host: "a4", site: "a", isOrigin: false)
        return picker
    }
}

/// A block that completed nothing and cancelled nothing.
func nothing(_ outcome: (chunkComplete: Int?, cancels: [PiecePicker.Cancel])) -> Bool {
    outcome.chunkComplete == nil && outcome.cancels.isEmpty
}

func chunks(_ requests: [BlockRequest]) -> [Int] {
    var seen: [Int] = []
    for request in requests where seen.last != Int(request.chunk) { seen.append(Int(request.chunk)) }
    return seen
}

struct PiecePickerTests {
    @Test func blocksCoverEachChunkAndTheLastIsShorter() {
        let picker = Layout.picker(lengths: [10, 2500, 1024], blockSize: 1024)
        #expect(picker.blocks(of: 0) == [BlockRequest(chunk: 0, offset: 0, length: 10)])
        #expect(picker.blocks(of: 1) == [
            BlockRequest(chunk: 1, offset: 0, length: 1024), BlockRequest(chunk: 1, offset: 1024, length: 1024),
            BlockRequest(chunk: 1, offset: 2048, length: 452),
        ])
        #expect(picker.blocks(of: 2) == [BlockRequest(chunk: 2, offset: 0, length: 1024)])
        #expect(picker.missingCount == 3 && !picker.isComplete)
    }

    // MARK: The WAN rule

    @Test func theIngressHostFetchesFromTheOriginOrTheHomeSiteOnly() {
        var picker = Layout.picker()  // a1: ingress of site a for chunks 0, 1, 2
        #expect(chunks(picker.nextRequests(for: Layout.seed, limit: 100)) == [0])  // home a
        #expect(chunks(picker.nextRequests(for: Layout.c1, limit: 100)) == [2])  // home c
        #expect(chunks(picker.nextRequests(for: Layout.b1, limit: 100)) == [1])  // home b
        #expect(picker.nextRequests(for: Layout.b2, limit: 100).isEmpty)  // no block twice over the WAN
        #expect(picker.outstanding(for: Layout.seed) == picker.blocks(of: 0))
        // In-site peers may be asked for anything they have.
        #expect(picker.nextRequests(for: Layout.a2, limit: 100).isEmpty)
        picker.peerHas(Layout.a2, chunk: 7)
        #expect(chunks(picker.nextRequests(for: Layout.a2, limit: 100)) == [7])
    }

    @Test func otherHostsOfTheSiteNeverCrossTheWANForTheseChunks() {
        var picker = Layout.picker(me: "a2")  // ingress for chunks 3 (home a), 4 (home b), 5 (home c)
        #expect(chunks(picker.nextRequests(for: Layout.seed, limit: 100)) == [3])
        #expect(chunks(picker.nextRequests(for: Layout.b2, limit: 100)) == [4])
        #expect(chunks(picker.nextRequests(for: Layout.c1, limit: 100)) == [5])
        #expect(picker.nextRequests(for: Layout.b1, limit: 100).isEmpty)
    }

    @Test func aChunkAlreadyInsideTheSiteIsFetchedInside() {
        var picker = Layout.picker()
        picker.peerHave(Layout.a3, bits(12, [0, 1]))
        #expect(chunks(picker.nextRequests(for: Layout.seed, limit: 100)).isEmpty)
        #expect(chunks(picker.nextRequests(for: Layout.b1, limit: 100)).isEmpty)
        #expect(chunks(picker.nextRequests(for: Layout.c1, limit: 100)) == [2])
        #expect(Set(chunks(picker.nextRequests(for: Layout.a3, limit: 100))) == [0, 1])
    }

    @Test func aNewerPlanHandsTheDeadHostsChunksOver() {
        var picker = Layout.picker(me: "a4", lengths: Array(repeating: 2500, count: 24))
        let newer = Layout.plan(24).removing(hosts: ["a1"])
        let mine = (0..<24).filter { newer.ingressHost(site: "a", chunk: $0) == "a4" }
        // a4's own chunks 9–11 and 21–23, and some of a1's chunks 0–2 and 12–14.
        #expect(Set(mine).isSuperset(of: [9, 10, 11, 21, 22, 23]) && mine.count > 6)
        picker.updatePlan(newer)
        #expect(picker.plan.epoch == 1)
        var fetched: Set<Int> = []
        for id in [Layout.seed, Layout.b1, Layout.c1] {
            fetched.formUnion(chunks(picker.nextRequests(for: id, limit: 100)))
        }
        #expect(fetched == Set(mine))
        picker.updatePlan(Layout.plan(24))  // an older epoch is ignored
        #expect(picker.plan == newer)
    }

    // MARK: Order

    @Test func rarestInTheSiteFirst() {
        var picker = Layout.picker(lengths: Array(repeating: 100, count: 12))  // one block per chunk
        picker.peerHave(Layout.a2, bits(12, 0..<10))
        picker.peerHave(Layout.a3, bits(12, 0..<5))
        picker.peerHave(Layout.a4, bits(12, 0..<2))
        #expect((0..<12).map { picker.inSiteAvailability(of: $0) } == [3, 3, 2, 2, 2, 1, 1, 1, 1, 1, 0, 0])
        #expect(Set(chunks(picker.nextRequests(for: Layout.a2, limit: 5))) == Set(5..<10))
        #expect(Set(chunks(picker.nextRequests(for: Layout.a2, limit: 3))) == Set(2..<5))
        #expect(Set(chunks(picker.nextRequests(for: Layout.a2, limit: 9))) == [0, 1])
    }

    @Test func hostsWithTheSameViewStartOnDifferentChunks() {
        var first: Set<Int> = []
        for me in ["a1", "a2", "a3", "a4"] {
            var picker = PiecePicker(
                me: me, site: "a", chunkLengths: Array(repeating: 100, count: 64), blockSize: 64,
                plan: Layout.plan(64), have: Bitfield(count: 64))
            picker.peerJoined(PeerID(9), host: "a9", site: "a", isOrigin: false)
            picker.peerHave(PeerID(9), .full(count: 64))
            first.insert(Int(picker.nextRequests(for: PeerID(9), limit: 1)[0].chunk))
        }
        #expect(first.count == 4)
    }

    @Test func pipeliningSpansChunksAndStartedChunksComeFirst() {
        var picker = Layout.picker()  // 3 blocks per chunk
        picker.peerHave(Layout.a2, .full(count: 12))
        picker.peerHave(Layout.a3, .full(count: 12))
        let one = picker.nextRequests(for: Layout.a2, limit: 4)
        #expect(one.count == 4)
        let (x, y) = (Int(one[0].chunk), Int(one[3].chunk))
        #expect(x != y)
        #expect(Array(one[0..<3]) == picker.blocks(of: x))  // in offset order
        #expect(one[3] == picker.blocks(of: y)[0])
        // Another peer continues the started chunk before anything new.
        let two = picker.nextRequests(for: Layout.a3, limit: 3)
        #expect(Array(two[0..<2]) == Array(picker.blocks(of: y)[1...]))
        #expect(two[2].chunk != UInt32(x) && two[2].chunk != UInt32(y) && two[2].offset == 0)
    }

    // MARK: End game

    @Test func endGameDuplicatesInsideTheSiteAndCancels() {
        var picker = Layout.picker(lengths: [2000], blockSize: 1024, endGameCopies: 2)
        // 1 chunk: home a, ingress a1 = us. Put it in the site instead so it is fetched inside.
        picker.peerHave(Layout.a2, .full(count: 1))
        picker.peerHave(Layout.a3, .full(count: 1))
        picker.peerHave(Layout.a4, .full(count: 1))
        let blocks = picker.blocks(of: 0)
        #expect(!picker.isEndGame)
        #expect(picker.nextRequests(for: Layout.a2, limit: 10) == blocks)
        #expect(picker.isEndGame)
        #expect(picker.nextRequests(for: Layout.seed, limit: 10).isEmpty)  // never over the WAN
        #expect(picker.nextRequests(for: Layout.a3, limit: 10) == blocks)  // duplicates
        #expect(picker.nextRequests(for: Layout.a4, limit: 10).isEmpty)  // at most 2 copies
        #expect(picker.nextRequests(for: Layout.a3, limit: 10).isEmpty)  // never twice to one peer

        #expect(picker.isOutstanding(blocks[0], at: Layout.a2) && picker.isOutstanding(blocks[0], at: Layout.a3))
        let first = picker.blockReceived(from: Layout.a2, blocks[0])
        #expect(first.chunkComplete == nil)
        #expect(first.cancels.map { "\($0.peer) \($0.request)" } == ["\(Layout.a3) \(blocks[0])"])
        #expect(!picker.isOutstanding(blocks[0], at: Layout.a3))  // cancelled: a late copy is dropped
        #expect(nothing(picker.blockReceived(from: Layout.a3, blocks[0])))
        let (complete, cancels) = picker.blockReceived(from: Layout.a3, blocks[1])
        #expect(complete == 0)
        #expect(cancels.map { "\($0.peer) \($0.request)" } == ["\(Layout.a2) \(blocks[1])"])
        #expect(picker.outstanding(for: Layout.a2).isEmpty && picker.outstanding(for: Layout.a3).isEmpty)
        #expect(picker.missingCount == 1)  // not "have" until verified
        #expect(picker.chunkVerified(0).isEmpty)
        #expect(picker.chunkVerified(0).isEmpty)  // twice is harmless
        #expect(picker.isComplete && picker.missingCount == 0 && !picker.isEndGame)
        #expect(picker.nextRequests(for: Layout.a4, limit: 10).isEmpty)
    }

    @Test func noEndGameDuplicatesAcrossTheWAN() {
        var picker = Layout.picker(lengths: [2000, 2000], blockSize: 1024)  // a1 ingress for both
        let fromOrigin = picker.nextRequests(for: Layout.seed, limit: 10)
        let fromB = picker.nextRequests(for: Layout.b1, limit: 10)
        #expect(chunks(fromOrigin) == [0] && chunks(fromB) == [1])
        #expect(picker.isEndGame)
        #expect(picker.nextRequests(for: Layout.b2, limit: 10).isEmpty)
        #expect(picker.nextRequests(for: Layout.c1, limit: 10).isEmpty)
        // A chunk fetched over the WAN comes from one peer (so a bad copy has one culprit), even
        // when a site-mate has it meanwhile.
        picker.peerHas(Layout.a2, chunk: 1)
        #expect(picker.nextRequests(for: Layout.a2, limit: 10).isEmpty)
        // If that peer goes away, another allowed source continues where it stopped.
        let first = picker.blocks(of: 1)[0]
        #expect(nothing(picker.blockReceived(from: Layout.b1, first)))
        picker.peerLeft(Layout.b1)
        #expect(picker.nextRequests(for: Layout.a2, limit: 10) == [picker.blocks(of: 1)[1]])
    }

    // MARK: Departures and rejects

    @Test func requestsOfAPeerThatLeftOrRejectedAreRequestableAgain() {
        var picker = Layout.picker(lengths: [3000], blockSize: 1024)
        picker.peerHave(Layout.a2, .full(count: 1))
        picker.peerHave(Layout.a3, .full(count: 1))
        let blocks = picker.blocks(of: 0)
        #expect(picker.nextRequests(for: Layout.a2, limit: 10) == blocks)
        #expect(nothing(picker.blockReceived(from: Layout.a2, blocks[0])))
        picker.peerLeft(Layout.a2)
        #expect(picker.inSiteAvailability(of: 0) == 1)
        #expect(!picker.isOutstanding(blocks[1], at: Layout.a2))  // gone
        // Block 0 is kept; 1 and 2 go to a3.
        #expect(picker.nextRequests(for: Layout.a3, limit: 10) == Array(blocks[1...]))
        picker.requestRejected(by: Layout.a3, blocks[2])
        #expect(picker.outstanding(for: Layout.a3) == [blocks[1]])
        #expect(picker.nextRequests(for: Layout.a3, limit: 10) == [blocks[2]])
        #expect(picker.outstandingCount(for: Layout.a3) == 2)
    }

    @Test func resumedChunksAreNotFetched() {
        var picker = Layout.picker(lengths: Array(repeating: 100, count: 12), have: bits(12, 0..<11))
        #expect(picker.missingCount == 1)
        picker.peerHave(Layout.a2, .full(count: 12))
        #expect(chunks(picker.nextRequests(for: Layout.a2, limit: 10)) == [11])
    }

    // MARK: Verification failures and bans

    @Test func aBadChunkFromOnePeerBansItsHost() {
        var picker = Layout.picker(lengths: [2000, 2000], blockSize: 1024)
        picker.peerHave(Layout.a2, bits(2, [0]))
        picker.peerHave(Layout.a3, .full(count: 2))
        let blocks = picker.nextRequests(for: Layout.a2, limit: 10)
        #expect(blocks == picker.blocks(of: 0))
        #expect(picker.blockReceived(from: Layout.a2, blocks[0]).chunkComplete == nil)
        #expect(picker.blockReceived(from: Layout.a2, blocks[1]).chunkComplete == 0)
        #expect(picker.chunkFailed(0, blame: nil) == Layout.a2)
        #expect(picker.isBanned(Layout.a2) && picker.isBanned(host: "a2"))
        #expect(picker.inSiteAvailability(of: 0) == 1)
        #expect(picker.missingCount == 2)
        picker.peerHas(Layout.a2, chunk: 1)
        #expect(picker.nextRequests(for: Layout.a2, limit: 10).isEmpty)  // never asked again
        // It reconnects under another id: still banned.
        picker.peerLeft(Layout.a2)
        picker.peerJoined(PeerID(42), host: "a2", site: "a", isOrigin: false)
        picker.peerHave(PeerID(42), .full(count: 2))
        #expect(picker.isBanned(PeerID(42)))
        #expect(picker.nextRequests(for: PeerID(42), limit: 10).isEmpty)
        #expect(picker.inSiteAvailability(of: 1) == 1)
        // The chunk comes from elsewhere.
        #expect(chunks(picker.nextRequests(for: Layout.a3, limit: 10)) == [0, 1])
    }

    @Test func aFailureWithSeveralSendersIsRetriedFromOnePeer() {
        var picker = Layout.picker(lengths: [3000], blockSize: 1024)
        picker.peerHave(Layout.a2, .full(count: 1))
        picker.peerHave(Layout.a3, .full(count: 1))
        let blocks = picker.blocks(of: 0)
        #expect(picker.nextRequests(for: Layout.a2, limit: 2) == Array(blocks[0..<2]))
        #expect(picker.nextRequests(for: Layout.a3, limit: 1) == [blocks[2]])
        _ = picker.blockReceived(from: Layout.a2, blocks[0])
        _ = picker.blockReceived(from: Layout.a2, blocks[1])
        #expect(picker.blockReceived(from: Layout.a3, blocks[2]).chunkComplete == 0)
        #expect(picker.chunkFailed(0, blame: nil) == nil)  // who was it? nobody is banned yet
        // Retried from a single peer: a3 takes what it can, a2 gets nothing of this chunk.
        #expect(picker.nextRequests(for: Layout.a3, limit: 2) == Array(blocks[0..<2]))
        #expect(picker.nextRequests(for: Layout.a2, limit: 10).isEmpty)
        #expect(picker.nextRequests(for: Layout.a3, limit: 10) == [blocks[2]])
        for block in blocks { _ = picker.blockReceived(from: Layout.a3, block) }
        #expect(picker.chunkFailed(0, blame: nil) == Layout.a3)  // now the culprit is known
        #expect(picker.nextRequests(for: Layout.a2, limit: 10) == blocks)
    }

    @Test func aBanFromTheCoordinatorDiscardsTheHostsBlocks() {
        var picker = Layout.picker(lengths: [3000], blockSize: 1024)
        picker.peerHave(Layout.a2, .full(count: 1))
        picker.peerHave(Layout.a3, .full(count: 1))
        let blocks = picker.blocks(of: 0)
        #expect(picker.nextRequests(for: Layout.a2, limit: 2) == Array(blocks[0..<2]))
        #expect(picker.nextRequests(for: Layout.a3, limit: 1) == [blocks[2]])
        #expect(nothing(picker.blockReceived(from: Layout.a2, blocks[0])))
        #expect(nothing(picker.blockReceived(from: Layout.a3, blocks[2])))
        #expect(picker.ban(host: "a2") == [Layout.a2])
        #expect(picker.isBanned(Layout.a2) && picker.outstandingCount(for: Layout.a2) == 0)
        #expect(picker.inSiteAvailability(of: 0) == 1)
        // a2's block 0 is discarded and its request for block 1 forgotten; a3's block 2 stays.
        #expect(picker.nextRequests(for: Layout.a3, limit: 10) == Array(blocks[0..<2]))
        #expect(picker.nextRequests(for: Layout.a2, limit: 10).isEmpty)
    }

    @Test func explicitBlameWins() {
        var picker = Layout.picker(lengths: [1000], blockSize: 1024)
        picker.peerHave(Layout.a2, .full(count: 1))
        let block = picker.nextRequests(for: Layout.a2, limit: 1)[0]
        #expect(picker.blockReceived(from: Layout.a2, block).chunkComplete == 0)
        #expect(picker.chunkFailed(0, blame: Layout.a4) == Layout.a4)
        #expect(picker.isBanned(host: "a4") && !picker.isBanned(host: "a2"))
        #expect(picker.chunkFailed(0, blame: nil) == nil)  // not waiting for verification any more
    }
}

/// Found in the lab (a peer killed and restarted): a chunk pinned to its WAN source, half
/// received, then fetched first by an in-site peer. The source is no longer allowed for it, so
/// the rest must come from inside the site instead of waiting forever.
struct PinnedChunkRegressionTests {
    @Test func aHalfFetchedWANChunkContinuesFromTheSiteOnceItIsInside() {
        var picker = Layout.picker()
        // a1 is the ingress for chunk 0, whose home is site a: it fetches it from the seed.
        let first = picker.nextRequests(for: Layout.seed, limit: 1)
        #expect(first.map(\.chunk) == [0])
        _ = picker.blockReceived(from: Layout.seed, first[0])
        // An in-site peer gets chunk 0 (say from a previous life of this host's ingress role).
        picker.peerHas(Layout.a2, chunk: 0)
        // The seed may no longer be asked for chunk 0; a2 must be.
        let fromSeed = picker.nextRequests(for: Layout.seed, limit: 8).filter { $0.chunk == 0 }
        #expect(fromSeed.isEmpty)
        let fromA2 = picker.nextRequests(for: Layout.a2, limit: 8)
        #expect(fromA2.contains { $0.chunk == 0 }, "\(fromA2)")
    }
}
