import CMPI
import Foundation

/// Carries a stop decided by one group to every other group of the job.
///
/// A stop signal may reach only some ranks (`kill -USR1` of one rank, a node-local preemption
/// notice). Inside a group the flag travels in the step's allreduce; without this relay the
/// other groups would train on to the end of their runs while the stopped group waits for them
/// in the collective teardown of the one-sided windows. Every rank keeps one receive posted on a
/// private duplicate of the world; a stopping group's leader sends one byte to every rank
/// outside its group, and each rank tests its receive once per step (no waiting, no
/// synchronisation between groups).
public final class StopRelay {
    let comm: MPI_Comm
    /// World ranks outside this rank's group: whom a stop of this group is sent to.
    let outside: [Int32]
    let isLeader: Bool
    private var request: MPI_Request?
    /// Heap buffers: MPI writes and reads them after the calls that name them return.
    private let inbox: UnsafeMutablePointer<UInt8>, outbox: UnsafeMutablePointer<UInt8>
    private var received = false
    private var announced = false
    private var closed = false
    static let tag: Int32 = 7

    /// Collective over `world` (it duplicates the communicator). `group`: the world ranks of
    /// this rank's group; its first rank is the leader that announces the group's stop.
    public init(world: Communicator, group: Range<Int>) {
        var dup: MPI_Comm? = nil
        MPI_Comm_dup(world.comm, &dup)
        comm = dup!
        outside = (0..<world.size).filter { !group.contains($0) }.map(Int32.init)
        isLeader = world.rank == group.lowerBound
        inbox = .allocate(capacity: 1)
        outbox = .allocate(capacity: 1)
        outbox.pointee = 1
        request = cd_mpi_request_null()
        MPI_Irecv(inbox, 1, cd_mpi_byte(), cd_mpi_any_source(), Self.tag, comm, &request)
    }

    deinit { inbox.deallocate(); outbox.deallocate() }

    /// True once another group has announced its stop (checked without waiting).
    public func otherGroupStopped() -> Bool {
        guard !received, !closed else { return received }
        var done: Int32 = 0
        MPI_Test(&request, &done, cd_mpi_status_ignore())
        received = done != 0
        return received
    }

    /// Tells every other group that this group stops (the leader sends; once).
    public func announceStop() {
        guard isLeader, !announced, !closed else { return }
        announced = true
        for rank in outside {
            var r = cd_mpi_request_null()
            // Freed at once: one byte goes eagerly, and a group that has already finished has
            // no receive left to match it; the library drops it at finalize.
            MPI_Isend(outbox, 1, cd_mpi_byte(), rank, Self.tag, comm, &r)
            MPI_Request_free(&r)
        }
    }

    /// Withdraws the posted receive; once on every rank before MPI_Finalize.
    public func close() {
        guard !closed else { return }
        closed = true
        if !received {
            MPI_Cancel(&request)
            MPI_Wait(&request, cd_mpi_status_ignore())
        }
    }
}
