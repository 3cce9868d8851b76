import CMPI
import Engine
import Foundation

/// One-sided publication of a flat Float snapshot (a group's parameters and BN buffers), read
/// without ever waiting for the owner.
///
/// Every world rank takes part in creating the window (MPI_Win_allocate is collective) and opens
/// one passive epoch on all targets at once (`MPI_Win_lock_all` with `MPI_MODE_NOCHECK`), kept
/// until `free`: no lock is ever requested again, so no read waits for an owner to grant one.
/// Only publishers (group leaders) expose memory:
///
///     header   [latest sequence, its step]                       (64 bytes)
///     slot 0   [sequence, step, checksum, count, loss, accuracy] payload...   (sequences 2, 4, ...)
///     slot 1   [sequence, step, checksum, count, loss, accuracy] payload...   (sequences 1, 3, ...)
///
/// (loss and accuracy: the publisher's health record, Double bit patterns, NaN when not sent.)
///
/// The owner writes publication k into slot k % 2, so the snapshot before it stays intact while
/// readers copy it. A reader starts `MPI_Rget`s and tests them later (`advance`): over TCP
/// (osc pt2pt) a passive target serves a read only when it calls into MPI, which it does once per
/// step, so a read completes within a step or two of the target's time instead of blocking the
/// reader for the target's whole evaluation or checkpoint write. A copy is used only when its
/// slot's sequence is the one asked for and its checksum matches its payload; one overwritten
/// mid-read (the owner lapped the reader) or corrupted is refused.
public final class PeerWindow {
    /// What a read of a target found so far.
    public enum Read: Equatable {
        /// An intact snapshot newer than asked, now copied out.
        case fresh(sequence: UInt64, step: Int, loss: Double, accuracy: Double)
        /// Nothing newer than asked (or nothing published yet).
        case unchanged
        /// A read is under way; test again later.
        case pending
        /// Exact reads: the target has not published that sequence yet (its newest is `newest`).
        case behind(newest: UInt64)
        /// A copy that failed its integrity check.
        case refused(reason: String)
    }

    static let headerBytes = 64
    static let slotHeaderWords = 6
    let window: MPI_Win
    let base: UnsafeMutableRawPointer?
    public let payloadCount: Int
    let slotBytes: Int
    let exposes: Bool
    private var freed = false
    /// Reads in progress, by target rank.
    private var readings: [Int: Reading] = [:]

    /// One target's read: two phases for "the newest" (header, then its slot), one for an exact
    /// sequence (its slot).
    final class Reading {
        enum Phase { case idle, header, slot(sequence: UInt64), done(Read) }
        var phase = Phase.idle
        var request: MPI_Request? = cd_mpi_request_null()
        let header: UnsafeMutablePointer<UInt64> = .allocate(capacity: 2)
        let slot: UnsafeMutableRawPointer
        init(slotBytes: Int) { slot = .allocate(byteCount: slotBytes, alignment: 64) }
        deinit { header.deallocate(); slot.deallocate() }
    }

    /// Collective over `world`. Throws (on every rank, agreed) if the MPI library cannot create
    /// one-sided windows on this network.
    public init(world: Communicator, payloadCount: Int, exposes: Bool) throws {
        self.payloadCount = payloadCount
        self.exposes = exposes
        slotBytes = (Self.slotHeaderWords * 8 + payloadCount * 4 + 63) / 64 * 64
        let bytes = exposes ? Self.headerBytes + 2 * slotBytes : 0
        var basePointer: UnsafeMutableRawPointer? = nil
        var win: MPI_Win? = nil
        MPI_Comm_set_errhandler(world.comm, cd_mpi_errors_return())
        let rc = MPI_Win_allocate(MPI_Aint(bytes), 1, cd_mpi_info_null(), world.comm, &basePointer, &win)
        MPI_Comm_set_errhandler(world.comm, cd_mpi_errors_are_fatal())
        let failure: String? = rc == cd_mpi_success() ? nil
            : "one-sided windows are unavailable on this network (MPI_Win_allocate failed): with Open MPI 4 add --mca osc pt2pt to mpirun (Open MPI 5: --mca osc rdma --mca btl tcp,self, or osc ucx), or use --exchange files"
        try world.agree(failure)
        window = win!
        base = basePointer
        if exposes, let base = basePointer { base.initializeMemory(as: UInt8.self, repeating: 0, count: bytes) }
        // Zeroed before any reader can look: the window's creation above was collective.
        world.barrier()
        MPI_Win_lock_all(cd_mpi_mode_nocheck(), window)
    }

    /// Collective over the world: call once on every rank at the end. Reads still under way are
    /// finished first (their targets are here too, inside MPI, so they progress).
    public func free() {
        guard !freed else { return }
        freed = true
        for r in readings.values where r.request != cd_mpi_request_null() {
            MPI_Wait(&r.request, cd_mpi_status_ignore())
        }
        MPI_Win_unlock_all(window)
        var w: MPI_Win? = window
        MPI_Win_free(&w)
    }

    func slotAddress(_ sequence: UInt64) -> Int { Self.headerBytes + Int(sequence % 2) * slotBytes }

    /// Publishes `values` (payloadCount floats) as publication `sequence` (1, 2, ...) of
    /// training step `step`, with the publisher's recent `loss` and `accuracy`. `torn`: with a checksum that does not match, as a copy torn or
    /// corrupted in transit looks to the readers (fault injection).
    public func publish(_ values: UnsafePointer<Float>, sequence: UInt64, step: Int, loss: Double = .nan, accuracy: Double = .nan,
                        torn: Bool = false) {
        precondition(exposes, "only a publishing rank owns a snapshot")
        precondition(sequence > 0, "publication sequences start at 1")
        guard let base else { return }
        let slot = base + slotAddress(sequence)
        let words = slot.assumingMemoryBound(to: UInt64.self)
        // Invalid while it is rewritten: a reader that copies it now sees sequence 0.
        words[0] = 0
        MPI_Win_sync(window)
        (slot + Self.slotHeaderWords * 8).copyMemory(from: values, byteCount: payloadCount * 4)
        words[1] = UInt64(step)
        words[2] = FNV1a.hash(floats: values, count: payloadCount) ^ (torn ? 1 : 0)
        words[3] = UInt64(payloadCount)
        words[4] = loss.bitPattern
        words[5] = accuracy.bitPattern
        MPI_Win_sync(window)
        words[0] = sequence
        MPI_Win_sync(window)
        let header = base.assumingMemoryBound(to: UInt64.self)
        header[0] = sequence
        header[1] = UInt64(step)
        MPI_Win_sync(window)
    }

    /// A plain blocking `MPI_Get` of `bytes` from `rank`'s first slot, no checks: the raw-MPI
    /// reference `bench window` compares the checked reads with.
    public func rawGet(_ into: UnsafeMutableRawPointer, bytes: Int, from rank: Int) {
        MPI_Get(into, Int32(bytes), cd_mpi_byte(), Int32(rank), MPI_Aint(Self.headerBytes), Int32(bytes), cd_mpi_byte(), window)
        MPI_Win_flush(Int32(rank), window)
    }

    /// Reads `rank`'s newest snapshot the way training does (header, slot, checks, copy out),
    /// waiting for it: for `bench window`'s timing, not for training.
    @discardableResult
    public func readChecked(from rank: Int, into: UnsafeMutablePointer<Float>) -> Read {
        beginNewest(from: rank)
        while true {
            advance(rank)
            let read = take(from: rank, into: into)
            if read != .pending { return read }
        }
    }

    func reading(_ rank: Int) -> Reading {
        if let r = readings[rank] { return r }
        let r = Reading(slotBytes: slotBytes)
        readings[rank] = r
        return r
    }

    /// Starts reading `rank`'s newest snapshot unless a read of it is under way; `take` collects it.
    public func beginNewest(from rank: Int) {
        let r = reading(rank)
        guard case .idle = r.phase else { return }
        MPI_Rget(r.header, 16, cd_mpi_byte(), Int32(rank), 0, 16, cd_mpi_byte(), window, &r.request)
        r.phase = .header
    }

    /// Starts reading `rank`'s publication `sequence` unless a read of it is under way.
    public func beginExact(from rank: Int, sequence: UInt64) {
        let r = reading(rank)
        guard case .idle = r.phase else { return }
        startSlot(r, rank: rank, sequence: sequence)
    }

    private func startSlot(_ r: Reading, rank: Int, sequence: UInt64) {
        let bytes = Int32(Self.slotHeaderWords * 8 + payloadCount * 4)
        MPI_Rget(r.slot, bytes, cd_mpi_byte(), Int32(rank), MPI_Aint(slotAddress(sequence)), bytes, cd_mpi_byte(), window, &r.request)
        r.phase = .slot(sequence: sequence)
    }

    /// Tests `rank`'s read without waiting and moves it on (header done: start its slot).
    /// `after`: sequences up to this one are not worth a slot read.
    public func advance(_ rank: Int, after: UInt64 = 0) {
        guard let r = readings[rank] else { return }
        while true {
            switch r.phase {
            case .idle, .done: return
            case .header, .slot:
                var done: Int32 = 0
                MPI_Test(&r.request, &done, cd_mpi_status_ignore())
                guard done != 0 else { return }
            }
            switch r.phase {
            case .header:
                let latest = r.header[0]
                if latest == 0 || latest <= after { r.phase = .done(.unchanged) } else { startSlot(r, rank: rank, sequence: latest) }
            case .slot(let sequence):
                let words = r.slot.assumingMemoryBound(to: UInt64.self)
                let payload = r.slot + Self.slotHeaderWords * 8
                if words[0] != sequence {
                    // Exact reads: not published yet. Newest reads: the owner rewrote the slot.
                    r.phase = .done(words[0] < sequence ? .behind(newest: words[0])
                                    : .refused(reason: "overwritten while read: the owner published twice meanwhile"))
                } else if words[3] != UInt64(payloadCount) || FNV1a.hash(floats: payload, count: payloadCount) != words[2] {
                    r.phase = .done(.refused(reason: "checksum mismatch: a torn or corrupted copy"))
                } else {
                    r.phase = .done(.fresh(sequence: sequence, step: Int(words[1]),
                                           loss: Double(bitPattern: words[4]), accuracy: Double(bitPattern: words[5])))
                }
            default: return
            }
        }
    }

    /// The outcome of `rank`'s read once it is done (copying a fresh snapshot into `into`), or
    /// `.pending`; a finished read is consumed, so the next `begin` starts another.
    public func take(from rank: Int, into: UnsafeMutablePointer<Float>) -> Read {
        guard let r = readings[rank] else { return .unchanged }
        switch r.phase {
        case .idle: return .unchanged
        case .header, .slot: return .pending
        case .done(let read):
            r.phase = .idle
            if case .fresh = read {
                into.update(from: (r.slot + Self.slotHeaderWords * 8).assumingMemoryBound(to: Float.self), count: payloadCount)
            }
            return read
        }
    }
}
