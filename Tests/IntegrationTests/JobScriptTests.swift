import Foundation
import XCTest

/// The job scripts outside SLURM: every shell script passes `bash -n` and shellcheck; the PBS
/// script runs end to end with a PBS_NODEFILE written here (as PBS would), including a
/// preemption (SIGTERM to the job script) and the rerun that continues; the local script runs
/// its codistilled default and the sync baseline; the hostfile writer reads both schedulers'
/// node lists.
final class JobScriptTests: XCTestCase {
    /// Every shell script of the repository: jobs/, hostfiles/, scripts/.
    func shellScripts() throws -> [String] {
        var out: [String] = []
        for folder in ["jobs", "hostfiles", "scripts", "bench", "experiments"] {
            let url = Harness.root.appendingPathComponent(folder)
            guard let e = FileManager.default.enumerator(atPath: url.path) else { continue }
            while let f = e.nextObject() as? String {
                let path = url.path + "/" + f
                guard let head = FileManager.default.contents(atPath: path)?.prefix(64) else { continue }
                if String(decoding: head, as: UTF8.self).hasPrefix("#!/usr/bin/env bash") || f.hasSuffix(".sh") { out.append(path) }
            }
        }
        return out.sorted()
    }

    func testEveryShellScriptPassesBashNAndShellcheck() throws {
        let scripts = try shellScripts()
        XCTAssert(scripts.contains { $0.hasSuffix("jobs/slurm-train.sbatch") } && scripts.contains { $0.hasSuffix("jobs/pbs-train.pbs") },
                  "the job scripts were not found: \(scripts)")
        let env = ProcessInfo.processInfo.environment
        for script in scripts {
            let syntax = try Harness.capture(["30", "bash", "-n", script], environment: env)
            XCTAssertEqual(syntax.status, 0, "bash -n \(script): \(syntax.output)")
        }
        let lint = try Harness.capture(["120", "shellcheck", "--external-sources"] + scripts, environment: env, cwd: Harness.root.path)
        XCTAssertEqual(lint.status, 0, "shellcheck (Debian: apt-get install shellcheck):\n\(lint.output)")
    }

    func environment(_ extra: [String: String]) -> [String: String] {
        Harness.mpiEnvironment(extra.merging(["CODISTILL": Harness.binary]) { a, _ in a })
    }

    func testPBSScriptRunsStopsOnSIGTERMAndContinues() throws {
        try Harness.requireBinary()
        let dir = Harness.temporaryDirectory("pbs")
        try Harness.writeTinyIDX(in: dir, train: 1024, test: 256)
        // PBS writes one line per MPI rank (mpiprocs) into the node file.
        try "localhost\nlocalhost\n".write(toFile: dir + "/nodefile", atomically: true, encoding: .utf8)
        let env = environment([
            "PBS_O_WORKDIR": Harness.root.path, "PBS_NODEFILE": dir + "/nodefile", "PBS_JOBID": "4242.pbs-server",
            "MODEL": "mlp", "DATA_DIR": dir, "CKPT_DIR": dir + "/run", "SIGKILL_TIMEOUT": "3",
            "TRAIN_ARGS": "--steps 60000 --batch 16 --burn-in 100 --exchange-every 50 --log-every 1000",
            "MPIRUN_ARGS": "--bind-to none",
        ])
        let script = Harness.root.path + "/jobs/pbs-train.pbs"
        // Preempted: PBS sends SIGTERM to the job script.
        let log = dir + "/first.log"
        let job = try Harness.start(["-k", "5", "300", "bash", script], log: log, environment: env)
        defer { if job.isRunning { job.terminate() } }
        XCTAssert(Harness.waitFor(text: "step 2000/", in: log, seconds: 120), "the PBS job never reached step 2000")
        // To the job script itself (under timeout), as PBS sends it.
        kill(try XCTUnwrap(Harness.children(job.processIdentifier).first), SIGTERM)
        let deadline = Date().addingTimeInterval(60)
        while job.isRunning && Date() < deadline { usleep(100_000) }
        XCTAssertFalse(job.isRunning, "the PBS script did not end within 60 s of SIGTERM")
        job.waitUntilExit()
        let first = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertEqual(job.terminationStatus, 75, first)
        XCTAssert(first.contains("pbs-train: job 4242.pbs-server, 2 ranks on localhost, 2 groups"), first)
        XCTAssert(first.contains("pbs-train: SIGTERM, passing SIGUSR1 to mpirun"), first)
        XCTAssert(first.contains("[group 0] stopping") && first.contains("[group 1] stopping"), first)
        XCTAssert(first.contains("rerun (qrerun, or qsub -v CKPT_DIR="), first)

        // The rerun continues from the checkpoints to the end.
        var rerunEnv = env
        rerunEnv["TRAIN_ARGS"] = "--steps 6000 --batch 16 --burn-in 100 --exchange-every 50 --log-every 1000"
        let rerun = try Harness.capture(["-k", "5", "300", "bash", script], environment: rerunEnv)
        XCTAssertEqual(rerun.status, 0, rerun.output)
        XCTAssert(rerun.output.contains("resumed from"), rerun.output)
        XCTAssert(rerun.output.contains("pbs-train: mpirun exited with status 0"), rerun.output)
        for g in 0..<2 {
            XCTAssert(FileManager.default.fileExists(atPath: dir + "/run/group-\(g)/" + String(format: "step-%08d.h5", 6000)),
                      rerun.output)
        }
    }

    func testLocalScriptRunsTheBaselineAndTheCodistilledDefault() throws {
        try Harness.requireBinary()
        let dir = Harness.temporaryDirectory("local")
        try Harness.writeTinyIDX(in: dir, train: 1024, test: 256)
        let common = ["MODEL": "mlp", "DATA_DIR": dir, "EPOCHS": "4", "BURN_IN": "40", "BASELINE_DIR": dir + "/sync"]
        let script = Harness.root.path + "/jobs/local-train.sh"
        let baseline = try Harness.capture(["-k", "5", "300", "bash", script],
                                           environment: environment(common.merging(["GROUPS_PER_JOB": "1"]) { $1 }))
        XCTAssertEqual(baseline.status, 0, baseline.output)
        XCTAssert(baseline.output.contains("local-train: 2 ranks, 1 groups"), baseline.output)
        let codistilled = try Harness.capture(["-k", "5", "300", "bash", script],
                                              environment: environment(common.merging(["CKPT_DIR": dir + "/codistilled"]) { $1 }))
        XCTAssertEqual(codistilled.status, 0, codistilled.output)
        let out = codistilled.output
        XCTAssert(out.contains("local-train: 2 ranks, 2 groups"), out)
        XCTAssert(out.contains("the churn between groups 0 and 1"), out)
        XCTAssert(out.contains("churn"), out)
        XCTAssert(out.contains("local-train: the sync-SGD baseline (\(dir)/sync/group-0/"), out)
    }

    /// A hostfile without its comment lines.
    func hosts(_ file: String) -> String {
        file.split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0 + "\n" }.joined()
    }

    func testHostfileWriterReadsSlurmAndPBSNodeLists() throws {
        let script = Harness.root.path + "/hostfiles/make-hostfile.sh"
        let dir = Harness.temporaryDirectory("hostfile")
        // scontrol expands node lists without a controller, but needs a configuration to read
        // (inside a job, the site's).
        try "ClusterName=test\nSlurmctldHost=localhost\n".write(toFile: dir + "/slurm.conf", atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        env["SLURM_CONF"] = dir + "/slurm.conf"
        env["SLURM_JOB_NODELIST"] = "node[01-03],gpu7"
        env["SLURM_TASKS_PER_NODE"] = "2(x3),1"
        env["PBS_NODEFILE"] = nil
        let slurm = try Harness.capture(["30", "bash", script], environment: env)
        XCTAssertEqual(slurm.status, 0, slurm.output)
        XCTAssertEqual(hosts(slurm.stdout), "node01 slots=2\nnode02 slots=2\nnode03 slots=2\ngpu7 slots=1\n")

        try "b\na\nb\nb\n".write(toFile: dir + "/nodefile", atomically: true, encoding: .utf8)
        var pbs = ProcessInfo.processInfo.environment
        pbs["SLURM_JOB_NODELIST"] = nil
        pbs["PBS_NODEFILE"] = dir + "/nodefile"
        let written = dir + "/hosts"
        let r = try Harness.capture(["30", "bash", script, written], environment: pbs)
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertEqual(hosts(try String(contentsOfFile: written, encoding: .utf8)), "b slots=3\na slots=1\n")
    }
}
