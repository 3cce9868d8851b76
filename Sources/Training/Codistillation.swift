import Cluster
import Engine
import Foundation
import NN

/// The cross-group half of codistillation (Anil et al. 2018): every `exchangeEvery` steps each
/// group leader publishes its weights through a one-sided window and reads the freshest snapshot
/// of each peer group it follows, without waiting for them; the snapshots are broadcast inside
/// the group, and every rank adds a distillation term towards the peers' mean prediction.
final class Codistillation {
    struct Peer {
        /// Group number (RMA) or publisher name (files), for the log.
        let name: String
        let leaderRank: Int
        let model: Module
        let store: ParameterStore
        var version: UInt64 = 0
        var step = 0
    }

    /// How snapshots travel: MPI one-sided windows inside one job, or files in a shared directory.
    enum Transport {
        case rma(PeerWindow)
        /// nil on ranks that are not their group's leader: only leaders touch the directory.
        case files(FileExchange?)
    }

    let config: TrainConfig
    let world: Communicator, group: Communicator
    let groupIndex: Int
    let transport: Transport
    let spec: ModelSpec
    var peers: [Peer]
    let payload: Int
    let ownSnapshot: UnsafeMutablePointer<Float>
    let staging: UnsafeMutablePointer<Float>
    let log: (String) -> Void

    init(config: TrainConfig, world: Communicator, group: Communicator, groupIndex: Int, spec: ModelSpec,
         store: ParameterStore, log: @escaping (String) -> Void) throws {
        self.config = config; self.world = world; self.group = group; self.groupIndex = groupIndex; self.log = log
        self.spec = spec
        payload = store.trainableCount + store.bufferCount
        ownSnapshot = .allocate(capacity: payload)
        staging = .allocate(capacity: payload)
        peers = []
        var rmaPeers: [(String, Int)] = []
        if config.exchange == .files {
            var name = config.peerName
            if name.isEmpty { name = URL(fileURLWithPath: config.checkpointDir).lastPathComponent }
            if config.groups > 1 { name += "-group-\(groupIndex)" }
            let files = group.rank == 0
                ? try FileExchange(directory: config.peerDir, name: name, spec: spec, configJSON: config.json, log: log) : nil
            transport = .files(files)
        } else {
            transport = .rma(try PeerWindow(world: world, payloadCount: payload, exposes: group.rank == 0))
            let perGroup = world.size / config.groups
            let followed: [Int] = config.topology == .ring
                ? [(groupIndex + config.groups - 1) % config.groups]
                : (0..<config.groups).filter { $0 != groupIndex }
            rmaPeers = followed.map { ("group \($0)", $0 * perGroup) }
        }
        for (name, rank) in rmaPeers { peers.append(try makePeer(name: name, leaderRank: rank)) }
    }

    deinit { ownSnapshot.deallocate(); staging.deallocate() }

    func makePeer(name: String, leaderRank: Int) throws -> Peer {
        let model = try Models.make(spec)
        model.eval()
        return Peer(name: name, leaderRank: leaderRank, model: model, store: ParameterStore(model: model, seed: 0))
    }

    /// Called every step: lets MPI progress peers' reads of our window (see Communicator.poke).
    func progress() {
        if case .rma = transport, group.size == 1 { world.poke() }
    }

    /// Collective over the world for RMA windows: call once on every rank at the end.
    func close() {
        if case .rma(let window) = transport { window.free() }
    }

    /// Every rank of the group calls this at the same step. Returns the seconds it took.
    func exchange(step: Int, store: ParameterStore) -> Double {
        let t0 = wallTime()
        var fresh = [UInt8](repeating: 0, count: peers.count)
        if group.rank == 0 {
            switch transport {
            case .rma(let window):
                ownSnapshot.update(from: store.values, count: store.trainableCount)
                (ownSnapshot + store.trainableCount).update(from: store.buffers, count: store.bufferCount)
                window.publish(ownSnapshot, step: step, selfRank: world.rank)
                for i in peers.indices {
                    let refusedBefore = window.refused
                    guard let snap = window.fetch(from: peers[i].leaderRank, into: staging, after: peers[i].version) else {
                        if window.refused > refusedBefore {
                            log("[group \(groupIndex)] step \(step): peer \(peers[i].name) snapshot refused (checksum mismatch: a torn or corrupted copy); "
                                + (peers[i].version > 0 ? "keeping its snapshot from its step \(peers[i].step)" : "no snapshot of it yet"))
                        }
                        continue
                    }
                    let s = peers[i].store
                    s.values.update(from: staging, count: s.trainableCount)
                    s.buffers.update(from: staging + s.trainableCount, count: s.bufferCount)
                    peers[i].version = snap.version
                    peers[i].step = snap.step
                    fresh[i] = 1
                }
            case .files(let exchange):
                guard let files = exchange else { break }
                files.publish(store: store, step: step)
                for name in files.peerNames() where !peers.contains(where: { $0.name == name }) {
                    if let p = try? makePeer(name: name, leaderRank: -1) { peers.append(p); fresh.append(0) }
                }
                for i in peers.indices {
                    if let got = files.loadNewer(peer: peers[i].name, afterStep: peers[i].version == 0 ? -1 : peers[i].step,
                                                 into: peers[i].store) {
                        peers[i].version += 1
                        peers[i].step = got.step
                        fresh[i] = 1
                    } else if peers[i].version > 0, let age = files.ageSeconds(peer: peers[i].name), age > 60 {
                        log("[group \(groupIndex)] step \(step): peer \(peers[i].name) has published nothing for \(Int(age)) s; keeping its snapshot from its step \(peers[i].step)")
                    }
                }
            }
        }
        if group.size > 1 {
            // Peers found by the leader (the file exchange discovers them as they appear).
            let count = Int(group.broadcastDoubles([Double(peers.count)], root: 0)[0])
            while peers.count < count {
                if let p = try? makePeer(name: "peer \(peers.count)", leaderRank: -1) { peers.append(p) } else { break }
            }
            if fresh.count < count { fresh += [UInt8](repeating: 0, count: count - fresh.count) }
        }
        if group.size > 1 {
            // Which peers changed (and their versions), then only their weights.
            fresh = group.broadcast(fresh, root: 0)
            var meta = peers.flatMap { [Double($0.version), Double($0.step)] }
            meta = group.broadcastDoubles(meta, root: 0)
            for i in peers.indices {
                peers[i].version = UInt64(meta[2 * i]); peers[i].step = Int(meta[2 * i + 1])
                guard fresh[i] == 1 else { continue }
                group.broadcast(peers[i].store.values, count: peers[i].store.trainableCount, root: 0)
                group.broadcast(peers[i].store.buffers, count: peers[i].store.bufferCount, root: 0)
            }
        }
        if group.rank == 0 {
            for (i, p) in peers.enumerated() where fresh[i] == 1 {
                log("[group \(groupIndex)] step \(step): peer \(p.name) snapshot version \(p.version) from its step \(p.step)")
            }
        }
        return wallTime() - t0
    }

    /// The peers' mean predicted probabilities at temperature T on `images` (no gradient), or nil
    /// while no peer has published anything yet.
    func targets(for images: Tensor, temperature: Float) -> Tensor? {
        let ready = peers.filter { $0.version > 0 }
        guard !ready.isEmpty else { return nil }
        return withNoGrad {
            var mean: Tensor? = nil
            for p in ready {
                let probs = softmax(p.model(images), temperature: temperature)
                if let m = mean { for i in 0..<m.count { m.data[i] += probs.data[i] } } else { mean = probs }
            }
            let m = mean!
            let inv = 1 / Float(ready.count)
            for i in 0..<m.count { m.data[i] *= inv }
            return m
        }
    }

    /// Age in steps of the stalest peer snapshot (-1 before any).
    func maxAge(at step: Int) -> Int {
        let ready = peers.filter { $0.version > 0 }
        return ready.isEmpty ? -1 : ready.map { step - $0.step }.max()!
    }

    /// Distillation weight at `step`: 0 during burn-in, then `distillWeight`, reached linearly over
    /// `distillRamp` steps if that is set.
    static func weight(_ config: TrainConfig, step: Int) -> Float {
        guard step >= config.burnIn else { return 0 }
        guard config.distillRamp > 0 else { return config.distillWeight }
        return config.distillWeight * min(1, Float(step - config.burnIn + 1) / Float(config.distillRamp))
    }
}
