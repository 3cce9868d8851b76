import CHDF5
import Engine
import Foundation
import NN
import XCTest
@testable import Checkpoint

final class CheckpointTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("ckpt-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: dir)
    }

    static let cnnSpec = ModelSpec(name: "cnn", inputShape: [1, 28, 28], classes: 10)
    static let cnnTrainable = 320 + 64 + 18496 + 128 + 401_536 + 1290

    /// A model after one training step: BN statistics updated by a forward pass, one SGD step
    /// with fake gradients (so momentum is nonzero), a few num_batches_tracked counts.
    struct Run {
        let model: Module
        let store: ParameterStore
        let optimizer: Optimizer
    }

    func makeRun(_ spec: ModelSpec = cnnSpec, seed: UInt64 = 1, adam: Bool = false, momentum: Float = 0.9, train: Bool = true) throws -> Run {
        let model = try Models.make(spec)
        let store = ParameterStore(model: model, seed: seed)
        let opt: Optimizer = adam ? Adam(parameters: store, weightDecay: 0.01) : SGD(parameters: store, momentum: momentum, weightDecay: 5e-4)
        if train {
            _ = withNoGrad { model(Tensor.uniform([2] + spec.inputShape, seed: seed)) }
            for i in 0..<store.trainableCount { store.gradients[i] = Float(i % 97) * 1e-3 - 0.05 }
            opt.step(lr: 0.1)
            for (i, (_, bn)) in store.batchNorms.enumerated() { bn.numBatchesTracked += 10 * (i + 1) }
        }
        return Run(model: model, store: store, optimizer: opt)
    }

    func metadata(step: Int = 1, model: ModelSpec = cnnSpec) -> CheckpointMetadata {
        CheckpointMetadata(step: step, epoch: 0, group: 1, numGroups: 2, worldSize: 4, model: model,
                           configJSON: #"{"lr":0.1,"model":"cnn","optimizer":"sgd"}"#, created: "2025-01-02T03:04:05Z")
    }

    func runState(step: Int = 1) -> RunState {
        var rng = RandomGenerator(seed: 42)
        _ = rng.next()
        return RunState(step: step, epoch: 0, rngWords: rng.words, dataSeed: 0xDEAD_BEEF_CAFE_F00D, stepInEpoch: step)
    }

    @discardableResult
    func write(_ run: Run, step: Int = 1, to path: String? = nil, group: Int = 1, withOptimizer: Bool = true) throws -> String {
        let p = path ?? Checkpoint.path(directory: dir.path, group: group, step: step)
        try Checkpoint.write(path: p, store: run.store, optimizer: withOptimizer ? run.optimizer : nil,
                             metadata: metadata(step: step), state: runState(step: step),
                             metrics: ["test_acc": 0.875, "loss": 0.3125])
        return p
    }

    func bits(_ p: UnsafePointer<Float>, _ n: Int) -> [UInt32] { (0..<n).map { p[$0].bitPattern } }
    func bits(_ a: [Float]) -> [UInt32] { a.map(\.bitPattern) }

    func assertThrows(_ body: @autoclosure () throws -> Any, contains needles: [String],
                      file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try body()
            XCTFail("expected an error containing \(needles)", file: file, line: line)
        } catch {
            XCTAssert(error is CheckpointError, "unexpected error type: \(error)", file: file, line: line)
            let text = "\(error)"
            for n in needles { XCTAssert(text.contains(n), "'\(n)' not in: \(text)", file: file, line: line) }
        }
    }

    // MARK: Round trip

    func testPathLayout() {
        XCTAssertEqual(Checkpoint.path(directory: "/ck", group: 2, step: 1234), "/ck/group-2/step-00001234.h5")
        XCTAssertEqual(Checkpoint.path(directory: "/ck/", group: 0, step: 123_456_789), "/ck/group-0/step-123456789.h5")
    }

    func testRoundTripIsBitwiseExact() throws {
        for adam in [false, true] {
            let run = try makeRun(adam: adam)
            let path = try write(run, step: adam ? 2 : 1)
            let ck = try Checkpoint.read(path: path)
            let s = run.store
            XCTAssertEqual(ck.path, path)
            XCTAssertEqual(ck.metadata, metadata(step: adam ? 2 : 1))
            XCTAssertEqual(ck.state, runState(step: adam ? 2 : 1))
            XCTAssertEqual(ck.metrics, ["test_acc": 0.875, "loss": 0.3125])
            XCTAssertEqual(ck.tensors.count, s.trainable.count + s.buffersLayout.count)
            for v in s.trainable {
                XCTAssertEqual(ck.tensors[v.name]?.shape, v.shape, v.name)
                XCTAssertEqual(bits(ck.tensors[v.name]!.values), bits(s.values + v.offset, v.count), v.name)
            }
            for v in s.buffersLayout {
                XCTAssertEqual(ck.tensors[v.name]?.shape, v.shape, v.name)
                XCTAssertEqual(bits(ck.tensors[v.name]!.values), bits(s.buffers + v.offset, v.count), v.name)
            }
            XCTAssertEqual(ck.numBatchesTracked, ["features.1": 11, "features.5": 21])
            XCTAssertEqual(ck.optimizerKind, adam ? "adam" : "sgd")
            XCTAssertEqual(ck.optimizerStep, 1)
            XCTAssertEqual(Set(ck.optimizerState.keys), Set(run.optimizer.stateBuffers.map(\.0)))
            for (name, buffer) in run.optimizer.stateBuffers {
                var nonzero = false
                for v in s.trainable {
                    let got = ck.optimizerState[name]![v.name]!
                    XCTAssertEqual(bits(got), bits(buffer + v.offset, v.count), "\(name)/\(v.name)")
                    nonzero = nonzero || got.contains { $0 != 0 }
                }
                XCTAssert(nonzero, "\(name) should be nonzero after a step")
            }
        }
    }

    func testWithoutOptimizerOrMomentum() throws {
        let run = try makeRun()
        let path = try write(run, withOptimizer: false)
        let ck = try Checkpoint.read(path: path)
        XCTAssertNil(ck.optimizerKind)
        XCTAssert(ck.optimizerState.isEmpty)
        // A store-only checkpoint (a peer snapshot) restores without an optimizer, not with one.
        let fresh = try makeRun(seed: 9, train: false)
        assertThrows(try Checkpoint.restore(ck, into: fresh.store, optimizer: fresh.optimizer),
                     contains: ["no optimizer state", "'sgd'", "Nothing was restored"])
        try Checkpoint.restore(ck, into: fresh.store, optimizer: nil)
        XCTAssertEqual(fresh.store.checksum(), run.store.checksum())

        let plain = try makeRun(momentum: 0)
        let p2 = try write(plain, step: 7)
        let ck2 = try Checkpoint.read(path: p2)
        XCTAssertEqual(ck2.optimizerKind, "sgd")
        XCTAssert(ck2.optimizerState.isEmpty)
    }

    // MARK: Restore

    func testRestoreIntoFreshStoreResumesExactly() throws {
        let run = try makeRun()
        let ck = try Checkpoint.read(path: try write(run))
        let fresh = try makeRun(seed: 123, train: false)
        XCTAssertNotEqual(fresh.store.checksum(), run.store.checksum())
        try Checkpoint.restore(ck, into: fresh.store, optimizer: fresh.optimizer, model: Self.cnnSpec)
        XCTAssertEqual(fresh.store.checksum(), run.store.checksum())
        XCTAssertEqual(fresh.optimizer.stepCount, 1)
        XCTAssertEqual(fresh.store.batchNorms.map(\.1.numBatchesTracked), [11, 21])
        // The next step is identical bit for bit (momentum restored, not restarted).
        for r in [run, fresh] {
            for i in 0..<r.store.trainableCount { r.store.gradients[i] = Float(i % 13) * 1e-2 - 0.06 }
            r.optimizer.step(lr: 0.05)
        }
        XCTAssertEqual(fresh.store.checksum(), run.store.checksum())
    }

    func testRestoreIntoDifferentModelFailsAndChangesNothing() throws {
        let ck = try Checkpoint.read(path: try write(try makeRun()))
        let mlpSpec = ModelSpec(name: "mlp", inputShape: [1, 28, 28], classes: 10)
        let mlp = try makeRun(mlpSpec, seed: 5)
        let before = mlp.store.checksum()
        let velocity = bits(mlp.optimizer.stateBuffers[0].1, mlp.store.trainableCount)
        assertThrows(try Checkpoint.restore(ck, into: mlp.store, optimizer: mlp.optimizer, model: mlpSpec),
                     contains: ["was written for model 'cnn'", "this run builds 'mlp'", "only in this model: 1.weight [256, 784]",
                                "only in the checkpoint: classifier.1.bias [128], classifier.1.weight [128, 3136]",
                                "Nothing was restored", ck.path])
        XCTAssertEqual(mlp.store.checksum(), before)
        XCTAssertEqual(bits(mlp.optimizer.stateBuffers[0].1, mlp.store.trainableCount), velocity)
        XCTAssertEqual(mlp.optimizer.stepCount, 1)
        // Without the spec the message still names the checkpoint's model and the mismatches.
        assertThrows(try Checkpoint.restore(ck, into: mlp.store, optimizer: nil), contains: ["'cnn'", "1.weight [256, 784]"])

        // Same model, different optimizer: refused before anything is copied.
        let adam = try makeRun(seed: 6, adam: true)
        let adamBefore = adam.store.checksum()
        assertThrows(try Checkpoint.restore(ck, into: adam.store, optimizer: adam.optimizer),
                     contains: ["optimizer is 'sgd'", "uses 'adam'"])
        XCTAssertEqual(adam.store.checksum(), adamBefore)
        XCTAssertEqual(adam.store.batchNorms.map(\.1.numBatchesTracked), [11, 21])

        // Same model, different input size: shape mismatch named with both shapes.
        let big = try makeRun(ModelSpec(name: "cnn", inputShape: [1, 32, 32], classes: 10), seed: 7)
        assertThrows(try Checkpoint.restore(ck, into: big.store, optimizer: big.optimizer),
                     contains: ["classifier.1.weight is [128, 3136] in the checkpoint but [128, 4096] in this model"])
    }

    // MARK: Atomicity

    func testWriteIsAtomic() throws {
        let run = try makeRun()
        let path = try write(run)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"))
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), ["step-00000001.h5"])
        let original = try Data(contentsOf: URL(fileURLWithPath: path))

        // A write that fails (its temporary file cannot be created) leaves the old file byte-identical.
        try FileManager.default.createDirectory(atPath: path + ".tmp", withIntermediateDirectories: false)
        let other = try makeRun(seed: 77)
        assertThrows(try Checkpoint.write(path: path, store: other.store, optimizer: other.optimizer,
                                          metadata: metadata(step: 2), state: runState(step: 2)),
                     contains: ["cannot write checkpoint \(path)", "unchanged"])
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), original)
        try FileManager.default.removeItem(atPath: path + ".tmp")

        // A folder that cannot be created (a file is in the way).
        let blocker = dir.appendingPathComponent("blocker").path
        _ = FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8))
        assertThrows(try write(run, to: blocker + "/group-0/step-00000001.h5"), contains: ["cannot create the folder"])

        // Overwriting with a good write replaces it whole, leaving no temporary file.
        try write(other, to: path)
        XCTAssertEqual(try Checkpoint.read(path: path).tensors["features.0.bias"]!.values,
                       Array(UnsafeBufferPointer(start: other.store.values + other.store.view(named: "features.0.bias")!.offset, count: 32)))
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    // MARK: latest / prune

    func truncatedCopy(of source: String, to dest: String, keep fraction: Double) throws {
        try FileManager.default.copyItem(atPath: source, toPath: dest)
        let size = try FileManager.default.attributesOfItem(atPath: dest)[.size] as! Int
        let h = try XCTUnwrap(FileHandle(forWritingAtPath: dest))
        try h.truncate(atOffset: UInt64(Double(size) * fraction))
        try h.close()
    }

    func testLatestSkipsDamagedFilesAndIgnoresTmp() throws {
        let run = try makeRun()
        XCTAssertNil(Checkpoint.latest(directory: dir.path, group: 1).path)
        let p1 = try write(run, step: 1)
        let p2 = try write(run, step: 2)
        XCTAssertEqual(Checkpoint.latest(directory: dir.path, group: 1).path, p2)
        let p3 = Checkpoint.path(directory: dir.path, group: 1, step: 3)
        try truncatedCopy(of: p2, to: p3, keep: 0.5)
        let p99 = Checkpoint.path(directory: dir.path, group: 1, step: 99)
        _ = FileManager.default.createFile(atPath: p99, contents: Data(repeating: 0x42, count: 4096))
        // A complete-looking .tmp of a newer step and other groups' files are never candidates.
        try FileManager.default.copyItem(atPath: p2, toPath: Checkpoint.path(directory: dir.path, group: 1, step: 100) + ".tmp")
        try write(run, step: 500, group: 2)
        let (latest, skipped) = Checkpoint.latest(directory: dir.path, group: 1)
        XCTAssertEqual(latest, p2)
        XCTAssertEqual(skipped, [p99, p3])
        XCTAssertEqual(Checkpoint.latest(directory: dir.path, group: 2).path,
                       Checkpoint.path(directory: dir.path, group: 2, step: 500))
        try FileManager.default.removeItem(atPath: p2)
        XCTAssertEqual(Checkpoint.latest(directory: dir.path, group: 1).path, p1)
    }

    func testPruneKeepsNewest() throws {
        let run = try makeRun()
        let paths = try (1...5).map { try write(run, step: $0 * 10) }
        let tmp = Checkpoint.path(directory: dir.path, group: 1, step: 60) + ".tmp"
        try FileManager.default.copyItem(atPath: paths[0], toPath: tmp)
        let otherGroup = try write(run, step: 1, group: 3)
        try Checkpoint.prune(directory: dir.path, group: 1, keep: 0)
        XCTAssert(paths.allSatisfy { FileManager.default.fileExists(atPath: $0) })
        try Checkpoint.prune(directory: dir.path, group: 1, keep: 2)
        XCTAssertEqual(paths.map { FileManager.default.fileExists(atPath: $0) }, [false, false, false, true, true])
        // Prune follows a completed write by the folder's only writer: a .tmp there is what a
        // killed write left behind.
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp))
        XCTAssert(FileManager.default.fileExists(atPath: otherGroup))
        try Checkpoint.prune(directory: dir.path, group: 1, keep: 5)
        XCTAssertEqual(paths.map { FileManager.default.fileExists(atPath: $0) }, [false, false, false, true, true])
        try Checkpoint.prune(directory: dir.path, group: 9, keep: 1)  // no such group: nothing to do
    }

    // MARK: Damaged files

    func testReadErrorsAreDistinct() throws {
        let good = try write(try makeRun())
        assertThrows(try Checkpoint.read(path: dir.appendingPathComponent("nope.h5").path), contains: ["does not exist"])
        assertThrows(try Checkpoint.read(path: dir.path), contains: ["is a folder"])

        let garbage = dir.appendingPathComponent("garbage.h5").path
        _ = FileManager.default.createFile(atPath: garbage, contents: Data("not a checkpoint at all\n".utf8))
        assertThrows(try Checkpoint.read(path: garbage), contains: [garbage, "not an HDF5 file"])

        let empty = dir.appendingPathComponent("empty.h5").path
        _ = FileManager.default.createFile(atPath: empty, contents: Data())
        assertThrows(try Checkpoint.read(path: empty), contains: [empty, "empty (0 bytes)"])

        for fraction in [0.9, 0.5, 0.01] {
            let cut = dir.appendingPathComponent("cut-\(fraction).h5").path
            try truncatedCopy(of: good, to: cut, keep: fraction)
            assertThrows(try Checkpoint.read(path: cut), contains: [cut, "truncated or damaged"])
        }

        // An HDF5 file that is not a checkpoint, and a checkpoint from a newer format.
        let foreign = dir.appendingPathComponent("foreign.h5").path
        var f = H5Fcreate(foreign, cd_h5f_acc_trunc(), cd_h5p_default(), cd_h5p_default())
        XCTAssertGreaterThanOrEqual(f, 0)
        H5Fclose(f)
        assertThrows(try Checkpoint.read(path: foreign), contains: [foreign, "not a codistill checkpoint", "'format'"])

        let newer = dir.appendingPathComponent("newer.h5").path
        try FileManager.default.copyItem(atPath: good, toPath: newer)
        f = H5Fopen(newer, cd_h5f_acc_rdwr(), cd_h5p_default())
        XCTAssertGreaterThanOrEqual(f, 0)
        XCTAssertGreaterThanOrEqual(H5Adelete(f, "format_version"), 0)
        var two: Int64 = 2
        let scalar = H5Screate(H5S_SCALAR)
        let version = H5Acreate2(f, "format_version", cd_h5t_std_i64le(), scalar, cd_h5p_default(), cd_h5p_default())
        XCTAssertGreaterThanOrEqual(H5Awrite(version, cd_h5t_native_int64(), &two), 0)
        H5Aclose(version)
        H5Sclose(scalar)
        H5Fclose(f)
        // Edited by another tool, the seal refuses it and names the way to seal it again.
        assertThrows(try Checkpoint.read(path: newer), contains: [newer, "changed after it was written", "inspect --reseal"])
        try Checkpoint.reseal(path: newer)
        assertThrows(try Checkpoint.read(path: newer), contains: [newer, "format_version 2", "newer than this build", "Upgrade"])
        XCTAssertNil(Checkpoint.latest(directory: dir.path, group: 0).path)

        let broken = dir.appendingPathComponent("no-rng.h5").path
        try FileManager.default.copyItem(atPath: good, toPath: broken)
        f = H5Fopen(broken, cd_h5f_acc_rdwr(), cd_h5p_default())
        XCTAssertGreaterThanOrEqual(H5Ldelete(f, "/state/rng", cd_h5p_default()), 0)
        H5Fclose(f)
        try Checkpoint.reseal(path: broken)
        assertThrows(try Checkpoint.read(path: broken), contains: [broken, "/state/rng is missing"])
    }

    // MARK: Outside tools

    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func run(_ executable: String, _ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testH5dumpAndH5lsShowTheLayout() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/h5dump") else { throw XCTSkip("h5dump not installed (apt install hdf5-tools)") }
        let path = try write(try makeRun())
        let dump = try run("/usr/bin/h5dump", ["-H", path])
        XCTAssertEqual(dump.status, 0, dump.err)
        for needle in [#"GROUP "model""#, #"DATASET "features.0.weight""#, #"ATTRIBUTE "format""#,
                       "DATASPACE  SCALAR", "H5T_STD_I64LE", "H5T_STD_U64LE", "H5T_IEEE_F32LE", "CSET H5T_CSET_UTF8",
                       #"GROUP "optimizer""#, #"GROUP "momentum""#, #"DATASET "rng""#, #"DATASET "features.1.num_batches_tracked""#] {
            XCTAssert(dump.out.contains(needle), "h5dump -H lacks \(needle)")
        }
        let format = try run("/usr/bin/h5dump", ["-a", "/format", path])
        XCTAssertEqual(format.status, 0, format.err)
        XCTAssert(format.out.contains(#"(0): "codistill-checkpoint""#), format.out)
        let one = try run("/usr/bin/h5dump", ["-H", "-d", "/model/features.0.weight", path])
        XCTAssertEqual(one.status, 0, one.err)
        XCTAssert(one.out.contains(#"DATASET "/model/features.0.weight""#) && one.out.contains("( 32, 1, 3, 3 )"), one.out)
        let ls = try run("/usr/bin/h5ls", ["-r", path])
        XCTAssertEqual(ls.status, 0, ls.err)
        XCTAssert(ls.out.contains("/model/features.0.weight Dataset {32, 1, 3, 3}"), ls.out)
        XCTAssert(ls.out.contains("/optimizer/momentum/classifier.1.weight Dataset {128, 3136}"), ls.out)
    }

    /// A python with h5py: the repository's .venv-bench if it has one, else python3.
    func pythonWith(_ modules: String) throws -> String {
        for candidate in [Self.root.appendingPathComponent(".venv-bench/bin/python").path, "/usr/bin/python3", "/usr/local/bin/python3"]
        where FileManager.default.isExecutableFile(atPath: candidate) {
            if let r = try? run(candidate, ["-c", "import \(modules)"]), r.status == 0 { return candidate }
        }
        throw XCTSkip("no python with \(modules) (tried .venv-bench/bin/python and python3); install it into a venv to run this check")
    }

    func testH5pyReadsIt() throws {
        let python = try pythonWith("h5py")
        let run = try makeRun()
        let path = try write(run)
        let script = """
        import sys, h5py, numpy as np
        f = h5py.File(sys.argv[1], "r")
        a = f.attrs
        assert isinstance(a["format"], str) and a["format"] == "codistill-checkpoint", repr(a["format"])
        assert isinstance(a["config"], str) and isinstance(a["model"], str) and isinstance(a["created"], str)
        assert a["step"] == 1 and np.shape(a["step"]) == () and a["format_version"] == 1 and a["num_groups"] == 2
        w = f["model/features.0.weight"]
        assert w.dtype == np.float32 and w.shape == (32, 1, 3, 3), (w.dtype, w.shape)
        n = f["model/features.5.num_batches_tracked"]
        assert n.dtype == np.int64 and n.shape == () and n[()] == 21
        assert f["state/rng"].dtype == np.uint64 and f["state/data"].attrs["seed"] == 0xDEADBEEFCAFEF00D
        assert f["optimizer"].attrs["kind"] == "sgd" and f["optimizer"].attrs["step"] == 1
        assert abs(f["metrics"].attrs["test_acc"] - 0.875) < 1e-12
        print(f["model/features.0.bias"][()].view(np.uint32).tolist())
        print(f["state/rng"][()].tolist())
        """
        let r = try self.run(python, ["-c", script, path])
        XCTAssertEqual(r.status, 0, r.err)
        let lines = r.out.split(separator: "\n").map(String.init)
        let bias = run.store.view(named: "features.0.bias")!
        XCTAssertEqual(lines.first, "[" + bits(run.store.values + bias.offset, 32).map(String.init).joined(separator: ", ") + "]")
        XCTAssertEqual(lines.dropFirst().first, "[" + runState().rngWords.map(String.init).joined(separator: ", ") + "]")
    }

    /// docs/load_checkpoint_torch.py loads a checkpoint into the PyTorch CNN (strict) and its
    /// logits match ours.
    func testPyTorchLoadsItStrictly() throws {
        let python = try pythonWith("h5py, torch")
        let run = try makeRun()
        let path = try write(run)
        run.model.setTraining(false)
        let n = 28 * 28
        let x = Tensor((0..<n).map { Float(-1 + 2 * Double($0) / Double(n - 1)) }, shape: [1, 1, 28, 28])
        let logits = withNoGrad { run.model(x) }.array
        if let export = ProcessInfo.processInfo.environment["CODISTILL_CHECKPOINT_EXPORT"] {
            try? FileManager.default.removeItem(atPath: export)
            try FileManager.default.copyItem(atPath: path, toPath: export)
        }
        let r = try self.run(python, [Self.root.appendingPathComponent("docs/load_checkpoint_torch.py").path, path,
                                      "--expect-logits", logits.map { "\($0)" }.joined(separator: ",")])
        XCTAssertEqual(r.status, 0, r.out + r.err)
        XCTAssert(r.out.contains("ok"), r.out)
    }

    // MARK: inspect

    func testDescribe() throws {
        let path = try write(try makeRun())
        let text = try Checkpoint.describe(path: path, json: false)
        for needle in ["\(Self.cnnTrainable) trainable", "192 buffer values", "MB", "cnn", "step", "test_acc = 0.875",
                       #""lr":0.1"#, "/model/features.0.weight", "float32 [32, 1, 3, 3]", "/model/features.1.num_batches_tracked",
                       "int64 scalar", "@format = \"codistill-checkpoint\"", "sgd, step 1, state: momentum"] {
            XCTAssert(text.contains(needle), "describe lacks \(needle):\n\(text)")
        }
        let json = try Checkpoint.describe(path: path, json: true)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let params = try XCTUnwrap(obj["parameters"] as? [String: Any])
        XCTAssertEqual(params["trainable"] as? Int, Self.cnnTrainable)
        XCTAssertEqual(params["buffers"] as? Int, 192)
        XCTAssertEqual((obj["config"] as? [String: Any])?["lr"] as? Double, 0.1)
        XCTAssertEqual(obj["step"] as? Int, 1)
        let objects = try XCTUnwrap(obj["objects"] as? [[String: Any]])
        let w = try XCTUnwrap(objects.first { $0["path"] as? String == "/model/features.0.weight" })
        XCTAssertEqual(w["shape"] as? [Int], [32, 1, 3, 3])
        XCTAssertEqual(w["dtype"] as? String, "float32")
        assertThrows(try Checkpoint.describe(path: dir.appendingPathComponent("missing.h5").path, json: false), contains: ["does not exist"])
    }
}
