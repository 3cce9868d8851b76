import CMPI
import Foundation

/// The MPI runtime of this process: initialised once (FUNNELED: only the main thread calls MPI),
/// finalised once, and the only place that may end the whole job.
public enum MPIRuntime {
    nonisolated(unsafe) private static var started = false

    /// Initialises MPI and returns the world communicator.
    public static func start() -> Communicator {
        if !started {
            // Open MPI's shared-memory transport defaults to cross-memory attach (CMA), which
            // fails with EFAULT in containers without ptrace rights ("Read -1, expected ...,
            // errno = 14"). Plain copy-in/copy-out costs little at our message sizes, so use it
            // unless the user chose otherwise.
            setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0)
            var provided: Int32 = 0
            MPI_Init_thread(nil, nil, cd_mpi_thread_funneled(), &provided)
            started = true
        }
        return Communicator(cd_mpi_comm_world(), owned: false)
    }

    public static var isRunning: Bool { started }

    public static func finish() {
        guard started else { return }
        var finalized: Int32 = 0
        MPI_Finalized(&finalized)
        if finalized == 0 { MPI_Finalize() }
        started = false
    }

    /// Ends every rank of the job at once (for failures the other ranks cannot know about).
    public static func abort(code: Int32) -> Never {
        MPI_Abort(cd_mpi_comm_world(), code)
        exit(code)
    }
}

/// An MPI communicator (the world or a group) with the few collectives the trainer needs.
public final class Communicator: Collectives {
    public let comm: MPI_Comm
    public let rank: Int
    public let size: Int
    private let owned: Bool

    init(_ comm: MPI_Comm, owned: Bool) {
        self.comm = comm
        self.owned = owned
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r); size = Int(s)
    }

    deinit {
        if owned && MPIRuntime.isRunning {
            var c: MPI_Comm? = comm
            MPI_Comm_free(&c)
        }
    }

    /// Ranks with the same color form a communicator, ordered by key.
    public func split(color: Int, key: Int) -> Collectives {
        var out: MPI_Comm? = nil
        MPI_Comm_split(comm, Int32(color), Int32(key), &out)
        return Communicator(out!, owned: true)
    }

    /// In-place sum over all ranks (the fused gradient allreduce).
    public func allreduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {
        guard size > 1 else { return }
        MPI_Allreduce(cd_mpi_in_place(), buffer, Int32(count), cd_mpi_float(), cd_mpi_sum(), comm)
    }

    public func allreduceSum(_ values: [Double]) -> [Double] {
        guard size > 1 else { return values }
        var v = values
        _ = v.withUnsafeMutableBufferPointer { p in
            MPI_Allreduce(cd_mpi_in_place(), p.baseAddress, Int32(p.count), cd_mpi_double(), cd_mpi_sum(), comm)
        }
        return v
    }

    public func allreduceMax(_ value: Int) -> Int {
        guard size > 1 else { return value }
        var v = Int64(value)
        MPI_Allreduce(cd_mpi_in_place(), &v, 1, cd_mpi_int64(), cd_mpi_max(), comm)
        return Int(v)
    }

    public func broadcast(_ buffer: UnsafeMutablePointer<Float>, count: Int, root: Int) {
        guard size > 1, count > 0 else { return }
        MPI_Bcast(buffer, Int32(count), cd_mpi_float(), Int32(root), comm)
    }

    public func broadcast(_ bytes: [UInt8], root: Int) -> [UInt8] {
        guard size > 1 else { return bytes }
        var n = Int64(bytes.count)
        MPI_Bcast(&n, 1, cd_mpi_int64(), Int32(root), comm)
        var buf = rank == root ? bytes : [UInt8](repeating: 0, count: Int(n))
        if n > 0 {
            buf.withUnsafeMutableBytes { p in _ = MPI_Bcast(p.baseAddress, Int32(n), cd_mpi_byte(), Int32(root), comm) }
        }
        return buf
    }

    public func broadcastDoubles(_ values: [Double], root: Int) -> [Double] {
        guard size > 1, !values.isEmpty else { return values }
        var v = values
        v.withUnsafeMutableBufferPointer { p in _ = MPI_Bcast(p.baseAddress, Int32(p.count), cd_mpi_double(), Int32(root), comm) }
        return v
    }

    public func allgather(_ value: UInt64) -> [UInt64] {
        guard size > 1 else { return [value] }
        var mine = value
        var all = [UInt64](repeating: 0, count: size)
        all.withUnsafeMutableBufferPointer { p in
            _ = MPI_Allgather(&mine, 1, cd_mpi_uint64(), p.baseAddress, 1, cd_mpi_uint64(), comm)
        }
        return all
    }

    public func barrier() { if size > 1 { MPI_Barrier(comm) } }

    /// A barrier that sleeps while it waits instead of spinning (MPI_Ibarrier, tested every
    /// `pollMicroseconds`): a rank with nothing to do leaves its core to the ranks that work.
    public func sleepingBarrier(pollMicroseconds: UInt32) {
        guard size > 1 else { return }
        var request = cd_mpi_request_null()
        MPI_Ibarrier(comm, &request)
        var done: Int32 = 0
        while true {
            MPI_Test(&request, &done, cd_mpi_status_ignore())
            if done != 0 { return }
            usleep(pollMicroseconds)
        }
    }

    /// A cheap call into the MPI library so it can make progress on one-sided requests that
    /// target this rank (over TCP a passive target progresses only inside MPI calls; a group of
    /// one rank has no collectives of its own that would do it).
    public func poke() {
        var flag: Int32 = 0
        MPI_Iprobe(cd_mpi_any_source(), cd_mpi_any_tag(), comm, &flag, cd_mpi_status_ignore())
    }
}
