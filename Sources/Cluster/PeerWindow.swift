import CMPI
import Engine
import Foundation

/// One-sided publication of a flat Float snapshot (a group's parameters and BN buffers).
///
/// Every world rank takes part in creating the window (MPI_Win_allocate is collective), but only
/// publishers (group leaders) expose memory: a header of four UInt64 (version, step, checksum,
/// count) followed by the payload. The owner writes under an exclusive lock on its own window;
/// a reader takes a shared lock on the owner's window and gets header and payload, never waiting
/// for the owner to reach any step. A snapshot whose checksum does not match its payload (a torn
/// or corrupted copy) is refused, and the reader keeps the one it had.
public final class PeerWindow {
    /// What a read found.
    public enum Read { case fresh(version: UInt64, step: Int), unchanged, refused }
    static let headerWords = 4

    let window: MPI_Win
    let base: UnsafeMutableRawPointer?
    public let payloadCount: Int
    let exposes: Bool
    private var version: UInt64 = 0
    private var freed = false
    private let staging: UnsafeMutableRawPointer

    /// Collective over `world`. Throws (on every rank, agreed) if the MPI library cannot create
    /// one-sided windows on this network.
    public init(world: Communicator, payloadCount: Int, exposes: Bool) throws {
        self.payloadCount = payloadCount
        self.exposes = exposes
        let bytes = exposes ? Self.headerWords * 8 + payloadCount * 4 : 0
        var basePointer: UnsafeMutableRawPointer? = nil
        var win: MPI_Win? = nil
        MPI_Comm_set_errhandler(world.comm, cd_mpi_errors_return())
        let rc = MPI_Win_allocate(MPI_Aint(bytes), 1, cd_mpi_info_null(), world.comm, &basePointer, &win)
        MPI_Comm_set_errhandler(world.comm, cd_mpi_errors_are_fatal())
        let failure: String? = rc == cd_mpi_success() ? nil
            : "one-sided windows are unavailable on this network (MPI_Win_allocate failed): add --mca osc pt2pt to mpirun, or use --exchange files"
        try world.agree(failure)
        window = win!
        base = basePointer
        if exposes, let base = basePointer { base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        staging = .allocate(byteCount: Self.headerWords * 8 + payloadCount * 4, alignment: 64)
    }

    deinit { staging.deallocate() }

    /// Collective over the world: call once on every rank at the end.
    public func free() {
        guard !freed else { return }
        freed = true
        var w: MPI_Win? = window
        MPI_Win_free(&w)
    }

    /// Publishes `values` (payloadCount floats) as the next version, tagged with `step`. `torn`:
    /// with a checksum that does not match, as a torn or corrupted copy looks to the readers
    /// (fault injection).
    public func publish(_ values: UnsafePointer<Float>, step: Int, selfRank: Int, torn: Bool = false) {
        precondition(exposes, "only a publishing rank owns a snapshot")
        guard let base else { return }
        version += 1
        MPI_Win_lock(cd_mpi_lock_exclusive(), Int32(selfRank), 0, window)
        let header = base.assumingMemoryBound(to: UInt64.self)
        (base + Self.headerWords * 8).copyMemory(from: values, byteCount: payloadCount * 4)
        header[0] = version
        header[1] = UInt64(step)
        header[2] = FNV1a.hash(floats: values, count: payloadCount) ^ (torn ? 1 : 0)
        header[3] = UInt64(payloadCount)
        MPI_Win_unlock(Int32(selfRank), window)
    }

    /// Reads `rank`'s current snapshot into `into` when it is newer than version `after` and
    /// intact; leaves `into` alone otherwise.
    public func fetch(from rank: Int, into: UnsafeMutablePointer<Float>, after: UInt64) -> Read {
        let total = Self.headerWords * 8 + payloadCount * 4
        MPI_Win_lock(cd_mpi_lock_shared(), Int32(rank), 0, window)
        MPI_Get(staging, Int32(total), cd_mpi_byte(), Int32(rank), 0, Int32(total), cd_mpi_byte(), window)
        MPI_Win_unlock(Int32(rank), window)
        let header = staging.assumingMemoryBound(to: UInt64.self)
        let payload = staging + Self.headerWords * 8
        guard header[0] > after else { return .unchanged }
        guard header[3] == UInt64(payloadCount), FNV1a.hash(floats: payload, count: payloadCount) == header[2] else {
            return .refused
        }
        into.update(from: payload.assumingMemoryBound(to: Float.self), count: payloadCount)
        return .fresh(version: header[0], step: Int(header[1]))
    }
}
