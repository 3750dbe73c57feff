import ShoalWire

/// An opaque handle for one connected peer, chosen by the owner of a ``PiecePicker`` (for
/// example a connection number). The picker never interprets it.
public struct PeerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int

    public init(_ rawValue: Int) { self.rawValue = rawValue }

    public static func < (lhs: PeerID, rhs: PeerID) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String { "peer \(rawValue)" }
}

/// Which blocks of one bundle a peer process asks which of its peers for: a pure value, no I/O and
/// no clock. One picker per peer process and bundle.
///
/// The owner reports events (peers joining and leaving, their have-sets, blocks arriving, chunks
/// verified or failed, rejects, new plans) and asks ``nextRequests(for:limit:)`` what to send to
/// a peer whenever that peer's pipeline has room. The picker guarantees:
///
/// 1. **Only useful requests**: chunks the peer announced and we neither have nor are verifying;
///    never a block we hold or that is outstanding elsewhere (except in the end game).
/// 2. **The WAN rule** (see ``SwarmPlan``): a peer outside our site, or the origin seed, is asked
///    for chunk `c` only if we are `plan.ingressHost(site: ourSite, chunk: c)`, the peer is
///    `plan.wanSource(site: ourSite, chunk: c)` (the seed for `.origin`, any peer of that site
///    for `.site`), and no peer of our site already announced `c`. Peers of our own site may be
///    asked for anything they have. Nothing is ever requested twice across the WAN, and a chunk
///    fetched over the WAN comes from one peer (so a bad copy has exactly one culprit); if that
///    peer goes away, another allowed source continues from the blocks already received.
/// 3. **Order**: chunks already being fetched first (oldest first), then new chunks rarest first
///    by in-site availability (how many non-banned peers of our site announced it), ties broken by
///    an order seeded by our host name, so hosts with the same view start on different chunks.
///    Within a chunk, blocks go in offset order; one call may span several chunks (pipelining).
/// 4. **End game**: once every missing block is received or requested, blocks outstanding at one
///    peer may also be requested from other in-site peers (up to `endGameCopies` requests per
///    block, never over the WAN); when a block arrives, the other requests for it are returned as
///    cancels.
/// 5. **Verification and bans**: when every block of a chunk has arrived,
///    ``blockReceived(from:_:)`` reports the chunk; the owner checks it against the manifest and
///    calls ``chunkVerified(_:)`` or ``chunkFailed(_:blame:)``. A failed chunk is fetched again
///    from scratch and the guilty peer (its host) is banned: it is never asked again, even when it
///    reconnects under another ``PeerID``, and blocks it sent for other chunks are discarded.
///    ``ban(host:)`` does the same for a host the coordinator reports.
///
/// Blocks are `blockSize` bytes at offsets `0, blockSize, 2·blockSize, …` of a chunk's stored
/// bytes; the last block of a chunk is shorter when the chunk length is not a multiple.
///
/// Costs: ``nextRequests(for:limit:)`` scans the two have-sets a byte at a time and the started
/// chunks (O(chunks / 8 + candidates + active blocks)); everything else is proportional to the
/// blocks or chunks it touches (a have-set change: O(chunks)).
///
/// The picker decides *what* to ask for; the owner decides *when* and *how much*: per-connection
/// pipeline depth (`limit`), upload slots, rate limits, and which connections to serve first.
///
/// ```swift
/// var picker = PiecePicker(me: "fra-07", site: "fra", chunkLengths: manifest.storedLengths,
///                          plan: plan, have: resumed)
/// picker.peerJoined(PeerID(1), host: "fra-03", site: "fra", isOrigin: false)
/// picker.peerHave(PeerID(1), theirBitfield)
/// for request in picker.nextRequests(for: PeerID(1), limit: 16) { send(.request(request)) }
/// guard picker.isOutstanding(piece.request, at: PeerID(1)) else { return }  // late or cancelled
/// assemble(piece)
/// let (complete, cancels) = picker.blockReceived(from: PeerID(1), piece.request)
/// for (peer, block) in cancels { send(.cancel(block), to: peer) }
/// if let chunk = complete { verifyThenReport(chunk) }
/// ```
public struct PiecePicker: Sendable {
    /// A request the owner should cancel (send a cancel to `peer`): the block arrived from another
    /// peer. The picker has already forgotten it.
    public typealias Cancel = (peer: PeerID, request: BlockRequest)

    /// Our host name.
    public let me: String
    /// Our site.
    public let site: String
    /// The stored length of every chunk, in bytes.
    public let chunkLengths: [Int]
    /// The block size; every block but the last of a chunk has this length.
    public let blockSize: Int
    /// The most requests for one block at one time in the end game (1 turns the end game off).
    public let endGameCopies: Int
    /// The plan in force (the newest given).
    public private(set) var plan: SwarmPlan
    /// The chunks we have verified.
    public private(set) var have: Bitfield

    private struct Peer {
        let host: String
        let site: String
        let isOrigin: Bool
        /// Same site and not the origin: may be asked for anything, counts for availability.
        let inSite: Bool
        var have: Bitfield
        var outstanding: Set<BlockRequest> = []
        var banned: Bool
        var wanCode: Int

        var countsForAvailability: Bool { inSite && !banned }
    }

    /// The state of a chunk we have started to fetch (or that failed verification).
    private struct Progress {
        /// Peers with an outstanding request, per block (usually zero or one).
        var requesters: [[PeerID]]
        /// Who sent each block (`nil`: not received yet).
        var sender: [PeerID?]
        var receivedCount = 0
        /// Blocks neither received nor requested.
        var unrequested: Int
        /// The host of every peer in `sender` (kept after the peer left).
        var senderHost: [PeerID: String] = [:]
        /// Start order: older chunks are finished first.
        var order: Int
        /// Whether every block must come from one peer, `source` (chosen by the first request).
        var pin: Pin?
        var source: PeerID?

        var blockCount: Int { sender.count }

        func received(_ index: Int) -> Bool { sender[index] != nil }

        init(blocks: Int, order: Int) {
            requesters = Array(repeating: [], count: blocks)
            sender = Array(repeating: nil, count: blocks)
            unrequested = blocks
            self.order = order
        }
    }

    /// Why a chunk's blocks must all come from one peer.
    private enum Pin {
        /// It is fetched over the WAN: a bad copy then has one culprit and crosses the WAN once.
        /// If the source goes away, another allowed WAN source continues from the blocks received.
        case wan
        /// It failed verification and nobody could be blamed: the next failure will have one
        /// culprit. If the source goes away, the chunk starts over.
        case retry
    }

    /// What the WAN rule allows for a chunk, for us: `notIngress` (in-site peers only), `fromOrigin`
    /// (we are its ingress host and fetch it from the seed), or the index in `plan.sites` of the
    /// site we relay it from. A peer's `wanCode` is `fromOrigin` for the seed, else the index of
    /// its site in `plan.sites` (`unknownSite` if none); a WAN peer may serve a chunk iff the codes
    /// match.
    private static let notIngress = -2
    private static let fromOrigin = -1
    private static let unknownSite = -3

    private var peers: [PeerID: Peer] = [:]
    private var bannedHosts: Set<String> = []
    /// Per chunk: in-site, non-banned peers that announced it.
    private var availability: [Int]
    private var wanRules: [Int]
    /// Per chunk: a fixed pseudo-random order seeded by our host name (the rarest-first tie-break).
    private let tieOrder: [UInt64]
    /// Per chunk: it has `progress` (same as `progress[chunk] != nil`, cheaper to test).
    private var started: [Bool]
    private var progress: [Progress?]
    /// Chunks with progress, in start order.
    private var active: [Int] = []
    /// Chunks whose blocks all arrived and that wait for verification.
    private var pending: Set<Int> = []
    /// Blocks of missing chunks neither received nor requested; 0 means end game.
    private var openBlocks: Int
    private var nextOrder = 0

    /// A picker for one bundle.
    ///
    /// - Parameters:
    ///   - me: Our host name, as the plan knows it.
    ///   - site: Our site.
    ///   - chunkLengths: The stored length of every chunk (from the manifest); each in
    ///     `1...UInt32.max`.
    ///   - blockSize: The block size, at most the peers' maximum block length (256 KiB by default).
    ///   - plan: The WAN plan; its chunk count must match.
    ///   - have: The chunks already verified (after a restart: what the resume log trusts).
    ///   - endGameCopies: The most simultaneous requests for one block in the end game, ≥ 1.
    public init(
        me: String, site: String, chunkLengths: [Int], blockSize: Int = PeerProtocol.defaultMaxBlockLength,
        plan: SwarmPlan, have: Bitfield, endGameCopies: Int = 2
    ) {
        precondition(blockSize > 0 && blockSize <= Int(UInt32.max), "block size \(blockSize) out of range")
        precondition(endGameCopies >= 1, "endGameCopies must be at least 1")
        precondition(have.count == chunkLengths.count, "have has \(have.count) bits for \(chunkLengths.count) chunks")
        precondition(plan.chunkCount == chunkLengths.count, "plan for \(plan.chunkCount) chunks, bundle has \(chunkLengths.count)")
        for length in chunkLengths {
            precondition(length > 0 && length <= Int(UInt32.max), "chunk length \(length) out of range")
        }
        self.me = me
        self.site = site
        self.chunkLengths = chunkLengths
        self.blockSize = blockSize
        self.endGameCopies = endGameCopies
        self.plan = plan
        self.have = have
        self.availability = Array(repeating: 0, count: chunkLengths.count)
        self.progress = Array(repeating: nil, count: chunkLengths.count)
        self.wanRules = []
        let seed = StableHash.fnv1a(me)
        self.tieOrder = chunkLengths.indices.map { StableHash.mix(seed ^ UInt64($0)) }
        self.started = Array(repeating: false, count: chunkLengths.count)
        var open = 0
        for chunk in chunkLengths.indices where !have[chunk] {
            open += (chunkLengths[chunk] + blockSize - 1) / blockSize
        }
        self.openBlocks = open
        self.wanRules = computeRules()
    }

    // MARK: Queries

    /// Chunks not yet verified (including those waiting for verification).
    public var missingCount: Int { have.count - have.setCount }

    /// Every chunk is verified.
    public var isComplete: Bool { have.isFull }

    /// Every missing block is received or requested (duplicates may now go to in-site peers).
    public var isEndGame: Bool { openBlocks == 0 && !isComplete }

    /// Our requests to `peer` that are not answered yet, by chunk and offset.
    public func outstanding(for peer: PeerID) -> [BlockRequest] {
        (peers[peer]?.outstanding ?? []).sorted { ($0.chunk, $0.offset) < ($1.chunk, $1.offset) }
    }

    /// Whether `request` is outstanding at `peer`, i.e. a piece for it from `peer` will be used.
    public func isOutstanding(_ request: BlockRequest, at peer: PeerID) -> Bool {
        peers[peer]?.outstanding.contains(request) ?? false
    }

    /// The number of our requests to `peer` that are not answered yet.
    public func outstandingCount(for peer: PeerID) -> Int {
        peers[peer]?.outstanding.count ?? 0
    }

    /// Whether `peer` is banned (it, or another connection of its host, sent a bad chunk).
    public func isBanned(_ peer: PeerID) -> Bool { peers[peer]?.banned ?? false }

    /// Whether `host` is banned for this bundle.
    public func isBanned(host: String) -> Bool { bannedHosts.contains(host) }

    /// How many non-banned peers of our site announced `chunk`.
    public func inSiteAvailability(of chunk: Int) -> Int { availability[chunk] }

    /// The blocks of `chunk`, in offset order.
    public func blocks(of chunk: Int) -> [BlockRequest] {
        (0..<blockCount(chunk)).map { block(chunk, $0) }
    }

    // MARK: Peers

    /// A connection to a peer is established (its hello was accepted). It has nothing until
    /// ``peerHave(_:_:)`` or ``peerHas(_:chunk:)`` says otherwise. A peer whose host is banned
    /// joins banned.
    ///
    /// - Parameters:
    ///   - id: A handle not in use by another joined peer.
    ///   - host: The peer's host name (from its certificate).
    ///   - site: The peer's site (from its certificate).
    ///   - isOrigin: The peer is the origin seed.
    public mutating func peerJoined(_ id: PeerID, host: String, site: String, isOrigin: Bool) {
        precondition(peers[id] == nil, "\(id) joined twice")
        peers[id] = Peer(
            host: host, site: site, isOrigin: isOrigin, inSite: site == self.site && !isOrigin,
            have: Bitfield(count: chunkLengths.count), banned: bannedHosts.contains(host),
            wanCode: Self.wanCode(site: site, isOrigin: isOrigin, plan: plan))
    }

    /// The connection to `id` is gone: its outstanding requests become requestable again. Blocks
    /// it already delivered are kept.
    public mutating func peerLeft(_ id: PeerID) {
        guard let peer = peers[id] else { return }
        for request in peer.outstanding { forget(request, at: id) }
        if peer.countsForAvailability { adjustAvailability(peer.have, by: -1) }
        peers[id] = nil
        // Chunks pinned to this peer: a retry starts over, a WAN fetch may continue elsewhere.
        for chunk in active where progress[chunk]?.source == id {
            if progress[chunk]!.pin == .retry { restart(chunk) } else { progress[chunk]!.source = nil }
        }
    }

    /// The peer's have-set (its bitfield, haveAll or haveNone), replacing what it announced before.
    public mutating func peerHave(_ id: PeerID, _ bitfield: Bitfield) {
        precondition(bitfield.count == chunkLengths.count, "bitfield of \(bitfield.count) chunks for \(chunkLengths.count)")
        guard let peer = peers[id] else { return }
        if peer.countsForAvailability {
            adjustAvailability(peer.have, by: -1)
            adjustAvailability(bitfield, by: 1)
        }
        peers[id]!.have = bitfield
    }

    /// The peer announced one more chunk.
    public mutating func peerHas(_ id: PeerID, chunk: Int) {
        precondition(chunk >= 0 && chunk < chunkLengths.count, "chunk \(chunk) out of range")
        guard let peer = peers[id], !peer.have[chunk] else { return }
        peers[id]!.have[chunk] = true
        if peer.countsForAvailability { availability[chunk] += 1 }
    }

    /// Adopts a newer plan (a plan with a lower epoch than the current one is ignored).
    ///
    /// Outstanding requests stay outstanding; new requests follow the new plan. With a plan from
    /// ``SwarmPlan/removing(hosts:)`` only chunks of the removed hosts change hands.
    public mutating func updatePlan(_ newPlan: SwarmPlan) {
        precondition(newPlan.chunkCount == chunkLengths.count, "plan for \(newPlan.chunkCount) chunks")
        guard newPlan.epoch >= plan.epoch else { return }
        plan = newPlan
        wanRules = computeRules()
        for id in peers.keys {
            peers[id]!.wanCode = Self.wanCode(site: peers[id]!.site, isOrigin: peers[id]!.isOrigin, plan: plan)
        }
    }

    // MARK: Requests

    /// Up to `limit` new block requests to send to `id`, already recorded as outstanding.
    ///
    /// Empty for an unknown or banned peer. See the type's documentation for the rules.
    public mutating func nextRequests(for id: PeerID, limit: Int) -> [BlockRequest] {
        guard limit > 0, let peer = peers[id], !peer.banned else { return [] }
        var out: [BlockRequest] = []

        // 1. Finish what is started, oldest first.
        for chunk in active where out.count < limit {
            guard let state = progress[chunk], state.unrequested > 0, mayFetch(chunk, from: peer),
                state.pin == nil || state.source == nil || state.source == id || !sourceMayContinue(state.source!, chunk)
            else { continue }
            take(chunk, from: id, limit: limit, into: &out)
        }

        // 2. New chunks, rarest in the site first; keep the best `room` (each gives ≥ 1 block).
        let room = limit - out.count
        if room > 0 {
            var best: [(availability: Int, tie: UInt64, chunk: Int)] = []
            best.reserveCapacity(room + 1)
            // Chunks the peer has and we lack, a byte of the two bitfields at a time.
            let theirs = peer.have.bytes
            let ours = have.bytes
            for byte in theirs.indices where theirs[byte] & ~ours[byte] != 0 {
                var bits = theirs[byte] & ~ours[byte]
                while bits != 0 {
                    let bit = bits.leadingZeroBitCount
                    bits &= ~(0x80 >> UInt8(bit))
                    let chunk = byte << 3 | bit
                    guard !started[chunk], wanAllows(chunk, from: peer) else { continue }
                    let key = (availability: availability[chunk], tie: tieOrder[chunk], chunk: chunk)
                    if best.count == room, let worst = best.last, (worst.availability, worst.tie) <= (key.availability, key.tie) {
                        continue
                    }
                    let at = best.firstIndex { (key.availability, key.tie) < ($0.availability, $0.tie) } ?? best.count
                    best.insert(key, at: at)
                    if best.count > room { best.removeLast() }
                }
            }
            for entry in best where out.count < limit {
                started[entry.chunk] = true
                progress[entry.chunk] = Progress(blocks: blockCount(entry.chunk), order: nextOrder)
                nextOrder += 1
                active.append(entry.chunk)
                take(entry.chunk, from: id, limit: limit, into: &out)
            }
        }

        // 3. End game: duplicate outstanding blocks to in-site peers.
        if out.count < limit, openBlocks == 0, peer.inSite, endGameCopies > 1 {
            for chunk in active where out.count < limit && peer.have[chunk] && !pending.contains(chunk) {
                guard var state = progress[chunk], state.pin == nil else { continue }
                for index in 0..<state.blockCount where out.count < limit {
                    let requesters = state.requesters[index]
                    guard !state.received(index), !requesters.isEmpty, requesters.count < endGameCopies,
                        !requesters.contains(id)
                    else { continue }
                    state.requesters[index].append(id)
                    let request = block(chunk, index)
                    peers[id]!.outstanding.insert(request)
                    out.append(request)
                }
                progress[chunk] = state
            }
        }
        return out
    }

    /// The peer will not send a block we requested: it becomes requestable again (possibly from
    /// the same peer later). Ignored if the request is not outstanding at `id`.
    public mutating func requestRejected(by id: PeerID, _ request: BlockRequest) {
        guard peers[id]?.outstanding.remove(request) != nil else { return }
        forget(request, at: id)
    }

    /// Bans `host` for this bundle (the coordinator reported it, or one of its chunks failed
    /// here): its peers are never asked again, their outstanding requests become requestable
    /// elsewhere, they no longer count for availability, and the blocks it sent for chunks still
    /// being assembled are discarded and fetched again. A peer of that host that joins later joins
    /// banned.
    ///
    /// - Returns: The joined peers of that host (disconnect them).
    @discardableResult
    public mutating func ban(host: String) -> [PeerID] {
        bannedHosts.insert(host)
        let ids = peers.keys.filter { peers[$0]!.host == host }.sorted()
        for id in ids where !peers[id]!.banned {
            let peer = peers[id]!
            if peer.countsForAvailability { adjustAvailability(peer.have, by: -1) }
            peers[id]!.banned = true
            peers[id]!.outstanding = []
            for request in peer.outstanding { forget(request, at: id) }
        }
        for chunk in active {
            guard let hosts = progress[chunk]?.senderHost, hosts.values.contains(host) else { continue }
            discardBlocks(of: chunk) { hosts[$0] == host }
        }
        return ids
    }

    // MARK: Blocks and chunks

    /// A block we requested from `id` has arrived.
    ///
    /// A block that is not outstanding at `id` (cancelled, rejected, from a banned or unknown
    /// peer) changes nothing and returns `(nil, [])`; its bytes must not be used. Check with
    /// ``isOutstanding(_:at:)`` before copying them into the chunk being assembled.
    ///
    /// - Returns: `chunkComplete` is the chunk whose last block this was: check it against the
    ///   manifest, then call ``chunkVerified(_:)`` or ``chunkFailed(_:blame:)``. `cancels` are the
    ///   other requests for the same block (end game): send a cancel for each.
    public mutating func blockReceived(
        from id: PeerID, _ request: BlockRequest
    ) -> (chunkComplete: Int?, cancels: [Cancel]) {
        guard let host = peers[id]?.host, peers[id]!.outstanding.remove(request) != nil,
            let index = blockIndex(request), var state = progress[Int(request.chunk)]
        else { return (nil, []) }
        let chunk = Int(request.chunk)
        var cancels: [Cancel] = []
        for other in state.requesters[index].sorted() where other != id {
            peers[other]?.outstanding.remove(request)
            cancels.append((other, request))
        }
        state.requesters[index] = []
        precondition(!state.received(index), "block received twice")  // it was outstanding, so not received
        state.sender[index] = id
        state.receivedCount += 1
        state.senderHost[id] = host
        let complete = state.receivedCount == state.blockCount
        progress[chunk] = state
        if complete { pending.insert(chunk) }
        return (complete ? chunk : nil, cancels)
    }

    /// The chunk matched the manifest: we have it. Requests still outstanding for it (only if it
    /// was verified without all its blocks passing through the picker, e.g. found on disk) are
    /// returned as cancels.
    @discardableResult
    public mutating func chunkVerified(_ chunk: Int) -> [Cancel] {
        precondition(chunk >= 0 && chunk < chunkLengths.count, "chunk \(chunk) out of range")
        guard !have[chunk] else { return [] }
        have[chunk] = true
        pending.remove(chunk)
        var cancels: [Cancel] = []
        if let state = progress[chunk] {
            for (index, requesters) in state.requesters.enumerated() {
                let request = block(chunk, index)
                for peer in requesters.sorted() {
                    peers[peer]?.outstanding.remove(request)
                    cancels.append((peer, request))
                }
            }
            openBlocks -= state.unrequested
            progress[chunk] = nil
            started[chunk] = false
            active.removeAll { $0 == chunk }
        } else {
            openBlocks -= blockCount(chunk)
        }
        return cancels
    }

    /// The chunk reported by ``blockReceived(from:_:)`` did not match the manifest. All its blocks
    /// become requestable again, and the guilty peer is banned: `blame` if given, else the only
    /// peer that sent blocks of it. When several peers did and nobody is blamed, nobody is banned
    /// and the chunk is fetched from a single peer next time, so a repeat has a culprit.
    ///
    /// - Returns: The banned peer (its host is banned too): disconnect it with `goodbye(badChunk)`
    ///   and report it to the coordinator. `nil` if nobody was banned.
    @discardableResult
    public mutating func chunkFailed(_ chunk: Int, blame: PeerID?) -> PeerID? {
        guard pending.remove(chunk) != nil, let state = progress[chunk] else { return nil }
        let senders = Set(state.sender.compactMap { $0 })
        let culprit = blame ?? (senders.count == 1 ? senders.first : nil)
        let culpritHost = culprit.flatMap { peers[$0]?.host ?? state.senderHost[$0] }
        var fresh = Progress(blocks: state.blockCount, order: state.order)
        fresh.pin = culprit == nil ? .retry : nil
        progress[chunk] = fresh
        openBlocks += fresh.unrequested
        if let culpritHost { ban(host: culpritHost) }
        return culprit
    }

    // MARK: Internals

    private func blockCount(_ chunk: Int) -> Int {
        (chunkLengths[chunk] + blockSize - 1) / blockSize
    }

    private func block(_ chunk: Int, _ index: Int) -> BlockRequest {
        let offset = index * blockSize
        return BlockRequest(
            chunk: UInt32(chunk), offset: UInt32(offset), length: UInt32(min(blockSize, chunkLengths[chunk] - offset)))
    }

    /// The block index of `request` if it is exactly one of our blocks.
    private func blockIndex(_ request: BlockRequest) -> Int? {
        let chunk = Int(request.chunk)
        guard chunk < chunkLengths.count, Int(request.offset) % blockSize == 0 else { return nil }
        let index = Int(request.offset) / blockSize
        guard index < blockCount(chunk), block(chunk, index) == request else { return nil }
        return index
    }

    /// Whether the peer a chunk is pinned to may still be asked for it. A WAN source stops being
    /// allowed once the chunk is inside the site (an in-site peer got it first); the chunk must
    /// then continue from others, or it would wait forever for a source that may not serve it.
    private func sourceMayContinue(_ source: PeerID, _ chunk: Int) -> Bool {
        guard let peer = peers[source], !peer.banned else { return false }
        return mayFetch(chunk, from: peer)
    }

    /// Rules (a) and (b): the peer has it, we lack it, and the WAN rule allows asking this peer.
    private func mayFetch(_ chunk: Int, from peer: Peer) -> Bool {
        !have[chunk] && !pending.contains(chunk) && peer.have[chunk] && wanAllows(chunk, from: peer)
    }

    /// Rule (b) alone: in-site peers may serve anything; a WAN peer only a chunk we are the
    /// ingress host for, that it is the source of, and that is not inside the site yet.
    private func wanAllows(_ chunk: Int, from peer: Peer) -> Bool {
        peer.inSite || (availability[chunk] == 0 && wanRules[chunk] != Self.notIngress && wanRules[chunk] == peer.wanCode)
    }

    /// Requests the unrequested blocks of `chunk` from `id`, in order, until `out` holds `limit`.
    private mutating func take(_ chunk: Int, from id: PeerID, limit: Int, into out: inout [BlockRequest]) {
        guard var state = progress[chunk] else { return }
        for index in 0..<state.blockCount where out.count < limit {
            guard !state.received(index), state.requesters[index].isEmpty else { continue }
            state.requesters[index].append(id)
            state.unrequested -= 1
            openBlocks -= 1
            let request = block(chunk, index)
            peers[id]!.outstanding.insert(request)
            out.append(request)
        }
        if state.pin == nil && !peers[id]!.inSite { state.pin = .wan }
        if state.pin != nil && state.source == nil { state.source = id }
        progress[chunk] = state
    }

    /// Removes `id` from the requesters of `request` (already removed from the peer's set).
    private mutating func forget(_ request: BlockRequest, at id: PeerID) {
        guard let index = blockIndex(request), var state = progress[Int(request.chunk)] else { return }
        state.requesters[index].removeAll { $0 == id }
        if state.requesters[index].isEmpty && !state.received(index) {
            state.unrequested += 1
            openBlocks += 1
        }
        // The source has nothing outstanding for this chunk any more: unpin it from the source
        // unless a retry already holds blocks from it.
        if state.source == id && !state.requesters.contains(where: { $0.contains(id) })
            && (state.pin == .wan || state.receivedCount == 0) {
            state.source = nil
        }
        progress[Int(request.chunk)] = state
    }

    /// Drops the received blocks of a retried chunk whose source left (nothing is outstanding
    /// for it: the source was the only requester).
    private mutating func restart(_ chunk: Int) {
        discardBlocks(of: chunk) { _ in true }
        progress[chunk]?.source = nil
    }

    /// Drops the received blocks of `chunk` (not waiting for verification) whose sender matches.
    private mutating func discardBlocks(of chunk: Int, where sentBy: (PeerID) -> Bool) {
        guard var state = progress[chunk], !pending.contains(chunk) else { return }
        for index in 0..<state.blockCount {
            guard let sender = state.sender[index], sentBy(sender) else { continue }
            state.sender[index] = nil
            state.receivedCount -= 1
            if state.requesters[index].isEmpty {
                state.unrequested += 1
                openBlocks += 1
            }
        }
        progress[chunk] = state
    }

    private mutating func adjustAvailability(_ bitfield: Bitfield, by delta: Int) {
        guard !bitfield.isEmpty else { return }
        for chunk in 0..<bitfield.count where bitfield[chunk] { availability[chunk] += delta }
    }

    private func computeRules() -> [Int] {
        (0..<chunkLengths.count).map { chunk in
            guard plan.ingressHost(site: site, chunk: chunk) == me,
                let source = plan.wanSource(site: site, chunk: chunk)
            else { return Self.notIngress }
            switch source {
            case .origin: return Self.fromOrigin
            case .site(let home): return plan.sites.firstIndex(of: home) ?? Self.notIngress
            }
        }
    }

    private static func wanCode(site: String, isOrigin: Bool, plan: SwarmPlan) -> Int {
        isOrigin ? fromOrigin : plan.sites.firstIndex(of: site) ?? unknownSite
    }
}
