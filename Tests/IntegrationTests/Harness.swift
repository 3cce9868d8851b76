import Foundation
import XCTest

/// Runs the release binary (scripts/test.sh builds it first) under mpirun, with a time limit:
/// `timeout` sends TERM (mpirun passes it to every rank) and KILL 5 s later, so a hang fails
/// one test instead of the suite.
enum Harness {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()
    static let binary = root.appendingPathComponent(".build/release/codistill").path

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var seconds: Double
        /// Killed by a signal (a crash: `timeout` passes its child's signal on), not exited.
        var signalled = false
        var output: String { stdout + stderr }
    }

    static func requireBinary() throws {
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw XCTSkip("no release binary at \(binary): run scripts/test.sh (it builds it) instead of swift test alone")
        }
    }

    /// `mpirun -np ranks codistill args...` (ranks 0: run the binary directly).
    /// `unsetting` names variables removed from the environment the binary runs in.
    /// `perRank`: instead of `args`, one argument list per rank (an MPMD launch, `-np 1 ... : -np 1 ...`),
    /// e.g. to give two ranks different views of a directory. `mpirunOptions`: more options for
    /// mpirun itself (e.g. `--mca osc pt2pt`).
    static func run(ranks: Int, _ args: [String], timeout: Int = 120, cwd: String? = nil,
                    environment extra: [String: String] = [:], unsetting: [String] = [],
                    perRank: [[String]]? = nil, mpirunOptions: [String] = []) throws -> Result {
        try requireBinary()
        var command = ["-k", "5", String(timeout)]
        if let perRank {
            command += ["mpirun", "--oversubscribe", "--bind-to", "none"] + extra.keys.sorted().flatMap { ["-x", $0] }
                + perRank.enumerated().flatMap { i, a in (i > 0 ? [":"] : []) + ["-np", "1", binary] + a }
        } else if ranks > 0 {
            command += ["mpirun", "-np", String(ranks), "--oversubscribe", "--bind-to", "none"] + mpirunOptions
                + extra.keys.sorted().flatMap { ["-x", $0] } + [binary]
        } else {
            command += [binary]
        }
        var env = mpiEnvironment(extra)
        for k in unsetting { env[k] = nil }
        return try capture(command + args, environment: env, cwd: cwd)
    }

    /// This process's environment with what Open MPI needs here (root, a container without
    /// ptrace for single-copy transfers, more ranks than cores), then `extra`.
    static func mpiEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
        env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
        env["OMPI_MCA_btl_vader_single_copy_mechanism"] = "none"
        env["OMPI_MCA_rmaps_base_oversubscribe"] = "1"
        for (k, v) in extra { env[k] = v }
        return env
    }

    /// Runs `arguments` (a command already wrapped in `timeout`, no shell) with exactly
    /// `environment`, capturing both outputs.
    static func capture(_ arguments: [String], environment: [String: String], cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        p.arguments = arguments
        p.environment = environment
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        let start = Date()
        try p.run()
        // Read both pipes before waiting, so a chatty child never blocks on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let outBox = Box(), errBox = Box()
        let group = DispatchGroup()
        group.enter(); DispatchQueue.global().async { outBox.data = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter(); DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.wait()
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outBox.data, as: UTF8.self),
                      stderr: String(decoding: errBox.data, as: UTF8.self), seconds: Date().timeIntervalSince(start),
                      signalled: p.terminationReason == .uncaughtSignal)
    }

    /// Starts `mpirun -np ranks codistill args...` in the background, its output going to `log`.
    static func start(ranks: Int, _ args: [String], log: String, timeout: Int = 180,
                      environment extra: [String: String] = [:]) throws -> Process {
        try requireBinary()
        return try start(["-k", "5", String(timeout), "mpirun", "-np", String(ranks), "--oversubscribe", "--bind-to", "none"]
                         + extra.keys.sorted().flatMap { ["-x", $0] } + [binary] + args,
                         log: log, environment: mpiEnvironment(extra))
    }

    /// Starts `arguments` under `timeout` (its first arguments are timeout's) in the background
    /// with exactly `environment`, both outputs going to `log`.
    static func start(_ arguments: [String], log: String, environment: [String: String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/timeout")
        p.arguments = arguments
        p.environment = environment
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = FileHandle(forWritingAtPath: log)!
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        return p
    }

    /// Waits until `path` exists (or `seconds` pass); returns whether it appeared.
    static func waitFor(_ path: String, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if FileManager.default.fileExists(atPath: path) { return true }
            usleep(50_000)
        }
        return false
    }

    /// Waits until the file at `path` contains `text`, after the first occurrence of `after` if
    /// given (or `seconds` pass); returns whether it did.
    static func waitFor(text: String, after: String? = nil, in path: String, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            var s = Substring(contents(path))
            if let after { s = s.range(of: after).map { s[$0.upperBound...] } ?? "" }
            if s.contains(text) { return true }
            usleep(50_000)
        }
        return false
    }

    /// The text of a file ("" while it does not exist).
    static func contents(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

    /// The rank processes of a job started by `start` (timeout -> mpirun -> ranks), by world rank.
    static func rankProcesses(of job: Process) -> [Int: pid_t] {
        var out: [Int: pid_t] = [:]
        for mpirun in children(job.processIdentifier) {
            for rank in children(mpirun) {
                guard let env = FileManager.default.contents(atPath: "/proc/\(rank)/environ") else { continue }
                for entry in env.split(separator: 0) {
                    let kv = String(decoding: entry, as: UTF8.self)
                    if kv.hasPrefix("OMPI_COMM_WORLD_RANK="), let r = Int(kv.dropFirst(21)) { out[r] = rank }
                }
            }
        }
        return out
    }

    /// The mpirun process of a job started by `start`.
    static func mpirunProcess(of job: Process) -> pid_t? { children(job.processIdentifier).first }

    /// The child processes of `pid` (Linux /proc).
    static func children(_ pid: pid_t) -> [pid_t] {
        let s = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
        return s.split(separator: " ").compactMap { pid_t($0) }
    }

    /// The /model tensors of a checkpoint as h5dump prints them (every float in full: equal
    /// text means bitwise equal weights); empty when the file cannot be read.
    static func modelTensors(_ path: String) throws -> String {
        let r = try capture(["30", "h5dump", "-g", "/model", path], environment: ProcessInfo.processInfo.environment)
        XCTAssertEqual(r.status, 0, "h5dump -g /model \(path): \(r.stderr)")
        guard r.status == 0 else { return "" }
        // The first line names the file.
        return r.stdout.split(separator: "\n").dropFirst().joined(separator: "\n")
    }

    static func temporaryDirectory(_ name: String) -> String {
        let dir = NSTemporaryDirectory() + "codistill-it-\(name)-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A small, learnable IDX dataset (raw, not gzip): class c images have a bright c-th row band
    /// plus noise, so a few steps already separate the classes.
    /// `bright`/`dark`/`noise` set how separable the classes are (the defaults: trivially).
    static func writeTinyIDX(in dir: String, train: Int = 512, test: Int = 128, side: Int = 8, classes: Int = 4,
                             testLabelOverride: UInt8? = nil, bright: UInt64 = 180, dark: UInt64 = 40, noise: UInt64 = 60) throws {
        func idx(images n: Int, seed: UInt64, labelOverride: UInt8? = nil) -> (Data, Data) {
            var s = seed
            func next() -> UInt64 { s = s &* 6364136223846793005 &+ 1442695040888963407; return s >> 33 }
            var img = Data([0, 0, 8, 3]), lab = Data([0, 0, 8, 1])
            for v in [n, side, side] { img.append(contentsOf: withUnsafeBytes(of: UInt32(v).bigEndian, Array.init)) }
            lab.append(contentsOf: withUnsafeBytes(of: UInt32(n).bigEndian, Array.init))
            for _ in 0..<n {
                let c = Int(next() % UInt64(classes))
                for r in 0..<side {
                    for _ in 0..<side {
                        let base: UInt64 = (r * classes / side == c) ? bright : dark
                        img.append(UInt8(min(255, base + next() % noise)))
                    }
                }
                lab.append(labelOverride ?? UInt8(c))
            }
            return (img, lab)
        }
        let (ti, tl) = idx(images: train, seed: 1), (vi, vl) = idx(images: test, seed: 2, labelOverride: testLabelOverride)
        try ti.write(to: URL(fileURLWithPath: dir + "/train-images-idx3-ubyte"))
        try tl.write(to: URL(fileURLWithPath: dir + "/train-labels-idx1-ubyte"))
        try vi.write(to: URL(fileURLWithPath: dir + "/t10k-images-idx3-ubyte"))
        try vl.write(to: URL(fileURLWithPath: dir + "/t10k-labels-idx1-ubyte"))
    }

    /// SHA-256-free fingerprint of every file under dir (name, size, bytes hash): "untouched" checks.
    static func fingerprint(_ dir: String) -> [String: Int] {
        var out: [String: Int] = [:]
        let e = FileManager.default.enumerator(atPath: dir)
        while let f = e?.nextObject() as? String {
            if let d = FileManager.default.contents(atPath: dir + "/" + f) { out[f] = d.hashValue ^ d.count }
        }
        return out
    }
}
