import Foundation
import XCTest

/// The SLURM job scripts under a real (one-node) SLURM: scripts/slurm-cluster.sh starts munged,
/// slurmctld and slurmd in a temporary directory for this class and stops them afterwards.
///
/// One uninterrupted lock-step codistilled job (jobs/slurm-train.sbatch, mpirun inside the
/// allocation) gives the reference weights; the same job through jobs/slurm-srun.sbatch (srun
/// --mpi=pmix), and the same job requeued twice, by `scontrol requeue` (what preemption does)
/// and by its own script after the time-limit signal, must end with exactly those weights.
final class SlurmTests: XCTestCase {
    nonisolated(unsafe) static var clusterDirectory = ""
    nonisolated(unsafe) static var clusterFailure: String?

    /// Runs scripts/slurm-cluster.sh through the C library's system(): Foundation's Process,
    /// waited for in a class setUp, never saw the script end (the test hung with the script a
    /// zombie). Its output goes to DIR.log.
    static func cluster(_ command: String) -> String? {
        let log = clusterDirectory + ".log"
        let status = system("timeout -k 5 120 bash '\(Harness.root.path)/scripts/slurm-cluster.sh' \(command) '\(clusterDirectory)' >>'\(log)' 2>&1")
        guard status != 0 else { return nil }
        return "scripts/slurm-cluster.sh \(command) failed (status \(status)):\n" + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
    }

    override class func setUp() {
        super.setUp()
        clusterDirectory = Harness.temporaryDirectory("slurm")
        clusterFailure = cluster("start")
    }

    override class func tearDown() {
        _ = cluster("stop")
        super.tearDown()
    }

    override func setUpWithError() throws {
        try Harness.requireBinary()
        if let failure = Self.clusterFailure { XCTFail(failure); throw XCTSkip("no SLURM cluster") }
    }

    let steps = 30_000

    /// The environment a job is submitted with (sbatch passes it on to the batch script).
    func jobEnvironment(data: String, checkpoints: String) -> [String: String] {
        var env = Harness.mpiEnvironment()
        env["SLURM_CONF"] = Self.clusterDirectory + "/slurm.conf"
        env["CODISTILL"] = Harness.binary
        env["MODEL"] = "mlp"
        env["DATA_DIR"] = data
        env["CKPT_DIR"] = checkpoints
        env["TRAIN_ARGS"] = "--steps \(steps) --batch 16 --burn-in 100 --exchange-every 50 --exchange-mode lockstep --log-every 1000"
        // mpirun lingers about twice this long after the ranks have stopped (jobs/README.md).
        env["SIGKILL_TIMEOUT"] = "3"
        return env
    }

    /// `sbatch` on one node with two tasks; `wait`: until the job ends (its status is sbatch's).
    func submit(_ script: String, log: String, environment: [String: String], wait: Bool) throws -> Harness.Result {
        let args = ["-k", "5", "300", "sbatch", "--parsable", "--nodes=1", "--ntasks-per-node=2", "--output=" + log]
            + (wait ? ["--wait"] : []) + [Harness.root.path + "/jobs/" + script]
        return try Harness.capture(args, environment: environment, cwd: Harness.root.path)
    }

    func scontrol(_ args: [String], environment: [String: String]) throws -> String {
        let r = try Harness.capture(["-k", "5", "30", "scontrol"] + args, environment: environment)
        XCTAssertEqual(r.status, 0, "scontrol \(args.joined(separator: " ")): \(r.output)")
        return r.stdout
    }

    func text(_ path: String) -> String { Harness.contents(path) }

    func waitFor(_ text: String, after: String? = nil, in path: String, seconds: Double) -> Bool {
        Harness.waitFor(text: text, after: after, in: path, seconds: seconds)
    }

    func testJobScriptsUnderSbatchAndARequeuedLockStepJobEndWithTheSameWeights() throws {
        let dir = Harness.temporaryDirectory("slurm-jobs")
        try Harness.writeTinyIDX(in: dir, train: 1024, test: 256, bright: 95, dark: 70, noise: 110)
        let final = String(format: "step-%08d.h5", steps)

        // The reference: one uninterrupted job, mpirun inside the allocation.
        let reference = try submit("slurm-train.sbatch", log: dir + "/reference.out",
                                   environment: jobEnvironment(data: dir, checkpoints: dir + "/reference"), wait: true)
        let referenceLog = text(dir + "/reference.out")
        XCTAssertEqual(reference.status, 0, reference.output + referenceLog)
        XCTAssert(referenceLog.contains("slurm-train: mpirun exited with status 0"), referenceLog)
        XCTAssert(referenceLog.contains("[group 1] step 200: peer group 0 snapshot"), referenceLog)

        // The same job started by srun --mpi=pmix.
        let direct = try submit("slurm-srun.sbatch", log: dir + "/srun.out",
                                environment: jobEnvironment(data: dir, checkpoints: dir + "/srun"), wait: true)
        let srunLog = text(dir + "/srun.out")
        XCTAssertEqual(direct.status, 0, direct.output + srunLog)
        XCTAssert(srunLog.contains("slurm-srun: srun exited with status 0"), srunLog)

        // The same job, requeued by SLURM mid-run and then by its own script after the
        // time-limit warning (SIGUSR1 to the batch shell, as --signal=B:USR1@120 sends it).
        let env = jobEnvironment(data: dir, checkpoints: dir + "/requeued")
        let log = dir + "/requeued.out"
        let submitted = try submit("slurm-train.sbatch", log: log, environment: env, wait: false)
        XCTAssertEqual(submitted.status, 0, submitted.output)
        let job = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        defer { _ = try? Harness.capture(["-k", "5", "30", "scancel", job], environment: env) }
        XCTAssert(waitFor("step 4000/", in: log, seconds: 120), "the job never reached step 4000:\n" + text(log))
        _ = try scontrol(["requeue", job], environment: env)
        XCTAssert(waitFor("resumed from", after: "restart count 1", in: log, seconds: 120), "the requeued job did not resume:\n" + text(log))
        XCTAssert(waitFor("000/", after: "restart count 1", in: log, seconds: 120), "the requeued job made no progress:\n" + text(log))
        let signal = try Harness.capture(["-k", "5", "30", "scancel", "--batch", "--signal=USR1", job], environment: env)
        XCTAssertEqual(signal.status, 0, signal.output)
        XCTAssert(waitFor("slurm-train: mpirun exited with status 0", after: "restart count 2", in: log, seconds: 180),
                  "the job requeued by its script did not finish:\n" + text(log))
        let requeuedLog = text(log)
        XCTAssert(requeuedLog.contains("DUE TO JOB REQUEUE"), requeuedLog)
        XCTAssert(requeuedLog.contains("slurm-train: stopped with a checkpoint; requeued job \(job)"), requeuedLog)
        for g in 0..<2 { XCTAssert(requeuedLog.contains("[group \(g)] stopping on a stop signal"), requeuedLog) }

        for g in 0..<2 {
            let expected = try Harness.modelTensors(dir + "/reference/group-\(g)/" + final)
            XCTAssertFalse(expected.isEmpty)
            XCTAssertEqual(expected, try Harness.modelTensors(dir + "/srun/group-\(g)/" + final),
                           "group \(g): the srun job ended with other weights than the mpirun job")
            XCTAssertEqual(expected, try Harness.modelTensors(dir + "/requeued/group-\(g)/" + final),
                           "group \(g): the requeued job ended with other weights than the uninterrupted one")
        }
    }
}
