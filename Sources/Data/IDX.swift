import Foundation

/// The MNIST family's IDX files (MNIST, Fashion-MNIST, KMNIST, EMNIST), raw or gzipped.
///
/// An IDX file is a big-endian header, magic 0x0000TTDD (TT = 0x08 for unsigned bytes, DD = number
/// of dimensions), then one 32-bit size per dimension, then the values. Images are 0x00000803
/// [N, H, W], labels 0x00000801 [N].
enum IDXReader {
    static let imagesMagic: UInt32 = 0x0000_0803
    static let labelsMagic: UInt32 = 0x0000_0801

    /// The image and label files of `split` in `directory`, or nil when there is no images file.
    static func files(in directory: String, split: Split) throws -> (images: String, labels: String)? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        let keys = split == .train ? ["train"] : ["t10k", "test"]
        guard let images = try pick(names, keys: keys, kind: "images", directory: directory, split: split) else {
            return nil
        }
        guard let labels = try pick(names, keys: keys, kind: "labels", directory: directory, split: split) else {
            throw DataError("\(directory) has the \(split) images (\(images)) but no \(split) labels file "
                + "(a name containing \"\(keys[0])-labels\"\(keys.count > 1 ? " or \"\(keys[1])-labels\"" : ""), "
                + "e.g. \(keys[0])-labels-idx1-ubyte.gz); download it into the same directory.")
        }
        return (directory + "/" + images, directory + "/" + labels)
    }

    static func hasIDXFiles(in directory: String) -> Bool {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.contains { n in ["train-images", "t10k-images", "test-images"].contains { n.contains($0) } }
    }

    /// The one file whose name contains "<key>-<kind>". The same file raw and gzipped counts once (the raw
    /// one is taken: no inflating); two different datasets in one directory (e.g. EMNIST's splits) are ambiguous.
    private static func pick(_ names: [String], keys: [String], kind: String, directory: String, split: Split) throws -> String? {
        let matches = names.filter { n in !n.hasPrefix(".") && keys.contains { n.contains("\($0)-\(kind)") } }.sorted()
        if matches.isEmpty { return nil }
        var byStem: [String: [String]] = [:]
        for m in matches {
            let stem = m.hasSuffix(".gz") ? String(m.dropLast(3)) : m
            byStem[stem, default: []].append(m)
        }
        if byStem.count > 1 {
            throw DataError("\(directory) holds several \(split) \(kind) files (\(matches.joined(separator: ", "))); "
                + "move each dataset into its own directory and pass that directory.")
        }
        let group = byStem.values.first!
        return group.first { !$0.hasSuffix(".gz") } ?? group[0]
    }

    /// Reads an IDX header: the dimensions and the offset of the first value. Checks magic and size.
    private static func header(_ data: ByteBuffer, path: String, magic: UInt32, what: String) throws -> (dims: [Int], offset: Int) {
        if data.count == 0 {
            throw DataError("\(path) is empty (0 bytes); delete it and download it again.")
        }
        guard data.count >= 4 else {
            throw DataError("\(path) is truncated: \(data.count) bytes, shorter than an IDX header; delete it and download it again.")
        }
        let found = data.bigEndianUInt32(at: 0)
        guard found == magic else {
            throw DataError("\(path) has bad magic number 0x\(hex(found)) (expected 0x\(hex(magic)) for an IDX \(what) file); "
                + "it is not an MNIST-format \(what) file: check that the right file is there, or download it again.")
        }
        let ndims = Int(magic & 0xFF)
        let offset = 4 + 4 * ndims
        guard data.count >= offset else {
            throw DataError("\(path) is truncated: \(data.count) bytes, shorter than its \(offset)-byte IDX header; delete it and download it again.")
        }
        let dims = (0..<ndims).map { Int(data.bigEndianUInt32(at: 4 + 4 * $0)) }
        // Three 32-bit sizes can multiply past Int.max (a trap, not an error): a product that
        // overflows is as impossible as one larger than the file, and is reported the same way.
        let values = dims.reduce((1, false)) { acc, d in
            let (p, overflow) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || overflow)
        }
        let needed = values.1 ? Int.max : offset + values.0
        guard data.count >= needed else {
            throw DataError("\(path) is truncated: its header declares \(dims.map(String.init).joined(separator: " x ")) values "
                + "(\(values.1 ? "more than \(Int.max)" : String(needed)) bytes) but it holds \(data.count) bytes; delete it and download it again.")
        }
        return (dims, offset)
    }

    private static func hex(_ v: UInt32) -> String {
        let s = String(v, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 8 - s.count)) + s
    }

    static func readLabels(_ path: String) throws -> [Int32] {
        let (data, _) = try FileReader.readMaybeGzip(path)
        let (dims, offset) = try header(data, path: path, magic: labelsMagic, what: "label")
        let p = data.bytes + offset
        return [Int32](unsafeUninitializedCapacity: dims[0]) { b, n in
            for i in 0..<dims[0] { b[i] = Int32(p[i]) }
            n = dims[0]
        }
    }

    static func load(directory: String, split: Split, name: String) throws -> Dataset {
        guard let (imagesPath, labelsPath) = try files(in: directory, split: split) else {
            let wanted = split == .train ? "train-images-idx3-ubyte[.gz]" : "t10k-images-idx3-ubyte[.gz]"
            let keys = split == .train ? "\"train-images\"" : "\"t10k-images\" or \"test-images\""
            throw DataError("\(directory) has no \(split) images file (\(wanted), or a name containing \(keys)); "
                + "download it into that directory.")
        }
        let (data, gzipped) = try FileReader.readMaybeGzip(imagesPath)
        let (dims, offset) = try header(data, path: imagesPath, magic: imagesMagic, what: "image")
        let labels = try readLabels(labelsPath)
        if dims[0] != labels.count {
            throw DataError("\(imagesPath) holds \(dims[0]) images but \(labelsPath) holds \(labels.count) labels; "
                + "they come from different downloads or one is damaged: download both again.")
        }
        if dims[0] == 0 {
            throw DataError("\(imagesPath) holds no images (its header says 0); download the full file again.")
        }
        if dims[1] == 0 || dims[2] == 0 {
            throw DataError("\(imagesPath) declares images of \(dims[1]) x \(dims[2]) pixels, which hold nothing; the header is damaged: "
                + "delete it and download it again.")
        }
        // Classes: one more than the largest label in either split, so train and test agree.
        var maxLabel = labels.max()!
        let other: Split = split == .train ? .test : .train
        if let (_, otherLabels) = try? files(in: directory, split: other), let o = try? readLabels(otherLabels), let m = o.max() {
            maxLabel = max(maxLabel, m)
        }
        return Dataset(name: name, format: gzipped ? "IDX (gzip)" : "IDX", sampleShape: [1, dims[1], dims[2]],
                       count: dims[0], pixelType: .uint8, storage: data, offset: offset, labels: labels,
                       classes: Int(maxLabel) + 1, classNames: knownClassNames(directory: directory, classes: Int(maxLabel) + 1))
    }

    /// Fashion-MNIST's class names when the directory is recognisably Fashion-MNIST.
    private static func knownClassNames(directory: String, classes: Int) -> [String]? {
        let base = URL(fileURLWithPath: directory).lastPathComponent.lowercased()
        if base.contains("fashion") && classes == 10 {
            return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
        }
        if base == "mnist" && classes == 10 { return (0..<10).map(String.init) }
        return nil
    }
}
