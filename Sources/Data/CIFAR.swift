import Foundation

/// CIFAR-10 and CIFAR-100 in their "binary version" (the `*-bin.tar.gz` downloads, extracted).
///
/// CIFAR-10: data_batch_1.bin ... data_batch_5.bin and test_batch.bin, records of 1 label byte + 3072
/// pixel bytes (3 x 32 x 32, already CHW); class names in batches.meta.txt (optional).
/// CIFAR-100: train.bin and test.bin, records of 1 coarse label byte + 1 fine label byte + 3072 pixel
/// bytes; we use the fine label (100 classes); names in fine_label_names.txt (optional).
enum CIFARReader {
    enum Variant { case cifar10, cifar100 }

    static let pixelsPerImage = 3 * 32 * 32

    static func variant(in directory: String) -> Variant? {
        let fm = FileManager.default
        if fm.fileExists(atPath: directory + "/data_batch_1.bin") || fm.fileExists(atPath: directory + "/test_batch.bin") {
            return .cifar10
        }
        if fm.fileExists(atPath: directory + "/train.bin") || fm.fileExists(atPath: directory + "/test.bin") {
            return .cifar100
        }
        return nil
    }

    /// The files that make up `split`, in order.
    static func files(in directory: String, variant: Variant, split: Split) throws -> [String] {
        switch (variant, split) {
        case (.cifar10, .train):
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
            let numbers = names.compactMap { n -> Int? in
                guard n.hasPrefix("data_batch_"), n.hasSuffix(".bin") else { return nil }
                return Int(n.dropFirst("data_batch_".count).dropLast(".bin".count))
            }.sorted()
            if numbers.isEmpty {
                throw DataError("\(directory) has no CIFAR-10 training batches (data_batch_1.bin ... data_batch_5.bin); "
                    + "extract cifar-10-binary.tar.gz there again.")
            }
            if numbers != Array(1...numbers.count) {
                let missing = (1...(numbers.last!)).filter { !numbers.contains($0) }
                throw DataError("\(directory)/data_batch_\(missing[0]).bin is missing (found batches \(numbers.map(String.init).joined(separator: ", "))); "
                    + "extract cifar-10-binary.tar.gz there again.")
            }
            return numbers.map { "\(directory)/data_batch_\($0).bin" }
        case (.cifar10, .test):
            return try existing(directory + "/test_batch.bin", what: "CIFAR-10 test batch", archive: "cifar-10-binary.tar.gz")
        case (.cifar100, .train):
            return try existing(directory + "/train.bin", what: "CIFAR-100 training file", archive: "cifar-100-binary.tar.gz")
        case (.cifar100, .test):
            return try existing(directory + "/test.bin", what: "CIFAR-100 test file", archive: "cifar-100-binary.tar.gz")
        }
    }

    private static func existing(_ path: String, what: String, archive: String) throws -> [String] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DataError("\(path) is missing (the \(what)); extract \(archive) into that directory again.")
        }
        return [path]
    }

    static func load(directory: String, split: Split, name: String) throws -> Dataset {
        guard let variant = variant(in: directory) else {
            throw DataError("\(directory) holds no CIFAR binary files; see docs/DATA.md for the supported layouts.")
        }
        let paths = try files(in: directory, variant: variant, split: split)
        let labelBytes = variant == .cifar10 ? 1 : 2
        let record = labelBytes + pixelsPerImage
        let classes = variant == .cifar10 ? 10 : 100

        // Read every file first (sizes are checked before anything is copied).
        var chunks: [(path: String, data: ByteBuffer, records: Int)] = []
        for path in paths {
            let (data, _) = try FileReader.readMaybeGzip(path)
            if data.count == 0 {
                throw DataError("\(path) is empty (0 bytes); extract the CIFAR archive again.")
            }
            if data.count % record != 0 {
                throw DataError("\(path) is truncated: \(data.count) bytes is not a whole number of \(record)-byte records; "
                    + "extract the CIFAR archive again.")
            }
            chunks.append((path, data, data.count / record))
        }
        let count = chunks.reduce(0) { $0 + $1.records }
        let storage = ByteBuffer(uninitializedCount: count * pixelsPerImage)
        var labels = [Int32](repeating: 0, count: count)
        var n = 0
        for chunk in chunks {
            let src = chunk.data.bytes
            for r in 0..<chunk.records {
                let rec = src + r * record
                let label = Int32(rec[labelBytes - 1])   // CIFAR-100: the fine label (second byte)
                if label >= classes {
                    throw DataError("\(chunk.path): record \(r) has label \(label), outside 0..<\(classes) for "
                        + "\(variant == .cifar10 ? "CIFAR-10" : "CIFAR-100"); the file is damaged or not a CIFAR binary file: extract the archive again.")
                }
                labels[n] = label
                (storage.bytes + n * pixelsPerImage).update(from: rec + labelBytes, count: pixelsPerImage)
                n += 1
            }
        }
        return Dataset(name: name, format: variant == .cifar10 ? "CIFAR-10 binary" : "CIFAR-100 binary",
                       sampleShape: [3, 32, 32], count: count, pixelType: .uint8, storage: storage, offset: 0,
                       labels: labels, classes: classes, classNames: classNames(directory: directory, variant: variant))
    }

    private static let cifar10Names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

    private static func classNames(directory: String, variant: Variant) -> [String]? {
        let file = variant == .cifar10 ? "batches.meta.txt" : "fine_label_names.txt"
        let count = variant == .cifar10 ? 10 : 100
        if let text = try? String(contentsOfFile: directory + "/" + file, encoding: .utf8) {
            let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if names.count == count { return names }
        }
        return variant == .cifar10 ? cifar10Names : nil
    }
}
