import Cluster
import Engine
import Foundation
import NN

/// Which snapshot of a peer a reader holds: the publisher's version counter and training step.
public struct SnapshotStamp: Equatable {
    public var version: UInt64
    public var step: Int
    /// The publisher's own view of its health when it published (nil: not sent).
    public var health: SnapshotHealth?
    public init(version: UInt64, step: Int, health: SnapshotHealth? = nil) {
        self.version = version; self.step = step; self.health = health
    }
}

/// The health record published with each snapshot: the publisher's recent training loss and
/// accuracy (a moving average over its last steps), for the readers' logs.
public struct SnapshotHealth: Equatable {
    public var loss: Double
    public var accuracy: Double
    public init(loss: Double, accuracy: Double) { self.loss = loss; self.accuracy = accuracy }
    /// "training loss 0.312, accuracy 91.4%"
    public var summary: String { String(format: "its training loss %.3g, accuracy %.1f%%", loss, 100 * accuracy) }
}

/// What a read of a peer's snapshot found.
public enum FetchOutcome: Equatable {
    /// A newer intact snapshot, now in the store.
    case fresh(SnapshotStamp)
    /// Nothing newer than what the reader holds (or nothing published yet).
    case unchanged
    /// A newer snapshot failed its integrity check (a torn or corrupted copy); the store is untouched.
    case refused(reason: String)
}

/// How a group's snapshots (its weights and BatchNorm buffers, flat as
/// `ParameterStore.writeSnapshot` lays them out) travel to the other groups: MPI one-sided
/// windows inside one job (`RMATransport`), files in a directory shared by separate jobs
/// (`FileExchange`), or memory inside one process (`InMemoryTransport`, for tests).
/// Publishing and reading are the group leader's; every rank calls `progress` and `close`.
/// Stamps: `version` is the publication's sequence number (1 at the end of burn-in, +1 per
/// exchange step), `step` the training step it was taken at.
public protocol SnapshotTransport: AnyObject {
    /// Publishes a flat snapshot (`snapshotCount` floats) under `stamp`.
    /// `torn`: publish a copy whose contents fail the readers' integrity check (fault injection).
    func publish(_ snapshot: UnsafeBufferPointer<Float>, stamp: SnapshotStamp, torn: Bool)
    /// The peers this group reads, by name (a directory's publishers appear over time).
    func peerNames() -> [String]
    /// Copies `peer`'s newest snapshot into `store` if one newer than `after` has arrived and is
    /// intact. Never waits: a read that takes time is started now and collected by a later call.
    func fetch(peer: String, into store: ParameterStore, after: SnapshotStamp?) -> FetchOutcome
    /// Whether `fetchExact` works (the lock-step exchange).
    var supportsExactReads: Bool { get }
    /// Copies `peer`'s publication `sequence` into `store`; nil while it has not arrived (the
    /// peer is behind, or the read is under way): call again.
    func fetchExact(peer: String, sequence: UInt64, into store: ParameterStore) -> FetchOutcome?
    /// Seconds since `peer` last published, where the transport can tell.
    func secondsSinceLastPublication(peer: String) -> Double?
    /// Called on every rank every step (MPI windows over TCP progress only inside MPI calls).
    func progress()
    /// Called once on every rank at the end (collective for MPI windows).
    func close()
}

extension SnapshotTransport {
    public func publish(_ snapshot: UnsafeBufferPointer<Float>, stamp: SnapshotStamp) { publish(snapshot, stamp: stamp, torn: false) }
    public var supportsExactReads: Bool { false }
    public func fetchExact(peer: String, sequence: UInt64, into store: ParameterStore) -> FetchOutcome? {
        .refused(reason: "this exchange cannot read a given publication")
    }
    public func secondsSinceLastPublication(peer: String) -> Double? { nil }
    public func progress() {}
    public func close() {}
}

/// Snapshots through MPI one-sided windows (see PeerWindow): group g's leader exposes its
/// snapshots; the leaders of the groups that follow g read them without g taking part, and
/// without waiting for g.
public final class RMATransport: SnapshotTransport {
    let window: PeerWindow
    let world: Communicator
    /// Peer name ("group 1") to the world rank of its leader.
    let leaders: [(name: String, rank: Int)]
    let pokesEveryStep: Bool
    let staging: UnsafeMutablePointer<Float>
    /// The newest version held of each peer, by rank: reads of older ones stop at the header.
    var held: [Int: UInt64] = [:]

    /// Collective over `world`. `followed`: the groups this group reads.
    public init(world: Communicator, payloadCount: Int, isLeader: Bool, followed: [Int], ranksPerGroup: Int) throws {
        window = try PeerWindow(world: world, payloadCount: payloadCount, exposes: isLeader)
        self.world = world
        leaders = followed.map { ("group \($0)", $0 * ranksPerGroup) }
        // A group of one rank has no collectives of its own that would let MPI progress the
        // peers' reads of its window.
        pokesEveryStep = ranksPerGroup == 1
        staging = .allocate(capacity: payloadCount)
    }
    deinit { staging.deallocate() }

    public func publish(_ snapshot: UnsafeBufferPointer<Float>, stamp: SnapshotStamp, torn: Bool) {
        window.publish(snapshot.baseAddress!, sequence: stamp.version, step: stamp.step,
                       loss: stamp.health?.loss ?? .nan, accuracy: stamp.health?.accuracy ?? .nan, torn: torn)
    }

    public func peerNames() -> [String] { leaders.map(\.name) }

    func outcome(_ read: PeerWindow.Read, rank: Int, into store: ParameterStore) -> FetchOutcome? {
        switch read {
        case .fresh(let sequence, let step, let loss, let accuracy):
            store.readSnapshot(from: staging)
            held[rank] = sequence
            return .fresh(SnapshotStamp(version: sequence, step: step,
                                        health: loss.isNaN ? nil : SnapshotHealth(loss: loss, accuracy: accuracy)))
        case .refused(let reason): return .refused(reason: reason)
        case .unchanged: return .unchanged
        case .pending, .behind: return nil
        }
    }

    public func fetch(peer: String, into store: ParameterStore, after: SnapshotStamp?) -> FetchOutcome {
        guard let rank = leaders.first(where: { $0.name == peer })?.rank else { return .unchanged }
        let after = max(after?.version ?? 0, held[rank] ?? 0)
        // Collect a read started earlier; if none is under way, start one and look once more
        // (within a node, shared-memory reads complete at once).
        window.advance(rank, after: after)
        let earlier = window.take(from: rank, into: staging)
        switch earlier {
        case .pending: return .unchanged
        case .fresh, .refused: return outcome(earlier, rank: rank, into: store) ?? .unchanged
        case .unchanged, .behind:
            window.beginNewest(from: rank)
            window.advance(rank, after: after)
            return outcome(window.take(from: rank, into: staging), rank: rank, into: store) ?? .unchanged
        }
    }

    public var supportsExactReads: Bool { true }

    public func fetchExact(peer: String, sequence: UInt64, into store: ParameterStore) -> FetchOutcome? {
        guard let rank = leaders.first(where: { $0.name == peer })?.rank else { return .refused(reason: "no such peer") }
        window.beginExact(from: rank, sequence: sequence)
        window.advance(rank)
        return outcome(window.take(from: rank, into: staging), rank: rank, into: store)
    }

    public func progress() {
        if pokesEveryStep { world.poke() }
        for (_, rank) in leaders { window.advance(rank, after: held[rank] ?? 0) }
    }
    public func close() { window.free() }
}

/// Snapshots in memory, for in-process tests: trainers that share one board see each other as
/// jobs sharing a peer directory do, with the same integrity check as the MPI window.
public final class InMemorySnapshotBoard {
    struct Entry { var stamp: SnapshotStamp; var payload: [Float]; var checksum: UInt64 }
    var entries: [String: Entry] = [:]
    public init() {}
}

public final class InMemoryTransport: SnapshotTransport {
    let board: InMemorySnapshotBoard
    public let name: String

    public init(board: InMemorySnapshotBoard, name: String) { self.board = board; self.name = name }

    public func publish(_ snapshot: UnsafeBufferPointer<Float>, stamp: SnapshotStamp, torn: Bool) {
        let payload = Array(snapshot)
        let checksum = FNV1a.hash(floats: snapshot.baseAddress!, count: snapshot.count)
        board.entries[name] = .init(stamp: stamp, payload: payload, checksum: torn ? checksum ^ 1 : checksum)
    }

    public func peerNames() -> [String] { board.entries.keys.filter { $0 != name }.sorted() }

    public func fetch(peer: String, into store: ParameterStore, after: SnapshotStamp?) -> FetchOutcome {
        guard let e = board.entries[peer], e.stamp.version > (after?.version ?? 0) else { return .unchanged }
        let intact = e.payload.count == store.snapshotCount
            && e.payload.withUnsafeBytes { FNV1a.hash(floats: $0.baseAddress!, count: e.payload.count) } == e.checksum
        guard intact else { return .refused(reason: "checksum mismatch: a torn or corrupted copy") }
        e.payload.withUnsafeBufferPointer { store.readSnapshot(from: $0.baseAddress!) }
        return .fresh(e.stamp)
    }
}

/// Fault injection around any transport: every `every`-th publication arrives torn (as a copy
/// overwritten mid-read or corrupted in transit would) or collapsed (intact, but with NaN weights,
/// as from a model that diverged).
public final class FaultInjectingTransport: SnapshotTransport {
    /// torn: the copy fails its checksum; collapsed: one NaN weight; diverged: finite weights
    /// that predict far worse than chance (every value times -25).
    public enum Fault { case torn, collapsed, diverged }
    let inner: SnapshotTransport
    let fault: Fault
    let every: Int
    /// Publications passed on intact before the faults start.
    let after: Int
    var published = 0

    public init(_ inner: SnapshotTransport, fault: Fault = .torn, every: Int = 1, after: Int = 0) {
        self.inner = inner; self.fault = fault; self.every = max(1, every); self.after = max(0, after)
    }

    public func publish(_ snapshot: UnsafeBufferPointer<Float>, stamp: SnapshotStamp, torn: Bool) {
        published += 1
        let inject = published > after && published % every == 0
        if inject && fault == .diverged {
            let scrambled = snapshot.map { -25 * $0 }
            scrambled.withUnsafeBufferPointer { inner.publish($0, stamp: stamp, torn: torn) }
            return
        }
        guard inject, fault == .collapsed else {
            inner.publish(snapshot, stamp: stamp, torn: torn || inject)
            return
        }
        // One NaN weight makes a collapsed model; restored at once, so only the copy carries it.
        guard !snapshot.isEmpty else { return }
        let first = UnsafeMutablePointer(mutating: snapshot.baseAddress!)
        let kept = first[0]
        first[0] = .nan
        inner.publish(snapshot, stamp: stamp, torn: torn)
        first[0] = kept
    }
    public func peerNames() -> [String] { inner.peerNames() }
    public func fetch(peer: String, into store: ParameterStore, after: SnapshotStamp?) -> FetchOutcome {
        inner.fetch(peer: peer, into: store, after: after)
    }
    public var supportsExactReads: Bool { inner.supportsExactReads }
    public func fetchExact(peer: String, sequence: UInt64, into store: ParameterStore) -> FetchOutcome? {
        inner.fetchExact(peer: peer, sequence: sequence, into: store)
    }
    public func secondsSinceLastPublication(peer: String) -> Double? { inner.secondsSinceLastPublication(peer: peer) }
    public func progress() { inner.progress() }
    public func close() { inner.close() }
}
