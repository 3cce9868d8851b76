import CHDF5
import Foundation
import HDF5

/// Finds out what kind of dataset a path holds and loads one split of it.
///
/// Detection looks at what is there, not at names the user typed:
/// - a file that starts with the HDF5 signature is an HDF5 dataset (layout: `HDF5Reader`, docs/DATA.md);
/// - a directory with a file whose name contains "train-images", "t10k-images" or "test-images" is the
///   MNIST family in IDX format (each file raw or gzipped, told apart by the gzip magic bytes 1f 8b);
/// - a directory with data_batch_1.bin or test_batch.bin is CIFAR-10 binary; with train.bin or test.bin,
///   CIFAR-100 binary;
/// - a directory with none of these but exactly one subdirectory that is one of them (the way the
///   archives extract, e.g. cifar-10-batches-bin/) is that subdirectory.
public enum DatasetLoader {
    public static let defaultPath = "/usr/share/datasets/fashion-mnist"

    enum Source {
        case idx(directory: String)
        case cifar(directory: String)
        case hdf5(file: String)

        var location: String {
            switch self {
            case .idx(let d), .cifar(let d): return d
            case .hdf5(let f): return f
            }
        }
    }

    static func detect(_ rawPath: String) throws -> Source {
        guard !rawPath.isEmpty else {
            throw DataError("the dataset path is empty; pass a dataset directory or HDF5 file (default \(defaultPath)).")
        }
        let path = rawPath.count > 1 && rawPath.hasSuffix("/") ? String(rawPath.dropLast()) : rawPath
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError("\(path) does not exist; pass a directory of MNIST-family IDX files or CIFAR binary files, "
                + "or an HDF5 dataset file (see docs/DATA.md).")
        }
        if !isDir.boolValue {
            if HDF5File.hasSignature(path) { return .hdf5(file: path) }
            let name = URL(fileURLWithPath: path).lastPathComponent
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
            if size == 0 {
                throw DataError("\(path) is empty (0 bytes); write or download the dataset again.")
            }
            if name.hasSuffix(".h5") || name.hasSuffix(".hdf5") {
                throw DataError("\(path) is not an HDF5 file (it lacks the HDF5 signature; truncated or damaged?); write it again, "
                    + "e.g. with `codistill data convert`.")
            }
            if name.contains("idx1") || name.contains("idx3") {
                let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
                throw DataError("\(path) is a single IDX file; pass the directory that holds the image and label files (\(dir)).")
            }
            if name.hasSuffix(".tar.gz") || name.hasSuffix(".tgz") || name.hasSuffix(".tar") || name.hasSuffix(".zip") {
                throw DataError("\(path) is an archive; extract it and pass the extracted directory.")
            }
            throw DataError("\(path) is not a supported dataset file; pass an HDF5 file (.h5), or a directory of IDX or CIFAR binary files "
                + "(see docs/DATA.md).")
        }
        if let s = recognise(directory: path) { return s }
        let fm = FileManager.default
        let entries = ((try? fm.contentsOfDirectory(atPath: path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        let inner = entries.compactMap { e -> Source? in
            var d: ObjCBool = false
            guard fm.fileExists(atPath: path + "/" + e, isDirectory: &d), d.boolValue else { return nil }
            return recognise(directory: path + "/" + e)
        }
        if inner.count == 1 { return inner[0] }
        if inner.count > 1 {
            throw DataError("\(path) holds several datasets (\(inner.map(\.location).joined(separator: ", "))); pass one of them.")
        }
        let shown = entries.prefix(8).joined(separator: ", ") + (entries.count > 8 ? ", ..." : "")
        throw DataError("\(path) holds no dataset I recognise (\(entries.isEmpty ? "it is empty" : "found: " + shown)); expected "
            + "IDX files (train-images-idx3-ubyte.gz ...), CIFAR binary files (data_batch_1.bin ... or train.bin), "
            + "or pass an HDF5 file (see docs/DATA.md).")
    }

    private static func recognise(directory: String) -> Source? {
        if IDXReader.hasIDXFiles(in: directory) { return .idx(directory: directory) }
        if CIFARReader.variant(in: directory) != nil { return .cifar(directory: directory) }
        return nil
    }

    /// path: a directory holding IDX files (MNIST family: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
    /// t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz], or any names containing "train-images",
    /// "t10k-images"/"test-images", "train-labels", "t10k-labels"/"test-labels", as EMNIST and KMNIST use), a CIFAR-10
    /// binary directory (data_batch_1..5.bin, test_batch.bin, batches.meta.txt optional), a CIFAR-100 binary
    /// directory (train.bin, test.bin, fine labels used), or an HDF5 file in the layout of `HDF5Reader`
    /// (`/train/...` and `/test/...`, or a single split at the top level that serves as both train and test).
    public static func load(path: String, split: Split) throws -> Dataset {
        let source = try detect(path)
        switch source {
        case .idx(let dir):
            return try IDXReader.load(directory: dir, split: split, name: "\(baseName(dir))/\(split.rawValue)")
        case .cifar(let dir):
            return try CIFARReader.load(directory: dir, split: split, name: "\(baseName(dir))/\(split.rawValue)")
        case .hdf5(let file):
            return try HDF5Reader.load(path: file, split: split, name: "\(baseName(file))/\(split.rawValue)")
        }
    }

    /// Where a split's samples are stored: the resolved file or directory and, for HDF5, the group
    /// ("train/", "test/", or "" when a single-split file serves as both). Equal locations are the
    /// same samples, e.g. training and testing on one single-split file. Nil when unreadable.
    public static func location(path: String, split: Split) -> String? {
        guard let source = try? detect(path) else { return nil }
        let resolved = URL(fileURLWithPath: source.location).resolvingSymlinksInPath().standardizedFileURL.path
        switch source {
        case .idx, .cifar:
            return "\(resolved) \(split.rawValue)"
        case .hdf5(let file):
            guard let opened = try? HDF5Reader.open(file) else { return nil }
            return (try? HDF5Reader.prefix(root: opened.root, path: file, split: split)).map { "\(resolved) /\($0)" }
        }
    }

    static func baseName(_ path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let ext = url.pathExtension.lowercased()
        return ext == "h5" || ext == "hdf5" ? url.deletingPathExtension().lastPathComponent : url.lastPathComponent
    }

    /// One line per split for `codistill data info PATH`: format, count, shape, classes, label histogram summary, mean/std.
    public static func describe(path: String) throws -> String {
        try Split.allCases.map { split in
            let d = try load(path: path, split: split)
            return "\(split.rawValue): " + summary(d)
        }.joined(separator: "\n")
    }

    /// e.g. "IDX (gzip), 60000 samples, shape [1, 28, 28] uint8, 10 classes, 6000 per class (balanced), mean [0.2860] std [0.3530]"
    public static func summary(_ d: Dataset) -> String {
        var histogram = [Int](repeating: 0, count: d.classes)
        for l in d.labels { histogram[Int(l)] += 1 }
        let lo = histogram.min() ?? 0, hi = histogram.max() ?? 0
        var labels: String
        if lo == hi {
            labels = "\(lo) per class (balanced)"
        } else {
            let loClass = histogram.firstIndex(of: lo)!, hiClass = histogram.firstIndex(of: hi)!
            labels = "per class \(lo) (class \(loClass)) to \(hi) (class \(hiClass))"
            let empty = histogram.filter { $0 == 0 }.count
            if empty > 0 { labels += ", \(empty) class\(empty == 1 ? "" : "es") without samples" }
        }
        let stats = d.channelStatistics()
        func fmt(_ v: [Float]) -> String { "[" + v.map { String(format: "%.4f", Double($0)) }.joined(separator: ", ") + "]" }
        let names = d.classNames.map { n in ", names " + n.prefix(4).joined(separator: ", ") + (n.count > 4 ? ", ..." : "") } ?? ""
        return "\(d.format), \(d.count) samples, shape \(d.sampleShape) \(d.pixelType.rawValue), \(d.classes) classes\(names), "
            + "\(labels), mean \(fmt(stats.mean)) std \(fmt(stats.std))\(d.hasStoredStatistics ? " (stored)" : "")"
    }
}
