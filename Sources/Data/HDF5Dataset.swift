import Foundation
import HDF5

/// HDF5 dataset layout (what `HDF5Reader` reads and `HDF5DatasetWriter` writes; see docs/DATA.md):
///
///     /train/images   uint8 or float32 [N, C, H, W]   ([N, H, W] is read as C = 1)
///     /train/labels   any integer type [N]             (read as int64, must be in 0..<classes)
///     /test/images, /test/labels                       the same for the test split
///     root attributes, all optional:
///       num_classes   integer                          (else class_names' count, else max label + 1)
///       class_names   string, comma-separated          (a 1-D array of strings is accepted too)
///       mean, std     float arrays of C values         per-channel statistics in [0,1] scale
///                                                      (uint8 pixels are divided by 255 first)
///
/// A file with top-level `/images` and `/labels` instead of the two groups is a single split: it is
/// returned for both `train` and `test` (useful for a held-out set that is evaluated on its own, or for
/// synthetic data). uint8 images are read as value / 255, float32 images as stored.
enum HDF5Reader {
    /// The most classes a file may declare or imply: every class costs a model output and a
    /// histogram bin, so a damaged num_classes or label (2^40) must be an error, not an
    /// allocation; 2^20 is fifty times ImageNet-21k's 21841.
    static let maxClasses = 1 << 20

    /// The group prefix holding the split ("train/", "test/", or "" for a single-split file).
    static func prefix(root: HDF5Group, path: String, split: Split) throws -> String {
        if root.contains("\(split.rawValue)/images") { return "\(split.rawValue)/" }
        if root.contains("images") { return "" }
        let other: Split = split == .train ? .test : .train
        if root.contains("\(other.rawValue)/images") {
            throw DataError("\(path) has no /\(split.rawValue)/images dataset (it has /\(other.rawValue)/images); "
                + "add /\(split.rawValue)/images and /\(split.rawValue)/labels, or convert the full dataset again (see docs/DATA.md).")
        }
        throw DataError("\(path) has neither /\(split.rawValue)/images nor a top-level /images dataset; "
            + "write it in the layout of docs/DATA.md (/train/images, /train/labels, /test/images, /test/labels).")
    }

    static func open(_ path: String) throws -> HDF5File {
        do {
            return try HDF5File.open(path)
        } catch let e as HDF5Error {
            switch e.problem {
            case .missingFile, .isDirectory, .permissionDenied, .emptyFile, .notHDF5, .failsSeal:
                throw DataError(e.description)
            default:
                throw DataError("\(path) could not be opened as an HDF5 file (damaged or truncated?); check it with `h5dump -H \(path)` "
                    + "or write it again (e.g. `codistill data convert`).")
            }
        }
    }

    static func load(path: String, split: Split, name: String) throws -> Dataset {
        let file = try open(path)
        let root = file.root
        let pre = try prefix(root: root, path: path, split: split)
        let imagesName = "/\(pre)images", labelsName = "/\(pre)labels"

        // Images.
        let images: HDF5Dataset
        do { images = try root.dataset(String(imagesName.dropFirst())) } catch {
            throw DataError("\(path): \(imagesName) is not a readable dataset\(Self.reason(error)); write it again as in docs/DATA.md.")
        }
        let dims = images.shape
        let shape: [Int]
        switch dims.count {
        case 4: shape = dims
        case 3: shape = [dims[0], 1, dims[1], dims[2]]
        default:
            throw DataError("\(path): \(imagesName) has shape \(dims) but must be [N, C, H, W] (or [N, H, W]); reshape it when writing the file.")
        }
        let count = shape[0]
        if count == 0 {
            throw DataError("\(path): \(imagesName) holds no samples (shape \(dims)); write the file again with data in it.")
        }
        if shape[1...].contains(0) {
            throw DataError("\(path): \(imagesName) has an empty sample shape \(Array(shape[1...])); write the file again with [N, C, H, W] images.")
        }
        let pixelType: Dataset.PixelType
        switch images.storedType {
        case .integer(signed: false, bits: 8): pixelType = .uint8
        case .float: pixelType = .float32
        default:
            throw DataError("\(path): \(imagesName) must hold uint8 or floating-point pixels; store them as uint8 (0...255) or float32 "
                + "(e.g. numpy `.astype(np.uint8)`).")
        }
        let values = count * shape[1] * shape[2] * shape[3]
        let storage = ByteBuffer(uninitializedCount: values * (pixelType == .uint8 ? 1 : 4))
        do {
            try images.readRaw(into: storage.base, count: values, as: pixelType == .uint8 ? .uint8 : .float32)
        } catch {
            throw DataError("\(path): reading \(imagesName) failed (damaged or truncated file?); write the file again.")
        }

        // Attributes, then labels (their range depends on the declared classes).
        let declared = try intAttribute(root, "num_classes", path: path)
        var names = try stringsAttribute(root, "class_names", path: path)
        if let d = declared, d <= 0 {
            throw DataError("\(path): attribute num_classes is \(d); it must be positive (fix or delete the attribute).")
        }
        if let d = declared, d > maxClasses {
            throw DataError("\(path): attribute num_classes is \(d), more than the \(maxClasses) classes codistill supports "
                + "(a damaged attribute?); fix or delete it.")
        }
        if let n = names, let d = declared, n.count != d {
            throw DataError("\(path): attribute class_names has \(n.count) names but num_classes is \(d); make them agree (or delete one).")
        }
        if names?.isEmpty == true { names = nil }
        var statistics: (mean: [Float], std: [Float])?
        let mean = try floatsAttribute(root, "mean", path: path)
        let std = try floatsAttribute(root, "std", path: path)
        for (attr, v) in [("mean", mean), ("std", std)] {
            if let v = v, v.count != shape[1] {
                throw DataError("\(path): attribute \(attr) has \(v.count) values but the images have \(shape[1]) channels; "
                    + "fix or delete the attribute (it is then computed from the data).")
            }
        }
        if let m = mean, let s = std {
            try checkNormalization(mean: m, std: s, channels: shape[1], source: "\(path): attributes mean/std",
                                   fix: "fix or delete the attributes (they are then computed from the data).")
            statistics = (m, s)
        }

        let labels64 = try readLabels(root, labelsName, path: path)
        if labels64.count != count {
            throw DataError("\(path) holds \(count) images in \(imagesName) but \(labels64.count) labels in \(labelsName); "
                + "write the file again with one label per image.")
        }
        var classes = declared ?? names?.count ?? 0
        if classes == 0 {
            // Undeclared: one more than the largest label of either split, so train and test agree.
            var maxLabel = labels64.max()!
            if !pre.isEmpty {
                let other: Split = split == .train ? .test : .train
                if root.contains("\(other.rawValue)/labels"), let o = try? readLabels(root, "/\(other.rawValue)/labels", path: path), let m = o.max() {
                    maxLabel = max(maxLabel, m)
                }
            }
            if maxLabel >= Int64(maxClasses) {
                throw DataError("\(path): \(labelsName) holds label \(maxLabel), more than the \(maxClasses) classes codistill supports "
                    + "(damaged labels?); fix the labels.")
            }
            classes = Int(max(maxLabel, 0)) + 1
        }
        var labels = [Int32](repeating: 0, count: count)
        for i in 0..<count {
            let l = labels64[i]
            if l < 0 || l >= Int64(classes) {
                let bound = declared != nil ? "num_classes = \(classes)" : names != nil ? "\(classes) class_names" : "\(classes) classes"
                throw DataError("\(path): \(labelsName)[\(i)] = \(l) is out of range 0..<\(classes) (\(bound)); "
                    + "fix the labels or the num_classes / class_names attributes.")
            }
            labels[i] = Int32(l)
        }
        let single = pre.isEmpty ? ", single split" : ""
        return Dataset(name: name, format: "HDF5 \(pixelType.rawValue)\(single)", sampleShape: Array(shape[1...]), count: count,
                       pixelType: pixelType, storage: storage, offset: 0, labels: labels, classes: classes,
                       classNames: names, statistics: statistics)
    }

    static func readLabels(_ root: HDF5Group, _ name: String, path: String) throws -> [Int64] {
        guard root.contains(String(name.dropFirst())) else {
            throw DataError("\(path) has \(name.replacingOccurrences(of: "labels", with: "images")) but no \(name) dataset; add the labels (see docs/DATA.md).")
        }
        let labels: HDF5Dataset
        do { labels = try root.dataset(String(name.dropFirst())) } catch {
            throw DataError("\(path): \(name) is not a readable dataset\(Self.reason(error)); write it again as in docs/DATA.md.")
        }
        let dims = labels.shape
        guard dims.count == 1 || (dims.count == 2 && dims[1] == 1) else {
            throw DataError("\(path): \(name) has shape \(dims) but must be [N]; store one integer label per image.")
        }
        guard case .integer = labels.storedType else {
            throw DataError("\(path): \(name) must hold integers (class indices); store them as int64 (or any integer type).")
        }
        do {
            return try labels.read(Int64.self)
        } catch {
            throw DataError("\(path): reading \(name) failed (damaged or truncated file?); write the file again.")
        }
    }

    /// " (what HDF5Dataset found wrong)" for a damaged header, e.g. a shape larger than the file.
    static func reason(_ error: Error) -> String {
        guard let e = error as? HDF5Error, e.problem == .damaged else { return "" }
        return " (\(e.reason))"
    }

    // MARK: attributes (all optional: nil when absent, a DataError when present but unusable)

    static func intAttribute(_ root: HDF5Group, _ name: String, path: String) throws -> Int? {
        guard root.hasAttribute(name) else { return nil }
        do { return try root.intAttribute(name) } catch {
            throw DataError("\(path): attribute \(name) must be one integer; fix or delete it.")
        }
    }

    static func floatsAttribute(_ root: HDF5Group, _ name: String, path: String) throws -> [Float]? {
        guard root.hasAttribute(name) else { return nil }
        do { return try root.doublesAttribute(name).map { Float($0) } } catch {
            throw DataError("\(path): attribute \(name) must be an array of numbers (one per channel); fix or delete it.")
        }
    }

    /// A string attribute: one comma-separated string (fixed or variable length), or an array of strings.
    static func stringsAttribute(_ root: HDF5Group, _ name: String, path: String) throws -> [String]? {
        guard root.hasAttribute(name) else { return nil }
        let values: [String]
        do { values = try root.stringsAttribute(name) } catch {
            throw DataError("\(path): attribute \(name) must be a string (comma-separated names); fix or delete it.")
        }
        let parts = values.count == 1 ? values[0].split(separator: ",").map(String.init) : values
        return parts.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

/// Writes the layout `HDF5Reader` documents (and docs/DATA.md), through `HDF5File.createAtomically`.
///
/// It stores labels as int64, images contiguous (no compression: loading is one read),
/// num_classes, class_names (when known), mean/std of the train split, and `source` (the name the
/// data came from).
public enum HDF5DatasetWriter {
    /// `codistill data convert SRC DST.h5`: loads train and test splits of SRC (any supported format) and writes DST
    /// atomically, uint8 when the source is uint8, with num_classes, class_names if known, mean/std attrs.
    public static func convert(source: String, destination: String) throws {
        let src = URL(fileURLWithPath: source).standardizedFileURL.resolvingSymlinksInPath().path
        let dst = URL(fileURLWithPath: destination).standardizedFileURL.resolvingSymlinksInPath().path
        if src == dst {
            throw DataError("\(destination) is the source itself; choose another destination file.")
        }
        let train = try DatasetLoader.load(path: source, split: .train)
        let test = try DatasetLoader.load(path: source, split: .test)
        try write(train: train, test: test, to: destination)
    }

    public static func write(train: Dataset, test: Dataset, to path: String) throws {
        guard train.sampleShape == test.sampleShape else {
            throw DataError("cannot write \(path): train samples are \(train.sampleShape) but test samples are \(test.sampleShape); "
                + "both splits must have the same shape.")
        }
        guard train.pixelType == test.pixelType else {
            throw DataError("cannot write \(path): train pixels are \(train.pixelType.rawValue) but test pixels are \(test.pixelType.rawValue); "
                + "both splits must be stored the same way.")
        }
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw DataError("cannot write \(path): the directory \(dir) does not exist; create it first.")
        }
        do {
            try HDF5File.createAtomically(at: path) { root in
                try writeSplit(train, group: "train", root: root)
                try writeSplit(test, group: "test", root: root)
                let classes = max(train.classes, test.classes)
                try root.setAttribute("num_classes", classes)
                if let names = train.classNames ?? test.classNames, names.count == classes {
                    try root.setAttribute("class_names", names.joined(separator: ","))
                }
                let stats = train.channelStatistics()
                try root.setAttribute("mean", stats.mean)
                try root.setAttribute("std", stats.std)
                let source = train.name.hasSuffix("/train") ? String(train.name.dropLast(6)) : train.name
                try root.setAttribute("source", source)
            }
        } catch let e as HDF5Error {
            throw DataError("cannot write \(path): \(e.file): \(e.reason); \(e.fix).")
        }
    }

    private static func writeSplit(_ data: Dataset, group: String, root: HDF5Group) throws {
        let g = try root.createGroup(group)
        let shape = [data.count] + data.sampleShape
        let values = shape.reduce(1, *)
        if data.pixelType == .uint8 {
            try g.writeDataset("images", shape: shape, from: UnsafeBufferPointer(start: data.uint8Pixels, count: values))
        } else {
            try g.writeDataset("images", shape: shape, from: UnsafeBufferPointer(start: data.floatPixels, count: values))
        }
        try g.writeDataset("labels", shape: [data.count], data.labels.map { Int64($0) })
    }
}
