import Foundation
import XCTest

/// Codistillation across two hosts over TCP, on one machine: two Linux network namespaces joined
/// by a veth link (scripts/netns-hosts.sh), mpirun started inside the first and reaching the
/// second through an rsh agent (scripts/netns-rsh) that runs each command in the namespace owning
/// the address, under its own hostname. Open MPI is restricted to TCP (btl tcp,self: no shared
/// memory) and one-sided windows go over it with osc pt2pt. One group per host, RMA exchange.
///
/// Skipped, saying why, only where the machine refuses `ip netns add` (no CAP_SYS_ADMIN, e.g. an
/// unprivileged container); any other failure fails.
final class MultiHostTests: XCTestCase {
    struct SetupFailure: Error, CustomStringConvertible { var description: String }
    static let subnet = "10.213.0"
    /// Unique per test process, so concurrent runs never share namespaces: cdmh<pid>-1, -2.
    /// These are also the hosts' hostnames.
    let prefix = "cdmh\(getpid())-"
    let hosts = 2
    var script: String { Harness.root.appendingPathComponent("scripts/netns-hosts.sh").path }
    var agent: String { Harness.root.appendingPathComponent("scripts/netns-rsh").path }
    /// iproute2's ip, wherever this system keeps it (PATH may lack the sbin directories).
    let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Runs a command (no shell), with a time limit, capturing its output.
    func command(_ argv: [String], timeout: Int = 60, environment extra: [String: String] = [:]) throws -> Harness.Result {
        try Harness.capture(["-k", "5", String(timeout)] + argv,
                            environment: ProcessInfo.processInfo.environment.merging(extra) { _, given in given })
    }

    func down() {
        do {
            let r = try command(["bash", script, "down", prefix, String(hosts)])
            XCTAssertEqual(r.status, 0, "netns-hosts.sh down: \(r.output)")
            let left = try command([ip ?? "ip", "netns", "list"]).stdout
            XCTAssertFalse(left.contains(prefix), "namespaces left behind: \(left)")
        } catch {
            XCTFail("teardown: \(error)")
        }
    }

    override func setUpWithError() throws {
        try Harness.requireBinary()
        // A missing package is a failure, not a reason to skip (.ci/run installs iproute2).
        guard let ip else { throw SetupFailure(description: "no ip command: install iproute2") }
        // Can this machine make network namespaces at all? The only reason to skip.
        let probe = try command([ip, "netns", "add", prefix + "probe"])
        guard probe.status == 0 else {
            let reason = "network namespaces are forbidden on this machine: `ip netns add` failed (exit \(probe.status)): "
                + probe.stderr.trimmingCharacters(in: .whitespacesAndNewlines) + " (it needs root with CAP_SYS_ADMIN)"
            print("MultiHostTests skipped: \(reason)")
            throw XCTSkip(reason)
        }
        _ = try command([ip, "netns", "del", prefix + "probe"])
        let up = try command(["bash", script, "up", prefix, String(hosts)])
        guard up.status == 0 else {
            down()
            throw SetupFailure(description: "netns-hosts.sh up \(prefix) \(hosts) failed (exit \(up.status)): \(up.output)")
        }
    }

    /// Whatever happened: kills what still runs in the namespaces, removes them and their links.
    override func tearDown() {
        down()
        super.tearDown()
    }

    /// A shell word: the rsh agent, like ssh, hands its command to a shell.
    func quoted(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    /// `mpirun` inside the first host, launching across the hosts over TCP only.
    /// `apps`: one (host number, argv) per rank, an MPMD launch so each rank is placed on its host.
    func mpirun(_ apps: [(host: Int, argv: [String])], timeout: Int = 150) throws -> Harness.Result {
        let net = "\(Self.subnet).0/24"
        var argv = ["mpirun", "--display-map", "--bind-to", "none",
                    "--mca", "plm_rsh_agent", agent, "--mca", "plm_rsh_no_tree_spawn", "1",
                    "--mca", "oob_tcp_if_include", net,
                    "--mca", "btl", "tcp,self", "--mca", "btl_tcp_if_include", net,
                    "--mca", "osc", "pt2pt"]
        for (i, app) in apps.enumerated() {
            argv += (i > 0 ? [":"] : []) + ["-np", "1", "--host", "\(Self.subnet).\(app.host)"] + app.argv
        }
        return try command([agent, "\(prefix)1", argv.map(quoted).joined(separator: " ")], timeout: timeout,
                           environment: ["OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                                         "NETNS_RSH_PREFIX": prefix])
    }

    /// Versions a group's leader logged for one peer, with the step of the exchange.
    func fresh(_ output: String, group: Int, peer: Int) -> [(step: Int, version: Int)] {
        output.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("[group \(group)] step "), let r = line.range(of: ": peer group \(peer) snapshot version "),
                  let step = Int(line.dropFirst("[group \(group)] step ".count).prefix(while: { $0.isNumber })),
                  let version = Int(line[r.upperBound...].prefix(while: { $0.isNumber })) else { return nil }
            return (step, version)
        }
    }

    /// Seconds each group spent in the exchange, per metrics row (step -> exchange_s).
    func exchangeSeconds(_ csvPath: String) throws -> [Int: Double] {
        let rows = try String(contentsOfFile: csvPath, encoding: .utf8).split(separator: "\n")
        let fields = { (line: Substring) in line.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        let header = fields(rows[0])
        let stepCol = try XCTUnwrap(header.firstIndex(of: "step")), col = try XCTUnwrap(header.firstIndex(of: "exchange_s"))
        var out: [Int: Double] = [:]
        for row in rows.dropFirst() {
            let f = fields(row)
            if let s = Int(f[stepCol]), let x = Double(f[col]) { out[s] = x }
        }
        return out
    }

    /// Two hosts, one rank and one group on each: the ranks report different hostnames, Open MPI
    /// maps them to two nodes, both groups finish with a test accuracy, and snapshots cross the
    /// link in both directions, also while the target is busy evaluating.
    ///
    /// Busy targets without changing codistill: each group evaluates the full 10,000-image test
    /// split every few steps (≈0.1-0.2 s each against ≈2 ms a training step), group 0 every 4 and
    /// group 1 every 5 steps. Different schedules on purpose: with the same one the two
    /// evaluate at the same moments (a blocking read waits for the target's evaluation to end,
    /// which puts the groups in step), and reads then rarely find the target busy. Over TCP a
    /// passive target serves a read only inside MPI calls, so a read of an evaluating target
    /// waits in the exchange until the evaluation ends: exchange_s in metrics.csv shows it.
    func testCodistillationAcrossTwoHosts() throws {
        let dir = Harness.temporaryDirectory("multihost")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let common = ["train", "--model", "mlp", "--groups", "2", "--exchange", "rma", "--steps", "200", "--batch", "32",
                      "--burn-in", "40", "--exchange-every", "10", "--log-every", "10", "--checkpoint-dir", dir + "/ck"]
        // Each rank says where it runs, then becomes codistill (same process, same MPI rank).
        let announce = ["bash", "-c", "echo \"rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE on host $(hostname)\"; exec \"$0\" \"$@\"",
                        Harness.binary]
        let r = try mpirun([(1, announce + common + ["--eval-every", "4"]), (2, announce + common + ["--eval-every", "5"])])
        print(r.output.split(separator: "\n").filter {
            $0.contains("Data for node") || $0.hasPrefix("rank ") || $0.contains("snapshot") || $0.contains("test_acc=")
        }.joined(separator: "\n"))
        XCTAssertEqual(r.status, 0, r.output)

        // Two ranks, two hostnames, neither the machine's own; Open MPI sees two nodes.
        let machine = ProcessInfo.processInfo.hostName
        for rank in 0..<2 {
            XCTAssert(r.stdout.contains("rank \(rank) of 2 on host \(prefix)\(rank + 1)\n"), "rank \(rank) on host \(prefix)\(rank + 1): \(r.output)")
        }
        XCTAssertNotEqual(machine, "\(prefix)1")
        let nodes = r.stdout.split(separator: "\n").filter { $0.contains("Data for node:") }
        XCTAssertEqual(nodes.count, 2, "two nodes in the job map: \(r.stdout)")
        XCTAssert(nodes.allSatisfy { $0.contains("Num procs: 1") }, "one rank per node: \(nodes)")
        XCTAssert(nodes.contains { $0.contains("\(Self.subnet).2") }, "the second host is a node of its own: \(nodes)")

        for g in 0..<2 {
            XCTAssert(r.stdout.contains("group \(g) test_acc="), "group \(g)'s final test accuracy: \(r.output)")
        }
        // Snapshots cross in both directions, versions only advancing, while the targets are busy
        // (evaluating every 4 or 5 steps), and no reader waits for them: one-sided reads are
        // started at an exchange step and collected later (PeerWindow). With the earlier
        // blocking lock/get/unlock a reader waited out its target's evaluation (>= 30 ms here).
        // The first exchange also builds the peer's model, so it is not counted.
        let busyWait = 0.03
        for (g, p) in [(0, 1), (1, 0)] {
            let seen = fresh(r.stdout, group: g, peer: p)
            XCTAssertGreaterThanOrEqual(seen.count, 3, "group \(g) should read many snapshots of group \(p) across hosts: \(r.stdout)")
            XCTAssertEqual(seen.map(\.version), seen.map(\.version).sorted(), "versions only advance")
            let waits = try exchangeSeconds(dir + "/ck/group-\(g)/metrics.csv")
            let whileBusy = seen.filter { (waits[$0.step] ?? 0) >= busyWait }
            let ms = seen.compactMap { waits[$0.step] }.map { Int($0 * 1000) }
            print("group \(g) read \(seen.count) snapshots of group \(p) (host \(prefix)\(p + 1)); exchange ms \(ms); "
                  + "\(whileBusy.count) waited >= \(Int(busyWait * 1000)) ms for a busy target")
            XCTAssert(whileBusy.filter { $0.step != seen.first?.step }.isEmpty,
                      "group \(g) never waits for group \(p) while it evaluates: exchange ms \(ms)")
        }
    }
}
