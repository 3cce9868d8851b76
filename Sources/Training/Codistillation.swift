import Checkpoint
import Cluster
import Engine
import Foundation
import NN
import RunConfig

/// Codistillation (Anil et al. 2018): everything a training step does with the other groups.
///
/// A step calls, in order:
/// 1. `beforeStep(step:)`. From the end of burn-in on, every `exchangeEvery` steps, the group
///    leader publishes this group's weights and reads the freshest snapshot of every peer it
///    follows, never waiting for a peer to reach any step; new snapshots are broadcast inside the
///    group. At the end of burn-in the SGD weight decay may switch (`weightDecayAfterBurnIn`).
/// 2. `distillationTerm(logits:images:step:)`. After burn-in the loss gains
///    `w * T^2 * CE(mean of the peers' softmax(z/T), softmax(z_own/T))`, w ramped linearly over
///    `distillRamp` steps; the T^2 keeps gradient sizes independent of T.
/// 3. `takeMetrics(at:)` for the metrics row: peer age and the time spent exchanging and
///    running the peers' forward passes since the last row.
/// A lock-step exchange given up because the run is stopping (`Codistillation.stopAsked`).
struct ExchangeInterrupted: Error {}

final class Codistillation {
    /// A peer group as this group knows it: a model holding its latest snapshot.
    struct Peer {
        /// Group number (MPI windows) or publisher name (files), for the log.
        let name: String
        let model: Module
        let store: ParameterStore
        /// The snapshot held (nil until the first one arrives).
        var stamp: SnapshotStamp?
        /// The newest snapshot read, held or refused as collapsed (not read again).
        var seen: SnapshotStamp?
        /// Its last snapshot was collapsed (logged once until a healthy one arrives).
        var collapsed = false
        /// Its snapshot is older than --max-peer-age (logged once until a fresh one arrives).
        var expired = false
        /// The snapshot arrived and its predictions have not been checked yet (at its first use).
        var unchecked = false
        /// The held snapshot before the newest arrived, with its stamp: what the group goes back
        /// to when the newest predicts far worse (allocated at the first arrival).
        var previous: [Float] = []
        var previousStamp: SnapshotStamp?
        /// Its last checked snapshot was refused by the prediction guard (logged once until
        /// one passes).
        var diverged = false
    }

    let config: TrainConfig
    let group: Collectives
    let groupIndex: Int
    let spec: ModelSpec
    let store: ParameterStore
    /// Nil on ranks that never publish or read (group members of the file exchange).
    let transport: SnapshotTransport?
    let log: (String) -> Void
    var peers: [Peer] = []
    /// Where a fetched snapshot lands until it is known to be healthy, so a collapsed one never
    /// replaces the last healthy snapshot of a peer.
    lazy var arrival: Peer? = try? makePeer(name: "arrival")
    var exchangeSeconds = 0.0, peerForwardSeconds = 0.0
    /// This group's last two publications (the leader's), publication k in slot k % 2 as in the
    /// MPI window, kept for checkpoints; written in place, so publishing allocates nothing.
    var published: [(stamp: SnapshotStamp?, values: [Float])] = []
    /// Whether the run is asked to stop (a signal, another group's stop): a lock-step wait for a
    /// peer gives up then, since that peer may itself have stopped before publishing.
    var stopAsked: () -> Bool = { false }
    /// The group's recent training loss and accuracy, published with each snapshot.
    var recentHealth: () -> SnapshotHealth? = { nil }

    init(config: TrainConfig, group: Collectives, groupIndex: Int, spec: ModelSpec, store: ParameterStore,
         transport: SnapshotTransport?, log: @escaping (String) -> Void) {
        self.config = config; self.group = group; self.groupIndex = groupIndex; self.spec = spec
        self.store = store; self.transport = transport; self.log = log
    }

    /// Called once on every rank at the end (the MPI window's teardown is collective).
    func close() { transport?.close() }

    // MARK: 1. Exchange schedule, burn-in gate, weight decay after burn-in

    /// Exchanges start at the end of burn-in: a snapshot taken earlier (at step 0, a random
    /// initialisation) would pull the others towards uninformed predictions until the next
    /// exchange (measured: with exchanges every 1000 steps the final test loss doubled).
    func isExchangeStep(_ step: Int) -> Bool {
        step >= config.burnIn && (step - config.burnIn) % config.exchangeEvery == 0
    }

    /// The publication number of exchange step `step`: 1 at the end of burn-in, +1 per exchange.
    func sequence(at step: Int) -> UInt64 { UInt64((step - config.burnIn) / config.exchangeEvery + 1) }

    func beforeStep(_ step: Int, optimizer: Optimizer) throws {
        let start = monotonicSeconds()
        if isExchangeStep(step) {
            try exchange(step: step)
            exchangeSeconds += monotonicSeconds() - start
        } else if config.exchangeMode == .async, step > config.burnIn, isExchangeStep(step - 1) {
            // Reads started at the exchange step have normally arrived one step later.
            collect(step: step)
            exchangeSeconds += monotonicSeconds() - start
        }
        transport?.progress()
        // Sodhani et al. 2020: distillation regularises, so explicit decay can be relaxed once it
        // starts. Set at every step past burn-in, so a run resumed after burn-in keeps it.
        if config.weightDecayAfterBurnIn >= 0, step >= config.burnIn, let sgd = optimizer as? SGD {
            sgd.weightDecay = config.weightDecayAfterBurnIn
        }
    }

    /// Every rank of the group calls this at the same step.
    ///
    /// Asynchronous: the leader publishes and takes whatever peer snapshots have arrived,
    /// starting new reads, never waiting. Lock-step: every group uses the peers' snapshots of
    /// exactly step s - N at exchange step s (of step s at the first one, the end of burn-in),
    /// waiting only while a peer has not published it yet, so a run is reproducible bit for bit.
    /// A group takes the peers' s - N before publishing its own s, so the two window slots
    /// always hold what a slower peer still has to read.
    func exchange(step: Int) throws {
        guard config.exchangeMode == .lockstep else {
            if group.rank == 0 { try publishOwn(step: step) }
            collect(step: step)
            return
        }
        var fresh = [UInt8](repeating: 0, count: peers.count)
        var interrupted = false
        if group.rank == 0, let transport {
            discoverPeers(&fresh)
            let wanted = step == config.burnIn ? sequence(at: step) : sequence(at: step - config.exchangeEvery)
            if step == config.burnIn { try publishOwn(step: step) }
            for i in peers.indices where peers[i].seen?.version != wanted {
                guard try awaitExact(peer: i, sequence: wanted, step: step, transport: transport, fresh: &fresh) else {
                    interrupted = true
                    break
                }
            }
            if step != config.burnIn && !interrupted { try publishOwn(step: step) }
        }
        if group.size > 1 { interrupted = group.broadcastDoubles([interrupted ? 1 : 0], root: 0)[0] != 0 }
        if interrupted { throw ExchangeInterrupted() }
        finishExchange(step: step, fresh: &fresh)
    }

    /// The leader takes what has arrived from every peer; the group learns of it.
    func collect(step: Int) {
        var fresh = [UInt8](repeating: 0, count: peers.count)
        if group.rank == 0, let transport {
            discoverPeers(&fresh)
            for i in peers.indices {
                guard let arrival = arrival?.store else { break }
                let outcome = transport.fetch(peer: peers[i].name, into: arrival, after: peers[i].seen ?? peers[i].stamp)
                if case .unchanged = outcome, let held = peers[i].stamp,
                   let age = transport.secondsSinceLastPublication(peer: peers[i].name), age > 60 {
                    log("[group \(groupIndex)] step \(step): peer \(peers[i].name) has published nothing for \(Int(age)) s; keeping its snapshot from its step \(held.step)")
                }
                accept(outcome, peer: i, step: step, fresh: &fresh)
            }
        }
        finishExchange(step: step, fresh: &fresh)
    }

    /// This group's snapshot of `step`, published (leader only). A collapsed model is not
    /// published: the peers keep its last healthy snapshot; in lock-step they would wait for it,
    /// so the group stops instead.
    func publishOwn(step: Int) throws {
        guard let transport else { return }
        guard store.isFinite else {
            if config.exchangeMode == .lockstep {
                throw TrainingError("[group \(groupIndex)] step \(step): own weights are not finite; the lock-step peers cannot go on without this group's snapshot: resume from the last good checkpoint with a lower --lr")
            }
            log("[group \(groupIndex)] step \(step): own weights are not finite; not publishing them")
            return
        }
        let stamp = SnapshotStamp(version: sequence(at: step), step: step, health: recentHealth())
        let slot = publicationSlot(stamp.version)
        published[slot].stamp = stamp
        published[slot].values.withUnsafeMutableBufferPointer { store.writeSnapshot(to: $0.baseAddress!) }
        published[slot].values.withUnsafeBufferPointer { transport.publish($0, stamp: stamp) }
    }

    /// Slot of publication `sequence` in `published` (allocated on first use).
    func publicationSlot(_ sequence: UInt64) -> Int {
        if published.isEmpty {
            published = Array(repeating: (nil, [Float](repeating: 0, count: store.snapshotCount)), count: 2)
        }
        return Int(sequence % 2)
    }

    /// Lock-step: waits (polling, letting MPI progress) until peer `i`'s publication `sequence`
    /// has arrived, at most --peer-timeout seconds; false when a stop was asked for meanwhile.
    func awaitExact(peer i: Int, sequence: UInt64, step: Int, transport: SnapshotTransport, fresh: inout [UInt8]) throws -> Bool {
        guard let arrival = arrival?.store else { return true }
        let deadline = monotonicSeconds() + Double(config.peerTimeout)
        while true {
            if let outcome = transport.fetchExact(peer: peers[i].name, sequence: sequence, into: arrival) {
                accept(outcome, peer: i, step: step, fresh: &fresh)
                // A refused copy (torn or corrupted) is not waited for again: the group keeps
                // the peer's previous snapshot, as every rerun of the same fault would.
                if case .refused = outcome { peers[i].seen = SnapshotStamp(version: sequence, step: -1) }
                return true
            }
            if stopAsked() { return false }
            if monotonicSeconds() > deadline {
                throw TrainingError("[group \(groupIndex)] step \(step): peer \(peers[i].name) has not published its snapshot number \(sequence) within --peer-timeout \(config.peerTimeout) s: it is stuck or far slower; check its log, or raise --peer-timeout")
            }
            transport.progress()
            usleep(200)
        }
    }

    /// Peers the transport knows of that this group does not yet (a directory's publishers
    /// appear over time).
    func discoverPeers(_ fresh: inout [UInt8]) {
        guard let transport else { return }
        for name in transport.peerNames() where !peers.contains(where: { $0.name == name }) {
            if let p = try? makePeer(name: name) { peers.append(p); fresh.append(0) }
        }
    }

    /// What a read of peer `i` brought: a healthy snapshot replaces the held one; a collapsed
    /// (non-finite) or refused one is logged once and the held one kept.
    func accept(_ outcome: FetchOutcome, peer i: Int, step: Int, fresh: inout [UInt8]) {
        guard let arrival = arrival?.store else { return }
        switch outcome {
        case .fresh(let stamp) where !arrival.isFinite:
            peers[i].seen = stamp
            guard !peers[i].collapsed else { break }
            peers[i].collapsed = true
            log("[group \(groupIndex)] step \(step): peer \(peers[i].name) snapshot refused (non-finite weights from its step \(stamp.step): a collapsed model); "
                + (peers[i].stamp.map { "keeping its snapshot from its step \($0.step)" } ?? "no snapshot of it yet"))
        case .fresh(let stamp):
            keepPrevious(i)
            peers[i].store.copy(from: arrival)
            peers[i].stamp = stamp
            peers[i].seen = stamp
            peers[i].collapsed = false
            peers[i].expired = false
            fresh[i] = 1
        case .refused(let reason):
            log("[group \(groupIndex)] step \(step): peer \(peers[i].name) snapshot refused (\(reason)); "
                + (peers[i].stamp.map { "keeping its snapshot from its step \($0.step)" } ?? "no snapshot of it yet"))
        case .unchanged:
            break
        }
    }

    /// After the leader's reads: the --max-peer-age check, the group's broadcast, the log.
    func finishExchange(step: Int, fresh: inout [UInt8]) {
        if config.maxPeerAge > 0, group.rank == 0 {
            for i in peers.indices where !peers[i].expired {
                guard let held = peers[i].stamp, step - held.step > config.maxPeerAge else { continue }
                peers[i].expired = true
                log("[group \(groupIndex)] step \(step): peer \(peers[i].name) snapshot from its step \(held.step) is older than --max-peer-age \(config.maxPeerAge); not distilling from it until a newer one arrives")
            }
        }
        if group.size > 1 { shareWithGroup(&fresh) }
        for i in peers.indices where fresh[i] == 1 { peers[i].unchecked = true }
        if group.rank == 0 {
            for (i, p) in peers.enumerated() where fresh[i] == 1 {
                log("[group \(groupIndex)] step \(step): peer \(p.name) snapshot version \(p.stamp!.version) from its step \(p.stamp!.step)"
                    + (p.stamp!.health.map { " (\($0.summary))" } ?? ""))
            }
        }
    }

    // MARK: Exchange state in checkpoints

    /// What a checkpoint keeps: this group's last two publications and the peer snapshots held.
    func exchangeState() -> [ExchangeSnapshot] {
        var out = published.compactMap { slot in
            slot.stamp.map { ExchangeSnapshot(role: .published, name: "self", sequence: $0.version, step: $0.step, values: slot.values) }
        }.sorted { $0.sequence < $1.sequence }
        for p in peers {
            guard let stamp = p.stamp else { continue }
            out.append(ExchangeSnapshot(role: .peer, name: p.name, sequence: stamp.version, step: stamp.step, values: p.store.snapshot()))
        }
        return out
    }

    /// On resume (every rank): the peer snapshots the group distilled from come back as they
    /// were, and the leader publishes its last two snapshots again, so peers that resumed from
    /// their own checkpoints find what they were about to read.
    func restore(_ snapshots: [ExchangeSnapshot]) throws {
        for s in snapshots where s.role == .peer {
            var i = peers.firstIndex { $0.name == s.name }
            if i == nil { peers.append(try makePeer(name: s.name)); i = peers.count - 1 }
            guard s.values.count == peers[i!].store.snapshotCount else {
                throw TrainingError("the checkpoint's snapshot of peer \(s.name) holds \(s.values.count) values, the model \(peers[i!].store.snapshotCount): it belongs to another model")
            }
            s.values.withUnsafeBufferPointer { peers[i!].store.readSnapshot(from: $0.baseAddress!) }
            peers[i!].stamp = SnapshotStamp(version: s.sequence, step: s.step)
            peers[i!].seen = peers[i!].stamp
        }
        let own = snapshots.filter { $0.role == .published && $0.values.count == store.snapshotCount }
            .sorted { $0.sequence < $1.sequence }.suffix(2)
        for s in own {
            let stamp = SnapshotStamp(version: s.sequence, step: s.step)
            published[publicationSlot(s.sequence)] = (stamp, s.values)
            if group.rank == 0 { s.values.withUnsafeBufferPointer { transport?.publish($0, stamp: stamp) } }
        }
    }

    /// The leader's view of the peers, broadcast: how many (a directory's publishers appear over
    /// time), which changed and their stamps, then only the changed weights.
    func shareWithGroup(_ fresh: inout [UInt8]) {
        let count = Int(group.broadcastDoubles([Double(peers.count)], root: 0)[0])
        while peers.count < count {
            if let p = try? makePeer(name: "peer \(peers.count)") { peers.append(p) } else { break }
        }
        if fresh.count < count { fresh += [UInt8](repeating: 0, count: count - fresh.count) }
        fresh = group.broadcast(fresh, root: 0)
        let stamps = group.broadcastDoubles(peers.flatMap { [Double($0.stamp?.version ?? 0), Double($0.stamp?.step ?? 0)] }, root: 0)
        for i in peers.indices {
            // The leader kept its previous snapshot when it accepted the new one.
            if fresh[i] == 1 && group.rank != 0 { keepPrevious(i) }
            let version = UInt64(stamps[2 * i])
            // The leader keeps its stamps as read (with the peer's health record, for its log).
            if group.rank != 0 { peers[i].stamp = version > 0 ? SnapshotStamp(version: version, step: Int(stamps[2 * i + 1])) : nil }
            guard fresh[i] == 1 else { continue }
            group.broadcast(peers[i].store.values, count: peers[i].store.trainableCount, root: 0)
            group.broadcast(peers[i].store.buffers, count: peers[i].store.bufferCount, root: 0)
        }
    }

    /// Saves peer `i`'s held snapshot and stamp before a new one replaces it.
    func keepPrevious(_ i: Int) {
        guard peers[i].stamp != nil else { return }
        if peers[i].previous.isEmpty { peers[i].previous = [Float](repeating: 0, count: peers[i].store.snapshotCount) }
        let store = peers[i].store
        peers[i].previous.withUnsafeMutableBufferPointer { store.writeSnapshot(to: $0.baseAddress!) }
        peers[i].previousStamp = peers[i].stamp
    }

    func makePeer(name: String) throws -> Peer {
        let model = try Models.make(spec)
        model.eval()
        return Peer(name: name, model: model, store: ParameterStore(model: model, seed: 0))
    }

    // MARK: 2. Weight ramp, peer targets, the distillation term

    /// Distillation weight at `step`: 0 during burn-in, then `distillWeight`, reached linearly
    /// over `distillRamp` steps if that is set.
    func weight(at step: Int) -> Float {
        guard step >= config.burnIn else { return 0 }
        guard config.distillRamp > 0 else { return config.distillWeight }
        return config.distillWeight * min(1, Float(step - config.burnIn + 1) / Float(config.distillRamp))
    }

    /// The weighted term to add to the loss, and the unweighted soft-target cross-entropy to
    /// report; nil during burn-in and while no peer snapshot has arrived.
    func distillationTerm(logits: Tensor, images: Tensor, labels: [Int], step: Int) -> (term: Tensor, reported: Double)? {
        let w = weight(at: step)
        guard w > 0 else { return nil }
        let start = monotonicSeconds()
        defer { peerForwardSeconds += monotonicSeconds() - start }
        checkNewSnapshots(images, labels: labels, step: step)
        guard let targets = peerPrediction(images, step: step) else { return nil }
        let t = config.temperature
        let ce = softTargetCrossEntropy(logits, targets: targets, temperature: t)
        return (scale(ce, w * t * t), Double(ce.scalar))
    }

    /// The prediction guard. A snapshot that arrived is checked at its first use on this step's
    /// batch, against the peer's previous snapshot on the same batch (a paired comparison: one
    /// hard batch must not look like a collapse): it is refused when its mean cross-entropy is
    /// worse than chance (above ln C, the loss of a uniform guess over C classes) or far worse
    /// than the previous snapshot's (3 times it and 1 nat more), i.e. a peer that diverged with
    /// finite weights. Losses are summed over the group's ranks, so every rank decides alike.
    /// The group then goes back to the previous snapshot (or, with none, distils from the peer
    /// no more until a healthy one arrives), logs it once, and carries on.
    func checkNewSnapshots(_ images: Tensor, labels: [Int], step: Int) {
        for i in peers.indices where peers[i].unchecked {
            peers[i].unchecked = false
            func loss(_ model: Module) -> Double {
                withNoGrad { Double(crossEntropy(model(images), labels: labels).scalar) * Double(labels.count) }
            }
            var mine = [loss(peers[i].model), 0, Double(labels.count)]
            let hasPrevious = peers[i].previousStamp != nil && !peers[i].previous.isEmpty
            if hasPrevious, let scratch = arrival {
                peers[i].previous.withUnsafeBufferPointer { scratch.store.readSnapshot(from: $0.baseAddress!) }
                mine[1] = loss(scratch.model)
            }
            let sums = group.allreduceSum(mine)
            let new = sums[0] / max(1, sums[2]), old = sums[1] / max(1, sums[2])
            let chance = Foundation.log(Double(spec.classes))
            let worseThanChance = !(new <= chance)
            let farWorse = hasPrevious && new > max(3 * old, old + 1)
            guard worseThanChance || farWorse else {
                peers[i].diverged = false
                continue
            }
            let why = worseThanChance ? String(format: "its loss on this group's batch is %.3g, worse than chance (%.3g)", new, chance)
                : String(format: "its loss on this group's batch is %.3g, far worse than %.3g of its previous snapshot", new, old)
            let refused = peers[i].stamp
            if hasPrevious {
                let store = peers[i].store
                peers[i].previous.withUnsafeBufferPointer { store.readSnapshot(from: $0.baseAddress!) }
                peers[i].stamp = peers[i].previousStamp
            } else {
                peers[i].stamp = nil
            }
            peers[i].previousStamp = nil
            if group.rank == 0 && !peers[i].diverged {
                log("[group \(groupIndex)] step \(step): peer \(peers[i].name) snapshot from its step \(refused?.step ?? -1) refused (\(why): a diverged model); "
                    + (peers[i].stamp.map { "keeping its snapshot from its step \($0.step)" } ?? "not distilling from it until a healthy one arrives"))
            }
            peers[i].diverged = true
        }
    }

    /// The peers' mean predicted probabilities at temperature T on `images` (no gradient), or nil
    /// while no peer has a usable snapshot (none yet, or all older than --max-peer-age).
    func peerPrediction(_ images: Tensor, step: Int) -> Tensor? {
        let ready = peers.filter { p in
            guard let s = p.stamp else { return false }
            return config.maxPeerAge == 0 || step - s.step <= config.maxPeerAge
        }
        guard !ready.isEmpty else { return nil }
        return withNoGrad {
            var mean: Tensor? = nil
            for p in ready {
                let probs = softmax(p.model(images), temperature: config.temperature)
                if let m = mean { for i in 0..<m.count { m.data[i] += probs.data[i] } } else { mean = probs }
            }
            let m = mean!
            let inv = 1 / Float(ready.count)
            for i in 0..<m.count { m.data[i] *= inv }
            return m
        }
    }

    // MARK: 3. Metrics

    /// Age in steps of the stalest peer snapshot (-1 before any).
    func peerAge(at step: Int) -> Int {
        peers.compactMap { $0.stamp.map { step - $0.step } }.max() ?? -1
    }

    /// Peer age and the seconds spent exchanging and in peer forward passes since the last call.
    func takeMetrics(at step: Int) -> (peerAge: Int, exchangeSeconds: Double, peerForwardSeconds: Double) {
        defer { exchangeSeconds = 0; peerForwardSeconds = 0 }
        return (peerAge(at: step), exchangeSeconds, peerForwardSeconds)
    }
}
