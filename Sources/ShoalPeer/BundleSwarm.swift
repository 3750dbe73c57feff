import Foundation
import NIOCore
import ShoalBundle
import ShoalCrypto
import ShoalStorage
import ShoalSwarm
import ShoalTLS
import ShoalWire

/// One bundle on one node: its connections, the picker, chunk assembly, the store and staging.
/// Lives on the node's event loop; nothing here is touched from another thread except through
/// `eventLoop.execute`.
final class BundleSwarm: @unchecked Sendable {
    // Invariant: used only on the node's event loop (the one background hop in `complete()` only
    // calls back through `loop.execute`).
    struct Connection {
        var handler: PeerConnectionHandler
        var session: PeerSession<ContinuousClock.Instant>
        var peer: FleetIdentity
        var pickerID: PeerID
        var established = false
    }

    let bundleID: String
    let manifest: SignedManifest
    private unowned let node: PeerNode
    private let source: ChunkSource
    private let store: ChunkStore?
    private var writer: StagingWriter?
    private var picker: PiecePicker?
    private var connections: [Int: Connection] = [:]
    private var nextConnectionID = 1
    private var assembly: [Int: [UInt8]] = [:]
    private var cache = VerifiedChunkCache(capacity: 8)
    private(set) var job: Job?
    private(set) var staged = false
    private(set) var stagingError: String?
    private var finishing = false
    private let isSeed: Bool
    let started = Date()
    private(set) var completedAt: Date?
    /// Peers this node refuses for this bundle (bad chunks), and why.
    private(set) var banned: [String: String] = [:]
    private let maxOutstanding: Int
    private let clock = ContinuousClock()
    private var wanInBytes: UInt64 = 0
    private var wanOutBytes: UInt64 = 0
    private var servedBytes: UInt64 = 0

    init(node: PeerNode, manifest: SignedManifest, source: ChunkSource, store: ChunkStore?, writer: StagingWriter?, isSeed: Bool, maxOutstanding: Int) {
        self.node = node
        self.manifest = manifest
        self.bundleID = manifest.bundleID.hex
        self.source = source
        self.store = store
        self.writer = writer
        self.isSeed = isSeed
        self.maxOutstanding = maxOutstanding
        if isSeed { completedAt = Date() }
    }

    var chunkCount: Int { manifest.manifest.frames.count }

    var have: Bitfield {
        var b = Bitfield(count: chunkCount)
        for i in 0..<chunkCount where source.has(i) { b[i] = true }
        return b
    }

    var isComplete: Bool { isSeed || (store?.isComplete ?? false) }

    var progress: BundleProgress {
        let held = isSeed ? chunkCount : (store?.heldCount ?? 0)
        let bytes = (0..<chunkCount).filter { source.has($0) }.reduce(UInt64(0)) { $0 + UInt64(manifest.manifest.frames[$1].storedLength) }
        var p = BundleProgress(bundleID: bundleID, have: held, total: chunkCount, bytes: bytes, complete: isComplete && (writer == nil || staged),
                               staged: staged, error: stagingError, wanInBytes: wanInBytes, wanOutBytes: wanOutBytes,
                               servedBytes: servedBytes, seconds: completedAt.map { $0.timeIntervalSince(started) })
        p.haveBits = Data(have.bytes).base64EncodedString()
        if p.complete { p.completedAt = completedAt?.timeIntervalSince1970 }
        return p
    }

    // MARK: jobs from the coordinator

    func update(job: Job) {
        self.job = job
        for host in job.banned where banned[host] == nil {
            banned[host] = "banned by the coordinator"
            picker?.ban(host: host)
        }
        let plan = SwarmPlan(chunkCount: chunkCount, origin: job.plan.origin, sites: job.plan.sites, down: Set(job.plan.down), epoch: UInt64(job.plan.epoch))
        if !isSeed {
            if picker == nil {
                picker = PiecePicker(me: node.identity.host, site: node.identity.site,
                                     chunkLengths: manifest.manifest.frames.map { Int($0.storedLength) }, plan: plan, have: have)
                for host in banned.keys { picker!.ban(host: host) }
            } else {
                picker!.updatePlan(plan)
            }
        }
        // Drop connections to banned hosts.
        for (id, c) in connections where banned[c.peer.host] != nil {
            c.handler.close(.init(.banned, "banned for bundle \(bundleID.prefix(12))"))
            detach(id)
        }
        pump()
    }

    /// Endpoints this node should dial: seeds and peers it has no connection to. Two peers dial
    /// each other only once: the one whose name sorts first dials; seeds never dial.
    func endpointsToDial() -> [PeerEndpoint] {
        guard let job, !isSeed, !isComplete || true else { return [] }
        let connected = Set(connections.values.map(\.peer.host))
        let me = node.identity.host
        return (job.seeds + job.peers).filter { ep in
            ep.host != me && !connected.contains(ep.host) && banned[ep.host] == nil && (ep.role == "seed" || me < ep.host)
        }
    }

    // MARK: connections

    func attach(_ handler: PeerConnectionHandler, peer: FleetIdentity, theirHello: Hello?) -> Int {
        let id = nextConnectionID
        nextConnectionID += 1
        let hello: Hello
        do {
            hello = try Hello(bundleID: manifest.bundleID, host: node.identity.host, site: node.identity.site,
                              listenPort: UInt16(node.listenPort), role: isSeed ? .seed : .peer)
        } catch {
            handler.close(nil)
            return id
        }
        if let reason = banned[peer.host] {
            handler.close(.init(.banned, reason))
            return id
        }
        let (session, actions) = PeerSession<ContinuousClock.Instant>.start(
            configuration: .init(hello: hello, chunkCount: chunkCount), localHave: have, now: clock.now)
        let pid = PeerID(id)
        connections[id] = Connection(handler: handler, session: session, peer: peer, pickerID: pid)
        perform(actions, on: id)
        if let theirHello { received(.hello(theirHello), from: id) }
        return id
    }

    func detach(_ id: Int) {
        guard let c = connections.removeValue(forKey: id) else { return }
        picker?.peerLeft(c.pickerID)
        pump()
    }

    func received(_ message: Message, from id: Int) {
        guard var c = connections[id] else { return }
        let actions = c.session.receive(message, now: clock.now)
        connections[id] = c
        perform(actions, on: id)
        pump()
    }

    func decodingFailed(_ error: WireError, from id: Int) {
        guard var c = connections[id] else { return }
        node.log("peer \(c.peer.host): \(error)")
        let actions = c.session.decodingFailed(error, now: clock.now)
        connections[id] = c
        perform(actions, on: id)
    }

    private var lastStallReport = Date.distantPast

    /// Logs, at most every 5 s, why nothing is being requested while chunks are missing.
    private func reportStall() {
        guard let picker, !isComplete, Date().timeIntervalSince(lastStallReport) > 5 else { return }
        let outstanding = connections.values.reduce(0) { $0 + $1.session.ourRequests.count }
        guard outstanding == 0 else { return }
        lastStallReport = Date()
        let missing = (0..<chunkCount).filter { !source.has($0) }
        let peers = connections.values.map { c in
            "\(c.peer.host)@\(c.peer.site)[\(c.established ? "up" : "hs"), has \(missing.filter { c.session.peerHave.contains(UInt32($0)) }.count) of missing, picker-outstanding \(picker.outstandingCount(for: c.pickerID))]"
        }
        node.log("stalled: missing chunks \(missing.prefix(8)), assembling \(assembly.keys.sorted().prefix(8)), peers \(peers.joined(separator: " "))")
    }

    func tick() {
        reportStall()
        for id in Array(connections.keys) {
            guard var c = connections[id] else { continue }
            let actions = c.session.tick(now: clock.now)
            connections[id] = c
            perform(actions, on: id)
        }
        pump()
    }

    private func perform(_ actions: [PeerSession<ContinuousClock.Instant>.Action], on id: Int) {
        guard let c = connections[id] else { return }
        for action in actions {
            switch action {
            case .send(let message):
                c.handler.send(message)
            case .close(let reason):
                c.handler.flush()
                c.handler.close(nil)
                if reason.goodbye.reason != .normal { node.log("peer \(c.peer.host): \(reason)") }
                detach(id)
                return
            case .established(let hello):
                // The hello must agree with the certificate: a peer cannot claim another site.
                guard hello.host == c.peer.host, hello.site == c.peer.site else {
                    node.log("peer \(c.peer.host)@\(c.peer.site) claimed \(hello.host)@\(hello.site): refused")
                    c.handler.close(.init(.protocolError, "hello contradicts the certificate"))
                    detach(id)
                    return
                }
                connections[id]?.established = true
                picker?.peerJoined(c.pickerID, host: hello.host, site: hello.site, isOrigin: hello.role == .seed)
                // Catch up on chunks verified since this session's have-set was sent.
                if var conn = connections[id] {
                    var catchUp: [PeerSession<ContinuousClock.Instant>.Action] = []
                    for i in 0..<chunkCount where source.has(i) && !conn.session.localHave[i] {
                        catchUp += conn.session.announce(chunk: UInt32(i), now: clock.now)
                    }
                    connections[id] = conn
                    for case .send(let m) in catchUp { conn.handler.send(m) }
                }
            case .peerHaveSet(let bits):
                picker?.peerHave(c.pickerID, bits)
            case .peerHas(let chunk):
                picker?.peerHas(c.pickerID, chunk: Int(chunk))
            case .deliverPiece(let piece):
                deliver(piece, from: id)
            case .requestRejected(let block):
                picker?.requestRejected(by: c.pickerID, block)
            case .serve(let block):
                serve(block, to: id)
            case .cancelServe:
                break
            }
        }
        c.handler.flush()
    }

    /// Serves waiting for credit under the node's upload caps, in arrival order.
    private var shapedServes: [(connection: Int, block: BlockRequest)] = []

    private func serve(_ block: BlockRequest, to id: Int) {
        guard let c = connections[id] else { return }
        let offSite = c.peer.site != node.identity.site
        if !shapedServes.isEmpty || node.shaper.sendDelay(offSite: offSite, now: node.now) > 0 {
            shapedServes.append((id, block))
            drainShapedServes()
            return
        }
        serveNow(block, to: id)
    }

    /// Serves what the caps allow now, and sets a wake-up for the rest.
    private func drainShapedServes() {
        while let (id, block) = shapedServes.first {
            guard let c = connections[id], c.session.peerRequests.contains(block) else {
                shapedServes.removeFirst()  // the connection went away, or the peer cancelled
                continue
            }
            let wait = node.shaper.sendDelay(offSite: c.peer.site != node.identity.site, now: node.now)
            if wait > 0 { return node.wake(after: wait) }
            shapedServes.removeFirst()
            serveNow(block, to: id)
        }
    }

    /// Deferred work after a wake-up: shaped serves, then requests.
    func resumeShaped() {
        drainShapedServes()
        pump()
    }

    private func serveNow(_ block: BlockRequest, to id: Int) {
        guard var c = connections[id] else { return }
        let index = Int(block.chunk)
        var actions: [PeerSession<ContinuousClock.Instant>.Action]
        if index < chunkCount, source.has(index), let bytes = try? cache.get(index, from: source),
            Int(block.offset) + Int(block.length) <= bytes.count {
            var slice = Array(bytes[Int(block.offset)..<Int(block.offset) + Int(block.length)])
            if node.configuration.corruptServing, !slice.isEmpty { slice[slice.count / 2] ^= 0x5A }
            actions = c.session.pieceReady(for: block, bytes: slice, now: clock.now)
            servedBytes += UInt64(slice.count)
            if c.peer.site != node.identity.site { wanOutBytes += UInt64(slice.count) }
            node.shaper.sent(slice.count, offSite: c.peer.site != node.identity.site, now: node.now)
        } else {
            actions = c.session.decline(block, now: clock.now)
        }
        connections[id] = c
        perform(actions, on: id)
    }

    private func deliver(_ piece: Piece, from id: Int) {
        guard var picker, let c = connections[id] else { return }
        // Bytes of a block that is no longer outstanding (cancelled, rejected) are not used.
        guard picker.isOutstanding(piece.request, at: c.pickerID) else { return }
        let index = Int(piece.chunk)
        let length = Int(manifest.manifest.frames[index].storedLength)
        let end = Int(piece.offset) + piece.bytes.count
        guard end <= length else { return }
        if assembly[index] == nil { assembly[index] = [UInt8](repeating: 0, count: length) }
        assembly[index]!.replaceSubrange(Int(piece.offset)..<end, with: piece.bytes)
        if c.peer.site != node.identity.site { wanInBytes += UInt64(piece.bytes.count) }
        let (completed, cancels) = picker.blockReceived(from: c.pickerID, piece.request)
        self.picker = picker
        sendCancels(cancels)
        if let completed { chunkAssembled(completed) }
    }

    private func sendCancels(_ cancels: [(PeerID, BlockRequest)]) {
        for (pid, block) in cancels {
            guard let (cid, other) = connections.first(where: { $0.value.pickerID == pid }) else { continue }
            var o = other
            let actions = o.session.cancel(block, now: clock.now)
            connections[cid] = o
            perform(actions, on: cid)
        }
    }

    /// Checks, stores and stages assembled chunks off the event loop, one at a time in order, so
    /// the loop keeps moving blocks while SHA-256, the store write and the staging hand-off (which
    /// may wait for the writer) run.
    private let worker = DispatchQueue(label: "shoal.chunk-worker")
    /// Chunks handed to the worker and not yet reported back (bounded: `pump` stops asking for
    /// more beyond `maxChunksInWorker`, which bounds the memory they hold).
    private var chunksInWorker = 0
    private let maxChunksInWorker = 6

    private enum ChunkOutcome: Sendable {
        case stored
        case corrupt(BundleError)
        case failed(String)
    }

    private func chunkAssembled(_ index: Int) {
        guard let bytes = assembly.removeValue(forKey: index), let store else { return }
        let writer = self.writer, manifest = self.manifest.manifest, loop = node.eventLoop
        chunksInWorker += 1
        worker.async { [self] in
            let outcome: ChunkOutcome
            do {
                try bytes.withUnsafeBytes { raw in
                    // Checked once against the manifest; the store and the writer accept the proof.
                    let check = try verifyStoredChunk(raw, index: index, manifest: manifest)
                    _ = try store.put(index, raw, checked: check)
                    if let writer { try writer.write(chunk: index, stored: raw, checked: check) }
                }
                outcome = .stored
            } catch let error as BundleError {
                outcome = .corrupt(error)
            } catch {
                outcome = .failed("\(error)")
            }
            loop.execute { [self] in
                chunksInWorker -= 1
                chunkChecked(index, outcome)
                pump()
            }
        }
    }

    private func chunkChecked(_ index: Int, _ outcome: ChunkOutcome) {
        switch outcome {
        case .stored:
            if let cancels = picker?.chunkVerified(index) { sendCancels(cancels) }
            // Every connection, also those whose hello has not arrived yet: their have-set was
            // sent before this chunk, and a peer that never hears of it may wait for it forever.
            for (cid, var c) in connections {
                let actions = c.session.announce(chunk: UInt32(index), now: clock.now)
                connections[cid] = c
                perform(actions, on: cid)
            }
            // Not before the worker is idle: the last chunk put may still be in the writer's hands.
            if store?.isComplete == true && chunksInWorker == 0 { complete() }
        case .corrupt(let error):
            // The chunk does not match the signed manifest: whoever sent it is banned and reported.
            let culprit = picker?.chunkFailed(index, blame: nil)
            node.log("chunk \(index) failed its check: \(error)")
            if let culprit, let (cid, c) = connections.first(where: { $0.value.pickerID == culprit }) {
                banned[c.peer.host] = "sent a corrupt chunk \(index)"
                node.log("peer \(c.peer.host) sent a corrupt chunk \(index): banned for this bundle, reported to the coordinator")
                node.reportBadPeer(bundleID: bundleID, peer: c.peer.host, reason: "chunk \(index): \(error)")
                c.handler.close(.init(.badChunk, "chunk \(index) does not match the manifest"))
                detach(cid)
            }
        case .failed(let message):
            stagingError = message
            node.log("bundle \(bundleID.prefix(12)): \(message)")
        }
    }

    private func complete() {
        guard !finishing else { return }
        finishing = true
        try? store?.sync()
        guard let writer else {
            completedAt = Date()
            node.log("bundle \(bundleID.prefix(12)) complete (\(chunkCount) chunks)")
            // Said at once, as a staged completion is: a rollout waits for exactly this.
            node.announceNow()
            return
        }
        let loop = node.eventLoop
        DispatchQueue.global().async { [self] in
            let result = Result { try writer.finish() }
            loop.execute { [self] in
                switch result {
                case .success:
                    staged = true
                    completedAt = Date()
                    node.log("bundle \(bundleID.prefix(12)) complete and staged (image SHA-256 verified)")
                case .failure(let error):
                    stagingError = "\(error)"
                    node.log("bundle \(bundleID.prefix(12)): staging failed: \(error)")
                }
                self.writer = nil
                node.announceNow()
            }
        }
    }

    /// Sends new requests where the picker allows.
    func pump() {
        guard var picker, !isComplete, chunksInWorker < maxChunksInWorker else { return }
        for (id, c) in connections where c.established {
            let outstanding = c.session.ourRequests.count
            guard outstanding < maxOutstanding else { continue }
            let wait = node.shaper.receiveDelay(offSite: c.peer.site != node.identity.site, now: node.now)
            if wait > 0 {
                node.wake(after: wait)
                continue
            }
            let requests = picker.nextRequests(for: c.pickerID, limit: maxOutstanding - outstanding)
            guard !requests.isEmpty else { continue }
            var conn = c
            var actions: [PeerSession<ContinuousClock.Instant>.Action] = []
            let offSite = c.peer.site != node.identity.site
            for (n, r) in requests.enumerated() {
                // Receiving is paced by asking: no credit under the download caps, no request.
                let wait = node.shaper.receiveDelay(offSite: offSite, now: node.now)
                if wait > 0 {
                    for later in requests[n...] { picker.requestRejected(by: c.pickerID, later) }
                    node.wake(after: wait)
                    break
                }
                // A block cancelled earlier stays in the session until the peer answers it; asking
                // again before that would be a protocol misuse, so give it back to the picker.
                guard conn.session.ourRequests[r] == nil, conn.session.peerHave.contains(r.chunk) else {
                    picker.requestRejected(by: c.pickerID, r)
                    continue
                }
                actions += conn.session.request(r, now: clock.now)
                node.shaper.requested(Int(r.length), offSite: offSite, now: node.now)
            }
            connections[id] = conn
            perform(actions, on: id)
        }
        self.picker = picker
    }

    func closeAll() {
        for (_, c) in connections { c.handler.close(.init(.shuttingDown)) }
        connections.removeAll()
    }
}
