import CHDF5
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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
    /// True when the file starts with the HDF5 signature (files with a user block are not recognised).
    static func hasSignature(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? h.close() }
        let head = h.readData(ofLength: 8)
        return [UInt8](head) == [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
    }

    static func exists(_ loc: hid_t, _ name: String) -> Bool {
        // H5Lexists needs every intermediate link to exist, so test component by component.
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(loc, prefix, cd_h5p_default()) <= 0 { return false }
        }
        return true
    }

    /// The group prefix holding the split ("train/", "test/", or "" for a single-split file).
    static func prefix(file: hid_t, path: String, split: Split) throws -> String {
        if exists(file, "\(split.rawValue)/images") { return "\(split.rawValue)/" }
        if exists(file, "images") { return "" }
        let other: Split = split == .train ? .test : .train
        if exists(file, "\(other.rawValue)/images") {
            throw DataError("\(path) has no /\(split.rawValue)/images dataset (it has /\(other.rawValue)/images); "
                + "add /\(split.rawValue)/images and /\(split.rawValue)/labels, or convert the full dataset again (see docs/DATA.md).")
        }
        throw DataError("\(path) has neither /\(split.rawValue)/images nor a top-level /images dataset; "
            + "write it in the layout of docs/DATA.md (/train/images, /train/labels, /test/images, /test/labels).")
    }

    static func load(path: String, split: Split, name: String) throws -> Dataset {
        cd_h5_silence_errors()
        let file = H5Fopen(path, cd_h5f_acc_rdonly(), cd_h5p_default())
        guard file >= 0 else {
            throw DataError("\(path) could not be opened as an HDF5 file (damaged or truncated?); check it with `h5dump -H \(path)` "
                + "or write it again (e.g. `codistill data convert`).")
        }
        defer { H5Fclose(file) }
        let pre = try prefix(file: file, path: path, split: split)
        let imagesName = "/\(pre)images", labelsName = "/\(pre)labels"

        // Images.
        let dset = H5Dopen2(file, imagesName, cd_h5p_default())
        guard dset >= 0 else { throw DataError("\(path): \(imagesName) is not a readable dataset; write it again as in docs/DATA.md.") }
        defer { H5Dclose(dset) }
        let dims = try extent(dset, path: path, name: imagesName)
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
        let ftype = H5Dget_type(dset)
        defer { H5Tclose(ftype) }
        let pixelType: Dataset.PixelType
        let typeClass = H5Tget_class(ftype)
        if typeClass == H5T_INTEGER && H5Tget_size(ftype) == 1 && H5Tget_sign(ftype) == H5T_SGN_NONE {
            pixelType = .uint8
        } else if typeClass == H5T_FLOAT {
            pixelType = .float32
        } else {
            throw DataError("\(path): \(imagesName) must hold uint8 or floating-point pixels; store them as uint8 (0...255) or float32 "
                + "(e.g. numpy `.astype(np.uint8)`).")
        }
        let sampleSize = shape[1] * shape[2] * shape[3]
        let bytes = count * sampleSize * (pixelType == .uint8 ? 1 : 4)
        let storage = ByteBuffer(uninitializedCount: bytes)
        let memType = pixelType == .uint8 ? cd_h5t_native_uint8() : cd_h5t_native_float()
        guard H5Dread(dset, memType, cd_h5s_all(), cd_h5s_all(), cd_h5p_default(), storage.base) >= 0 else {
            throw DataError("\(path): reading \(imagesName) failed (damaged or truncated file?); write the file again.")
        }

        // Attributes, then labels (their range depends on the declared classes).
        let root = H5Gopen2(file, "/", cd_h5p_default())
        defer { H5Gclose(root) }
        let declared = try intAttribute(root, "num_classes", path: path)
        var names = try stringsAttribute(root, "class_names", path: path)
        if let d = declared, d <= 0 {
            throw DataError("\(path): attribute num_classes is \(d); it must be positive (fix or delete the attribute).")
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
        if let m = mean, let s = std { statistics = (m, s) }

        let labels64 = try readLabels(file, labelsName, path: path)
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
                if exists(file, "\(other.rawValue)/labels"), let o = try? readLabels(file, "/\(other.rawValue)/labels", path: path), let m = o.max() {
                    maxLabel = max(maxLabel, m)
                }
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

    static func extent(_ dset: hid_t, path: String, name: String) throws -> [Int] {
        let space = H5Dget_space(dset)
        guard space >= 0 else { throw DataError("\(path): \(name) has no readable dataspace; write the file again.") }
        defer { H5Sclose(space) }
        let ndims = Int(H5Sget_simple_extent_ndims(space))
        guard ndims >= 0 else { throw DataError("\(path): \(name) has no simple shape; write it as a plain n-dimensional array.") }
        var dims = [hsize_t](repeating: 0, count: max(ndims, 1))
        if ndims > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
        return ndims == 0 ? [] : dims.map { Int($0) }
    }

    static func readLabels(_ file: hid_t, _ name: String, path: String) throws -> [Int64] {
        guard exists(file, String(name.dropFirst())) else {
            throw DataError("\(path) has \(name.replacingOccurrences(of: "labels", with: "images")) but no \(name) dataset; add the labels (see docs/DATA.md).")
        }
        let dset = H5Dopen2(file, name, cd_h5p_default())
        guard dset >= 0 else { throw DataError("\(path): \(name) is not a readable dataset; write it again as in docs/DATA.md.") }
        defer { H5Dclose(dset) }
        let dims = try extent(dset, path: path, name: name)
        guard dims.count == 1 || (dims.count == 2 && dims[1] == 1) else {
            throw DataError("\(path): \(name) has shape \(dims) but must be [N]; store one integer label per image.")
        }
        let ftype = H5Dget_type(dset)
        defer { H5Tclose(ftype) }
        guard H5Tget_class(ftype) == H5T_INTEGER else {
            throw DataError("\(path): \(name) must hold integers (class indices); store them as int64 (or any integer type).")
        }
        var labels = [Int64](repeating: 0, count: dims[0])
        if dims[0] > 0 {
            let ok = labels.withUnsafeMutableBytes { H5Dread(dset, cd_h5t_native_int64(), cd_h5s_all(), cd_h5s_all(), cd_h5p_default(), $0.baseAddress) }
            guard ok >= 0 else { throw DataError("\(path): reading \(name) failed (damaged or truncated file?); write the file again.") }
        }
        return labels
    }

    // MARK: attributes

    /// Opens attribute `name` of `obj`, or nil when absent; returns (attribute, file type, value count).
    private static func openAttribute(_ obj: hid_t, _ name: String, path: String) throws -> (hid_t, hid_t, Int)? {
        guard H5Aexists(obj, name) > 0 else { return nil }
        let attr = H5Aopen(obj, name, cd_h5p_default())
        guard attr >= 0 else { throw DataError("\(path): attribute \(name) cannot be read; delete it or write it again.") }
        let type = H5Aget_type(attr)
        let space = H5Aget_space(attr)
        defer { H5Sclose(space) }
        let n = Int(H5Sget_simple_extent_npoints(space))
        return (attr, type, n)
    }

    static func intAttribute(_ obj: hid_t, _ name: String, path: String) throws -> Int? {
        guard let (attr, type, n) = try openAttribute(obj, name, path: path) else { return nil }
        defer { H5Tclose(type); H5Aclose(attr) }
        let cls = H5Tget_class(type)
        guard n == 1, cls == H5T_INTEGER || cls == H5T_FLOAT else {
            throw DataError("\(path): attribute \(name) must be one integer; fix or delete it.")
        }
        var v: Int64 = 0
        guard H5Aread(attr, cd_h5t_native_int64(), &v) >= 0 else {
            throw DataError("\(path): attribute \(name) cannot be read as an integer; fix or delete it.")
        }
        return Int(v)
    }

    static func floatsAttribute(_ obj: hid_t, _ name: String, path: String) throws -> [Float]? {
        guard let (attr, type, n) = try openAttribute(obj, name, path: path) else { return nil }
        defer { H5Tclose(type); H5Aclose(attr) }
        let cls = H5Tget_class(type)
        guard cls == H5T_FLOAT || cls == H5T_INTEGER else {
            throw DataError("\(path): attribute \(name) must be an array of numbers (one per channel); fix or delete it.")
        }
        var v = [Float](repeating: 0, count: n)
        let ok = v.withUnsafeMutableBytes { H5Aread(attr, cd_h5t_native_float(), $0.baseAddress) }
        guard ok >= 0 else { throw DataError("\(path): attribute \(name) cannot be read as floats; fix or delete it.") }
        return v
    }

    /// A string attribute: one comma-separated string (fixed or variable length), or an array of strings.
    static func stringsAttribute(_ obj: hid_t, _ name: String, path: String) throws -> [String]? {
        guard let (attr, type, n) = try openAttribute(obj, name, path: path) else { return nil }
        defer { H5Tclose(type); H5Aclose(attr) }
        guard H5Tget_class(type) == H5T_STRING else {
            throw DataError("\(path): attribute \(name) must be a string (comma-separated names); fix or delete it.")
        }
        let memType = H5Tcopy(cd_h5t_c_s1())
        defer { H5Tclose(memType) }
        H5Tset_cset(memType, H5Tget_cset(type))
        var values: [String] = []
        if H5Tis_variable_str(type) > 0 {
            H5Tset_size(memType, cd_h5t_variable())
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            let ok = pointers.withUnsafeMutableBytes { H5Aread(attr, memType, $0.baseAddress) }
            guard ok >= 0 else { throw DataError("\(path): attribute \(name) cannot be read as text; fix or delete it.") }
            for p in pointers {
                values.append(p.map { String(cString: $0) } ?? "")
                if let p = p { H5free_memory(p) }
            }
        } else {
            let size = H5Tget_size(type) + 1   // room for a terminator whatever the stored padding
            H5Tset_size(memType, size)
            var buffer = [CChar](repeating: 0, count: n * size)
            let ok = buffer.withUnsafeMutableBytes { H5Aread(attr, memType, $0.baseAddress) }
            guard ok >= 0 else { throw DataError("\(path): attribute \(name) cannot be read as text; fix or delete it.") }
            buffer.withUnsafeBufferPointer { b in
                for i in 0..<n { values.append(String(cString: b.baseAddress! + i * size)) }
            }
        }
        let parts = n == 1 ? values[0].split(separator: ",").map(String.init) : values
        return parts.map { $0.trimmingCharacters(in: .whitespaces) }
    }
}

/// HDF5 dataset layout (documented in a doc comment and in docs/DATA.md):
/// /train/images  uint8 or float32 [N, C, H, W];  /train/labels  integer [N]; same under /test;
/// root attributes (all optional): num_classes (int), class_names (string, comma-separated), mean / std (float arrays of C).
///
/// The writer stores labels as int64, images contiguous (no compression: loading is one read),
/// num_classes, class_names (when known), mean/std of the train split, and `source` (the name the
/// data came from).
public enum HDF5DatasetWriter {
    /// `codistill data convert SRC DST.h5`: loads train and test splits of SRC (any supported format) and writes DST
    /// atomically (DST.tmp then rename), uint8 when the source is uint8, with num_classes, class_names if known, mean/std attrs.
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
        let tmp = path + ".tmp"
        unlink(tmp)
        cd_h5_silence_errors()
        let file = H5Fcreate(tmp, cd_h5f_acc_trunc(), cd_h5p_default(), cd_h5p_default())
        guard file >= 0 else {
            throw DataError("cannot create \(tmp); check that \(dir) is writable and has free space.")
        }
        do {
            try writeSplit(train, group: "train", file: file, path: tmp)
            try writeSplit(test, group: "test", file: file, path: tmp)
            let classes = max(train.classes, test.classes)
            let root = H5Gopen2(file, "/", cd_h5p_default())
            defer { H5Gclose(root) }
            try writeInt(root, "num_classes", classes, path: tmp)
            if let names = train.classNames ?? test.classNames, names.count == classes {
                try writeString(root, "class_names", names.joined(separator: ","), path: tmp)
            }
            let stats = train.channelStatistics()
            try writeFloats(root, "mean", stats.mean, path: tmp)
            try writeFloats(root, "std", stats.std, path: tmp)
            let source = train.name.hasSuffix("/train") ? String(train.name.dropLast(6)) : train.name
            try writeString(root, "source", source, path: tmp)
            guard H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0 else { throw DataError("writing \(tmp) failed at flush; check free disk space.") }
        } catch {
            H5Fclose(file)
            unlink(tmp)
            throw error
        }
        guard H5Fclose(file) >= 0 else {
            unlink(tmp)
            throw DataError("writing \(tmp) failed at close; check free disk space and retry.")
        }
        // Durable before visible: fsync the file, rename, fsync the directory.
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { fsync(fd); close(fd) }
        guard rename(tmp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw DataError("cannot rename \(tmp) to \(path) (\(why)); check permissions on \(dir).")
        }
        let dfd = open(dir, O_RDONLY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    private static func writeSplit(_ data: Dataset, group: String, file: hid_t, path: String) throws {
        let g = H5Gcreate2(file, group, cd_h5p_default(), cd_h5p_default(), cd_h5p_default())
        guard g >= 0 else { throw DataError("cannot create group /\(group) in \(path); check free disk space.") }
        defer { H5Gclose(g) }
        let dims = ([data.count] + data.sampleShape).map { hsize_t($0) }
        if data.pixelType == .uint8 {
            try writeDataset(g, "images", dims: dims, fileType: cd_h5t_std_u8le(), memType: cd_h5t_native_uint8(),
                             data: UnsafeRawPointer(data.uint8Pixels), path: path)
        } else {
            try writeDataset(g, "images", dims: dims, fileType: cd_h5t_ieee_f32le(), memType: cd_h5t_native_float(),
                             data: UnsafeRawPointer(data.floatPixels), path: path)
        }
        let labels = data.labels.map { Int64($0) }
        try labels.withUnsafeBytes {
            try writeDataset(g, "labels", dims: [hsize_t(data.count)], fileType: cd_h5t_std_i64le(), memType: cd_h5t_native_int64(),
                             data: $0.baseAddress!, path: path)
        }
    }

    private static func writeDataset(_ loc: hid_t, _ name: String, dims: [hsize_t], fileType: hid_t, memType: hid_t,
                                     data: UnsafeRawPointer, path: String) throws {
        let space = H5Screate_simple(Int32(dims.count), dims, nil)
        defer { H5Sclose(space) }
        let d = H5Dcreate2(loc, name, fileType, space, cd_h5p_default(), cd_h5p_default(), cd_h5p_default())
        guard d >= 0 else { throw DataError("cannot create dataset \(name) in \(path); check free disk space.") }
        defer { H5Dclose(d) }
        guard H5Dwrite(d, memType, cd_h5s_all(), cd_h5s_all(), cd_h5p_default(), data) >= 0 else {
            throw DataError("writing dataset \(name) to \(path) failed; check free disk space.")
        }
    }

    private static func writeAttribute(_ obj: hid_t, _ name: String, fileType: hid_t, memType: hid_t, dims: [hsize_t]?,
                                       path: String, _ value: UnsafeRawPointer) throws {
        let space = dims.map { H5Screate_simple(Int32($0.count), $0, nil) } ?? H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        let a = H5Acreate2(obj, name, fileType, space, cd_h5p_default(), cd_h5p_default())
        guard a >= 0 else { throw DataError("cannot create attribute \(name) in \(path).") }
        defer { H5Aclose(a) }
        guard H5Awrite(a, memType, value) >= 0 else { throw DataError("writing attribute \(name) to \(path) failed.") }
    }

    private static func writeInt(_ obj: hid_t, _ name: String, _ value: Int, path: String) throws {
        var v = Int64(value)
        try writeAttribute(obj, name, fileType: cd_h5t_std_i64le(), memType: cd_h5t_native_int64(), dims: nil, path: path, &v)
    }

    private static func writeFloats(_ obj: hid_t, _ name: String, _ values: [Float], path: String) throws {
        try values.withUnsafeBytes {
            try writeAttribute(obj, name, fileType: cd_h5t_ieee_f32le(), memType: cd_h5t_native_float(),
                               dims: [hsize_t(values.count)], path: path, $0.baseAddress!)
        }
    }

    /// A scalar variable-length UTF-8 string (h5py reads it as `str`).
    private static func writeString(_ obj: hid_t, _ name: String, _ value: String, path: String) throws {
        let t = H5Tcopy(cd_h5t_c_s1())
        defer { H5Tclose(t) }
        H5Tset_size(t, cd_h5t_variable())
        H5Tset_cset(t, H5T_CSET_UTF8)
        try value.withCString { p in
            var pointer: UnsafePointer<CChar>? = p
            try writeAttribute(obj, name, fileType: t, memType: t, dims: nil, path: path, &pointer)
        }
    }
}
