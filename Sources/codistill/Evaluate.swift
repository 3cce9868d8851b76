import ArgumentParser
import Checkpoint
import Data
import Foundation
import Inference
import RunConfig

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval",
        abstract: "Evaluate checkpoints on the test split: loss, accuracy, per-class accuracy, ensembles, churn.")

    @Argument(help: "Checkpoint files (.h5).") var checkpoints: [String]
    @Option(help: "Dataset (default: the one each checkpoint was trained on).") var data: String?
    @Flag(help: "Also evaluate the ensemble: the average of the checkpoints' predicted probabilities.") var ensemble = false
    @Flag(help: "Prediction churn between the first two checkpoints.") var churn = false
    @Flag(help: "JSON output.") var json = false

    func validate() throws {
        if checkpoints.isEmpty { throw ValidationError("give at least one checkpoint file") }
        if churn && checkpoints.count < 2 { throw ValidationError("--churn compares two checkpoints: give two files") }
        if ensemble && checkpoints.count < 2 { throw ValidationError("--ensemble needs at least two checkpoints") }
    }

    func run() throws {
        do { try evaluate() } catch let e as ValidationError { throw e } catch {
            fputs("codistill: error: \(error)\n", stderr)
            throw ExitCode(1)
        }
    }

    func evaluate() throws {
        let models = try checkpoints.map { try TrainedModel(checkpoint: $0) }
        let dataPath = data ?? models[0].config.data
        let test = try DatasetLoader.load(path: dataPath, split: .test)
        // Only checkpoints that do not record their input normalisation need the training split.
        var trainStatistics: (mean: [Float], std: [Float])?
        func statistics() throws -> (mean: [Float], std: [Float]) {
            if let s = trainStatistics { return s }
            let s = try DatasetLoader.load(path: dataPath, split: .train).channelStatistics()
            trainStatistics = s
            return s
        }
        let classes = models[0].spec.classes
        for m in models where m.spec.classes != classes || m.spec.inputShape != test.sampleShape {
            throw ConfigError(description: "\(m.path) expects inputs \(m.spec.inputShape) and \(m.spec.classes) classes; \(dataPath) has \(test.sampleShape) and \(test.classes) classes: evaluate checkpoints of the same task together, or pass the matching --data")
        }
        // A label the models have no output for would index past each row of probabilities (no
        // bounds check in the release build): the dataset must not have more classes than the models.
        if let bad = test.labels.first(where: { Int($0) >= classes }) {
            throw ConfigError(description: "\(dataPath) has \(test.classes) classes (its test split has label \(bad)) but \(models[0].path) predicts \(classes) classes: pass the dataset the checkpoint was trained on with --data")
        }
        var results: [(String, EvaluationReport)] = []
        var allProbs: [[Float]] = []
        for m in models {
            let (mean, std) = !m.config.normalize
                ? ([Float](repeating: 0, count: test.sampleShape[0]), [Float](repeating: 1, count: test.sampleShape[0]))
                : try m.recordedNormalization ?? statistics()
            try checkNormalization(mean: mean, std: std, channels: test.sampleShape[0], source: "\(m.path) (input normalisation)",
                                   fix: "the checkpoint or the training split it falls back to is unusable; pass --data with the training data, or retrain with --no-normalize.")
            let p = m.predict(test, mean: mean, std: std)
            allProbs.append(p)
            results.append((m.path, EvaluationReport(probabilities: p, labels: test.labels, classes: classes)))
        }
        if ensemble {
            var avg = [Float](repeating: 0, count: allProbs[0].count)
            for p in allProbs { for i in avg.indices { avg[i] += p[i] } }
            let inv = 1 / Float(allProbs.count)
            for i in avg.indices { avg[i] *= inv }
            results.append(("ensemble", EvaluationReport(probabilities: avg, labels: test.labels, classes: classes)))
        }
        let churnFigures = churn ? predictionChurn(allProbs[0], allProbs[1], classes: classes) : nil

        if json {
            var out: [String: Any] = ["data": dataPath, "results": results.map { name, r in
                ["checkpoint": name, "samples": r.samples, "loss": r.loss, "accuracy": r.accuracy, "per_class_accuracy": r.perClassAccuracy] as [String: Any]
            }]
            if let c = churnFigures { out["churn"] = ["disagreement": c.disagreement, "mean_abs_prob_diff": c.meanAbsDiff] }
            print(String(decoding: try JSONSerialization.data(withJSONObject: out, options: [.sortedKeys]), as: UTF8.self))
            return
        }
        let names = test.classNames ?? (0..<classes).map(String.init)
        for (name, r) in results {
            print(String(format: "%@: %d test samples, loss %.4f, accuracy %.2f%%", name, r.samples, r.loss, 100 * r.accuracy))
            print("  per class: " + zip(names, r.perClassAccuracy).map { String(format: "%@ %.1f%%", $0, 100 * $1) }.joined(separator: ", "))
            print(String(format: "test_acc=%.2f", 100 * r.accuracy))
        }
        if let c = churnFigures {
            print(String(format: "churn: %.2f%% of test predictions differ; mean |p_a - p_b| = %.4f", 100 * c.disagreement, c.meanAbsDiff))
        }
    }
}

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect",
        abstract: "Print an HDF5 checkpoint: tree, shapes, dtypes, step, config, metrics, parameter count and size.")
    @Argument(help: "Checkpoint file (.h5).") var checkpoint: String
    @Flag(help: "JSON output.") var json = false
    @Flag(help: "Seal the file again first: after changing a checkpoint on purpose with another HDF5 tool (h5py), whose edit the old seal refuses as damage.")
    var reseal = false
    func run() throws {
        do {
            if reseal {
                try Checkpoint.reseal(path: checkpoint)
                print("sealed \(checkpoint) again")
            }
            print(try Checkpoint.describe(path: checkpoint, json: json))
        } catch {
            fputs("codistill: error: \(error)\n", stderr)
            throw ExitCode(1)
        }
    }
}

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "data",
        abstract: "Describe or convert datasets (IDX, CIFAR binary, HDF5).",
        subcommands: [DataInfo.self, DataConvert.self])
}

struct DataInfo: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe a dataset: format, splits, shapes, classes, statistics.")
    @Argument(help: "Dataset directory or HDF5 file.") var path: String = DatasetLoader.defaultPath
    func run() throws {
        do { print(try DatasetLoader.describe(path: path)) } catch {
            fputs("codistill: error: \(error)\n", stderr)
            throw ExitCode(1)
        }
    }
}

struct DataConvert: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convert", abstract: "Convert a dataset to the HDF5 layout (see docs/DATA.md).")
    @Argument(help: "Source dataset.") var source: String
    @Argument(help: "Destination .h5 file.") var destination: String
    func run() throws {
        do {
            try HDF5DatasetWriter.convert(source: source, destination: destination)
            print("wrote \(destination)")
        } catch {
            fputs("codistill: error: \(error)\n", stderr)
            throw ExitCode(1)
        }
    }
}
