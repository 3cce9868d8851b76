import ArgumentParser
import Cluster
import Engine
import Foundation

/// `mpirun -np 2 codistill bench window`: the snapshot window under load. Rank 0 publishes
/// snapshots back to back, each one filled with its own sequence number; the other ranks read
/// the newest one as fast as they can, while it is being rewritten. Every copy the window
/// accepts is checked against what was published (every value equal to its sequence), so the
/// run counts real torn reads (copies that overlapped a rewrite of their slot) and shows that
/// none got through. Also prints the read bandwidth against a plain `MPI_Get` of the same
/// bytes, the raw-MPI reference.
struct BenchWindow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "window",
        abstract: "Snapshot window under load: torn reads caught, none accepted, bandwidth against MPI_Get (start with mpirun -np 2).")
    @Option(help: "Floats per snapshot.") var floats = 1 << 20
    @Option(help: "Seconds of publishing and reading.") var seconds = 3.0
    @Option(help: "Milliseconds between publications (0: back to back), spent inside MPI so reads progress.") var intervalMs = 0.0
    @Flag(help: "Print one JSON line.") var json = false

    func run() throws {
        let world = MPIRuntime.start()
        defer { MPIRuntime.finish() }
        guard world.size >= 2 else {
            throw ValidationError("bench window needs a publisher and a reader: start it with mpirun -np 2")
        }
        guard floats >= 1, seconds > 0, intervalMs >= 0 else { throw ValidationError("--floats and --seconds must be positive, --interval-ms not negative") }
        let window = try PeerWindow(world: world, payloadCount: floats, exposes: world.rank == 0)
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: floats)
        defer { buffer.deallocate() }
        var counts = WindowCounts()
        world.barrier()
        let start = monotonicSeconds()
        if world.rank == 0 {
            var sequence: UInt64 = 0
            while monotonicSeconds() - start < seconds {
                sequence += 1
                buffer.update(repeating: Float(sequence % (1 << 24)), count: floats)
                window.publish(buffer, sequence: sequence, step: Int(sequence))
                // Serves reads over TCP, where a passive target progresses only inside MPI.
                let next = monotonicSeconds() + intervalMs / 1000
                repeat { world.poke() } while monotonicSeconds() < next
            }
            counts.publications = Int(sequence)
        } else {
            var newest: UInt64 = 0
            while monotonicSeconds() - start < seconds {
                window.beginNewest(from: 0)
                window.advance(0, after: newest)
                switch window.take(from: 0, into: buffer) {
                case .pending: continue
                case .unchanged: counts.stale += 1
                // A newest read finds its slot's sequence 0 (rewrite under way) or higher (rewritten).
                case .behind: counts.lappedCaught += 1
                case .refused(let reason):
                    if reason.hasPrefix("checksum") { counts.tornCaught += 1 } else { counts.lappedCaught += 1 }
                case .fresh(let sequence, _, _, _):
                    counts.accepted += 1
                    let expected = Float(sequence % (1 << 24))
                    var intact = sequence > newest
                    for k in 0..<floats where buffer[k] != expected { intact = false; break }
                    if !intact { counts.corruptAccepted += 1 }
                    newest = max(newest, sequence)
                }
            }
        }
        world.barrier()
        // The window is idle now (rank 0 waits in the barrier below): time one snapshot read
        // both ways on rank 1.
        let checkedMBps = world.rank == 1 ? readMBps { window.readChecked(from: 0, into: buffer) } : 0
        let rawMBps = world.rank == 1 ? readMBps { window.rawGet(buffer, bytes: floats * 4, from: 0) } : 0
        window.free()
        let totals = world.allreduceSum(counts.values + [checkedMBps, rawMBps])
        guard world.rank == 0 else { return }
        let t = WindowCounts(totals)
        let result: [String: Any] = ["publications": t.publications, "accepted": t.accepted, "torn_caught": t.tornCaught,
                                     "lapped_caught": t.lappedCaught, "stale": t.stale, "corrupt_accepted": t.corruptAccepted,
                                     "floats": floats, "seconds": seconds, "interval_ms": intervalMs,
                                     "checked_read_MBps": totals[6], "raw_get_MBps": totals[7]]
        if json {
            let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print("publications \(t.publications), reads accepted \(t.accepted), torn copies caught \(t.tornCaught), "
                  + "overwritten while read \(t.lappedCaught), nothing new \(t.stale), corrupt copies accepted \(t.corruptAccepted)")
            print(String(format: "one snapshot read, idle window: %.0f MB/s checked (sequence, checksum, copy out), %.0f MB/s plain MPI_Get (%.2fx)",
                         totals[6], totals[7], totals[6] / max(totals[7], 1e-9)))
        }
        if t.corruptAccepted > 0 { throw ExitCode.failure }
    }

    /// MB/s of `read` repeated for about a second, one snapshot's bytes each.
    func readMBps(_ read: () -> Void) -> Double {
        var copies = 0
        let start = monotonicSeconds()
        repeat { read(); copies += 1 } while monotonicSeconds() - start < min(1, seconds)
        return Double(copies * floats * 4) / (monotonicSeconds() - start) / 1e6
    }
}

/// What the readers of `bench window` saw, summed over readers.
struct WindowCounts {
    var publications = 0, accepted = 0, tornCaught = 0, lappedCaught = 0, stale = 0, corruptAccepted = 0
    init() {}
    init(_ v: [Double]) {
        (publications, accepted, tornCaught, lappedCaught, stale, corruptAccepted) =
            (Int(v[0]), Int(v[1]), Int(v[2]), Int(v[3]), Int(v[4]), Int(v[5]))
    }
    var values: [Double] { [publications, accepted, tornCaught, lappedCaught, stale, corruptAccepted].map(Double.init) }
}
