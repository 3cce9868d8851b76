import Cluster
import Engine
import Foundation
import NN

/// Which snapshot of a peer a reader holds: the publisher's version counter and training step.
public struct SnapshotStamp: Equatable {
    public var version: UInt64
    public var step: Int
    public init(version: UInt64, step: Int) { self.version = version; self.step = step }
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

/// How a group's snapshots (its weights and BatchNorm buffers) travel to the other groups:
/// MPI one-sided windows inside one job (`RMATransport`), files in a directory shared by separate
/// jobs (`FileExchange`), or memory inside one process (`InMemoryTransport`, for tests).
/// Publishing and reading are the group leader's; every rank calls `progress` and `close`.
public protocol SnapshotTransport: AnyObject {
    /// Publishes the store's values and buffers as the next snapshot, tagged with `step`.
    /// `torn`: publish a copy whose contents fail the readers' integrity check (fault injection).
    func publish(_ store: ParameterStore, step: Int, torn: Bool)
    /// The peers this group reads, by name (a directory's publishers appear over time).
    func peerNames() -> [String]
    /// Copies `peer`'s snapshot into `store` if it is newer than `after` and intact.
    func fetch(peer: String, into store: ParameterStore, after: SnapshotStamp?) -> FetchOutcome
    /// Seconds since `peer` last published, where the transport can tell.
    func secondsSinceLastPublication(peer: String) -> Double?
    /// Called on every rank every step (MPI windows over TCP progress only inside MPI calls).
    func progress()
    /// Called once on every rank at the end (collective for MPI windows).
    func close()
}

extension SnapshotTransport {
    public func publish(_ store: ParameterStore, step: Int) { publish(store, step: step, torn: false) }
    public func secondsSinceLastPublication(peer: String) -> Double? { nil }
    public func progress() {}
    public func close() {}
}

/// Snapshots through MPI one-sided windows (see PeerWindow): group g's leader exposes its
/// snapshot; the leaders of the groups that follow g read it without g taking part.
public final class RMATransport: SnapshotTransport {
    let window: PeerWindow
    let world: Communicator
    /// Peer name ("group 1") to the world rank of its leader.
    let leaders: [(name: String, rank: Int)]
    let pokesEveryStep: Bool
    let staging: UnsafeMutablePointer<Float>

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

    public func publish(_ store: ParameterStore, step: Int, torn: Bool) {
        store.writeSnapshot(to: staging)
        window.publish(staging, step: step, selfRank: world.rank, torn: torn)
    }

    public func peerNames() -> [String] { leaders.map(\.name) }

    public func fetch(peer: String, into store: ParameterStore, after: SnapshotStamp?) -> FetchOutcome {
        guard let rank = leaders.first(where: { $0.name == peer })?.rank else { return .unchanged }
        switch window.fetch(from: rank, into: staging, after: after?.version ?? 0) {
        case .fresh(let version, let step):
            store.readSnapshot(from: staging)
            return .fresh(SnapshotStamp(version: version, step: step))
        case .unchanged: return .unchanged
        case .refused: return .refused(reason: "checksum mismatch: a torn or corrupted copy")
        }
    }

    public func progress() { if pokesEveryStep { world.poke() } }
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

    public func publish(_ store: ParameterStore, step: Int, torn: Bool) {
        let payload = [Float](unsafeUninitializedCapacity: store.snapshotCount) { p, n in
            store.writeSnapshot(to: p.baseAddress!)
            n = store.snapshotCount
        }
        let checksum = payload.withUnsafeBytes { FNV1a.hash(floats: $0.baseAddress!, count: payload.count) }
        let version = (board.entries[name]?.stamp.version ?? 0) + 1
        board.entries[name] = .init(stamp: SnapshotStamp(version: version, step: step), payload: payload,
                                    checksum: torn ? checksum ^ 1 : checksum)
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
    public enum Fault { case torn, collapsed }
    let inner: SnapshotTransport
    let fault: Fault
    let every: Int
    var published = 0

    public init(_ inner: SnapshotTransport, fault: Fault = .torn, every: Int = 1) {
        self.inner = inner; self.fault = fault; self.every = max(1, every)
    }

    public func publish(_ store: ParameterStore, step: Int, torn: Bool) {
        published += 1
        let inject = published % every == 0
        guard inject, fault == .collapsed, store.trainableCount > 0 else {
            inner.publish(store, step: step, torn: torn || inject)
            return
        }
        // One NaN weight makes a collapsed model; restored at once, so only the copy carries it.
        let kept = store.values[0]
        store.values[0] = .nan
        inner.publish(store, step: step, torn: torn)
        store.values[0] = kept
    }
    public func peerNames() -> [String] { inner.peerNames() }
    public func fetch(peer: String, into store: ParameterStore, after: SnapshotStamp?) -> FetchOutcome {
        inner.fetch(peer: peer, into: store, after: after)
    }
    public func secondsSinceLastPublication(peer: String) -> Double? { inner.secondsSinceLastPublication(peer: peer) }
    public func progress() { inner.progress() }
    public func close() { inner.close() }
}
