/// The collectives the trainer needs from the ranks it works with (the world, or its group).
/// `Communicator` is the MPI implementation; `SoloCollectives` is a world of one rank, for runs
/// and tests without MPI.
public protocol Collectives: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Ranks with the same color form a communicator, ordered by key.
    func split(color: Int, key: Int) -> Collectives
    /// In-place sum over all ranks (the fused gradient allreduce).
    func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int)
    func allreduceSum(_ values: [Double]) -> [Double]
    func allreduceMax(_ value: Int) -> Int
    func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int)
    func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8]
    func broadcastDoubles(_ values: [Double], root: Int) -> [Double]
    func allgather(_ value: UInt64) -> [UInt64]
    func barrier()
    /// A barrier that sleeps while it waits instead of spinning.
    func sleepingBarrier(pollMicroseconds: UInt32)
    /// A cheap call into the communication library so it can progress one-sided requests that
    /// target this rank.
    func poke()
}

extension Collectives {
    public func sleepingBarrier() { sleepingBarrier(pollMicroseconds: 200) }
    public func allreduceMin(_ value: Int) -> Int { -allreduceMax(-value) }

    /// Collective error agreement: every rank passes its own failure (or nil); if any rank failed,
    /// all throw, and the message of the lowest failing rank is the one thrown everywhere, so
    /// exactly one rank (rank 0 of this communicator) needs to print it and every rank can exit
    /// cleanly instead of leaving the others waiting in a collective.
    public func agree(_ failure: String?) throws {
        let lowest = allreduceMin(failure == nil ? Int.max : rank)
        guard lowest != Int.max else { return }
        let bytes = broadcast(Array((failure ?? "").utf8), root: lowest)
        throw CollectiveFailure(message: String(decoding: bytes, as: UTF8.self), rank: lowest)
    }
}

/// A failure every rank of a communicator agreed on (see `Collectives.agree`).
public struct CollectiveFailure: Error, CustomStringConvertible {
    public let message: String
    public let rank: Int
    public var description: String { message }
}

/// A world of one rank: every collective is the identity. For runs and tests without MPI.
public final class SoloCollectives: Collectives {
    public init() {}
    public var rank: Int { 0 }
    public var size: Int { 1 }
    public func split(color: Int, key: Int) -> Collectives { SoloCollectives() }
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allreduceSum(_ values: [Double]) -> [Double] { values }
    public func allreduceMax(_ value: Int) -> Int { value }
    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {}
    public func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8] { bytes }
    public func broadcastDoubles(_ values: [Double], root: Int) -> [Double] { values }
    public func allgather(_ value: UInt64) -> [UInt64] { [value] }
    public func barrier() {}
    public func sleepingBarrier(pollMicroseconds: UInt32) {}
    public func poke() {}
}
