import CHDF5

/// An open group or dataset. It closes itself when released, so callers never close handles;
/// `file` and `path` name it in error messages.
public class HDF5Object {
    let id: hid_t
    private let close: (hid_t) -> herr_t
    /// The file it is in.
    public let file: String
    /// Its path in the file ("/", "/model", "/model/features.0.weight").
    public let path: String

    init(id: hid_t, file: String, path: String, close: @escaping (hid_t) -> herr_t) {
        self.id = id; self.file = file; self.path = path; self.close = close
    }

    private var isOpen = true

    deinit { release() }

    /// Closes it now rather than when released (before its file is closed and renamed).
    func release() {
        if isOpen { isOpen = false; _ = close(id) }
    }

    func childPath(_ name: String) -> String { path == "/" ? "/" + name : path + "/" + name }

    /// The size of the file it is in as HDF5 sees it (the end of its allocated space while it is
    /// being written), nil when HDF5 cannot tell: the bound for sizes its headers declare.
    func fileSize() -> UInt64? {
        let fileID = H5Iget_file_id(id)
        guard fileID >= 0 else { return nil }
        defer { H5Fclose(fileID) }
        var size: hsize_t = 0
        return H5Fget_filesize(fileID, &size) >= 0 ? UInt64(size) : nil
    }

    func failure(_ reason: String, fix: String = "the file is damaged or the disk is full; write it again") -> HDF5Error {
        HDF5Error(.failed, file: file, reason, fix: fix)
    }
}

/// What a group's child is.
public enum HDF5ChildKind: Equatable, Sendable { case group, dataset, other }

/// A group (the root group of a file is one): children, datasets and attributes.
public final class HDF5Group: HDF5Object {
    init(id: hid_t, file: String, path: String) {
        super.init(id: id, file: file, path: path, close: { H5Gclose($0) })
    }

    /// Whether `name` (a child, or a relative path such as "train/images") exists.
    public func contains(_ name: String) -> Bool {
        // H5Lexists needs every intermediate link to exist, so test component by component.
        var prefix = ""
        for part in name.split(separator: "/") {
            prefix += (prefix.isEmpty ? "" : "/") + part
            if H5Lexists(id, prefix, cd_h5p_default()) <= 0 { return false }
        }
        return !prefix.isEmpty
    }

    private func requireChild(_ name: String, _ what: String) throws {
        guard contains(name) else {
            throw HDF5Error(.missingObject, file: file, "\(what) \(childPath(name)) is missing",
                            fix: "write the file again with it, or pass a file that has it")
        }
    }

    /// The names of the children, sorted by name.
    public func childNames() throws -> [String] {
        var info = H5G_info_t()
        guard H5Gget_info(id, &info) >= 0 else { throw failure("cannot list the group \(path)") }
        var names: [String] = []
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, cd_h5p_default())
            guard n >= 0 else { throw failure("cannot read the name of child \(i) of \(path)") }
            var buffer = [CChar](repeating: 0, count: Int(n) + 1)
            guard H5Lget_name_by_idx(id, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buffer, Int(n) + 1, cd_h5p_default()) >= 0 else {
                throw failure("cannot read the name of child \(i) of \(path)")
            }
            names.append(String(cString: buffer))
        }
        return names
    }

    public func kind(of name: String) throws -> HDF5ChildKind {
        try requireChild(name, "object")
        let o = H5Oopen(id, name, cd_h5p_default())
        guard o >= 0 else { throw failure("cannot open \(childPath(name))") }
        defer { H5Oclose(o) }
        switch H5Iget_type(o) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    public func group(_ name: String) throws -> HDF5Group {
        try requireChild(name, "group")
        let g = H5Gopen2(id, name, cd_h5p_default())
        guard g >= 0 else {
            throw HDF5Error(.wrongType, file: file, "\(childPath(name)) is not a readable group",
                            fix: "write the file again in the expected layout")
        }
        return HDF5Group(id: g, file: file, path: childPath(name))
    }

    public func createGroup(_ name: String) throws -> HDF5Group {
        let g = H5Gcreate2(id, name, cd_h5p_default(), cd_h5p_default(), cd_h5p_default())
        guard g >= 0 else { throw failure("cannot create the group \(childPath(name))", fix: "check that the disk has space") }
        return HDF5Group(id: g, file: file, path: childPath(name))
    }

    public func dataset(_ name: String) throws -> HDF5Dataset {
        try requireChild(name, "dataset")
        let d = H5Dopen2(id, name, cd_h5p_default())
        guard d >= 0 else {
            throw HDF5Error(.wrongType, file: file, "\(childPath(name)) is not a readable dataset",
                            fix: "write the file again in the expected layout")
        }
        return try HDF5Dataset(id: d, file: file, path: childPath(name))
    }
}

/// An open dataset: its shape and stored type are read on opening.
public final class HDF5Dataset: HDF5Object {
    /// [] for a scalar.
    public let shape: [Int]
    public let storedType: HDF5StoredType

    /// The number of elements (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }

    init(id: hid_t, file: String, path: String) throws {
        let space = H5Dget_space(id)
        let type = H5Dget_type(id)
        defer {
            if space >= 0 { H5Sclose(space) }
            if type >= 0 { H5Tclose(type) }
        }
        let rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1
        var dims = [hsize_t](repeating: 0, count: max(Int(rank), 0))
        let shapeRead = rank >= 0 && (rank == 0 || H5Sget_simple_extent_dims(space, &dims, nil) >= 0)
        shape = dims.map { Int(clamping: $0) }
        storedType = type >= 0 ? HDF5StoredType(type) : .other("unreadable")
        let elementSize = type >= 0 ? H5Tget_size(type) : 0
        super.init(id: id, file: file, path: path, close: { H5Dclose($0) })
        guard shapeRead, type >= 0 else { throw failure("cannot read the shape and type of \(path)") }
        try checkPlausibleSize(dims, elementSize: elementSize)
    }

    /// Readers allocate `count` elements before HDF5 reads a byte, so a shape from a damaged
    /// header (a flipped bit makes [5, 2, 3, 2] into [2^40, 2, 3, 2]) must not be believed: the
    /// values must fit in an Int and, unless compressed, in the file itself. Compressed data can
    /// be larger than the file, by at most deflate's ratio (1032:1, with margin); a crafted
    /// file can still claim that much, but a corrupt one no longer asks for terabytes.
    private func checkPlausibleSize(_ dims: [hsize_t], elementSize: Int) throws {
        var bytes = UInt64(max(elementSize, 1))
        var overflow = false
        for d in dims {
            let (p, o) = bytes.multipliedReportingOverflow(by: UInt64(d))
            bytes = p
            overflow = overflow || o
        }
        let shape = "[" + dims.map(String.init).joined(separator: ", ") + "]"
        if !dims.contains(0) && (overflow || bytes > UInt64(Int.max)) {
            throw HDF5Error(.damaged, file: file, "dataset \(path) declares shape \(shape), more values than any file can hold: "
                            + "its header is damaged", fix: "write the file again")
        }
        guard let fileSize = fileSize() else { return }
        let plist = H5Dget_create_plist(id)
        let filters = plist >= 0 ? H5Pget_nfilters(plist) : 0
        let layout = plist >= 0 ? H5Pget_layout(plist) : H5D_LAYOUT_ERROR
        if plist >= 0 { H5Pclose(plist) }
        // Compact data lives in the object header and must be exactly the shape's size: HDF5
        // 1.10.8 copies the shape's worth from it regardless (a contiguous layout flipped to
        // compact, size 0, segfaulted in H5VM_memcpyvv; DatasetFuzzTests, seed 1, input 14290).
        if layout == H5D_COMPACT && !dims.contains(0) && UInt64(H5Dget_storage_size(id)) != bytes {
            throw HDF5Error(.damaged, file: file, "dataset \(path) of shape \(shape) (\(bytes) bytes) is stored compact in "
                            + "\(H5Dget_storage_size(id)) bytes: its header is damaged", fix: "write the file again")
        }
        // Contiguous data is one block: its recorded size must be the shape's, and the block
        // must lie inside the file (neither is checked by HDF5 1.10.8 before it reads).
        if layout == H5D_CONTIGUOUS {
            let stored = UInt64(H5Dget_storage_size(id))
            let address = H5Dget_offset(id)
            let allocated = stored > 0 && address != haddr_t.max  // HADDR_UNDEF, a macro Swift cannot import
            let (end, endOverflow) = UInt64(address).addingReportingOverflow(stored)
            if allocated && (stored != bytes || endOverflow || end > fileSize) {
                throw HDF5Error(.damaged, file: file,
                                "dataset \(path) of shape \(shape) (\(bytes) bytes) records \(stored) bytes of data at offset \(address) "
                                + "of the \(fileSize)-byte file: its header is damaged", fix: "write the file again")
            }
        }
        let (limit, limitOverflow) = fileSize.multipliedReportingOverflow(by: filters > 0 ? 1100 : 1)
        if !dims.contains(0) && !limitOverflow && bytes > limit {
            throw HDF5Error(.damaged, file: file,
                            "dataset \(path) declares shape \(shape) (\(bytes) bytes), more than the whole \(fileSize)-byte file "
                            + "can hold\(filters > 0 ? " even compressed" : ""): its header is damaged", fix: "write the file again")
        }
    }

    /// Reads every element into `buffer`, converted to `T` (floating point from any float type,
    /// integers from any integer type). Throws when the kinds differ or `buffer` is not exactly
    /// the dataset's size. Meant for large reads straight into caller-owned storage.
    public func read<T: HDF5Element>(into buffer: UnsafeMutableBufferPointer<T>) throws {
        try readRaw(into: UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, as: T.hdf5Type)
    }

    /// The same into untyped storage that holds `count` elements of `type`.
    public func readRaw(into storage: UnsafeMutableRawPointer?, count wanted: Int, as type: HDF5ElementType) throws {
        guard storedType.converts(to: type) else {
            throw HDF5Error(.wrongType, file: file, "dataset \(path) holds \(storedType) values, not \(type) ones",
                            fix: "store it as \(type.isFloatingPoint ? "floating point" : "integers")")
        }
        guard wanted == count else {
            throw HDF5Error(.wrongShape, file: file, "dataset \(path) has shape \(shape) (\(count) values) but \(wanted) were expected",
                            fix: "write it with the expected shape")
        }
        guard count > 0 else { return }
        guard let storage, H5Dread(id, type.memoryType, cd_h5s_all(), cd_h5s_all(), cd_h5p_default(), storage) >= 0 else {
            throw failure("cannot read the data of \(path) (truncated or damaged?)")
        }
    }

    /// Every element, converted to `T`; `expectedShape`, when given, must match exactly.
    public func read<T: HDF5Element>(_ type: T.Type = T.self, expectedShape: [Int]? = nil) throws -> [T] {
        if let expectedShape, expectedShape != shape {
            throw HDF5Error(.wrongShape, file: file, "dataset \(path) has shape \(shape), expected \(expectedShape)",
                            fix: "write it with the expected shape")
        }
        var values = [T](repeating: 0, count: count)
        try values.withUnsafeMutableBufferPointer { try read(into: $0) }
        return values
    }
}

extension HDF5Group {
    /// Writes dataset `name` of `shape` ([] for a scalar) from `values`, stored as `T`'s
    /// little-endian type, contiguous and uncompressed (loading is then one read).
    public func writeDataset<T: HDF5Element>(_ name: String, shape: [Int], from values: UnsafeBufferPointer<T>) throws {
        guard shape.allSatisfy({ $0 >= 0 }), shape.reduce(1, *) == values.count else {
            throw HDF5Error(.wrongShape, file: file, "dataset \(childPath(name)) of shape \(shape) cannot hold \(values.count) values",
                            fix: "pass as many values as the shape holds (this is a bug in the caller)")
        }
        var dims = shape.map { hsize_t($0) }
        let space = shape.isEmpty ? H5Screate(H5S_SCALAR) : H5Screate_simple(Int32(dims.count), &dims, nil)
        guard space >= 0 else { throw failure("cannot create a dataspace of shape \(shape)") }
        defer { H5Sclose(space) }
        let type = T.hdf5Type
        let d = H5Dcreate2(id, name, type.fileType, space, cd_h5p_default(), cd_h5p_default(), cd_h5p_default())
        guard d >= 0 else { throw failure("cannot create the dataset \(childPath(name))", fix: "check that the disk has space") }
        defer { H5Dclose(d) }
        // An empty dataset has nothing to write (and HDF5 refuses a missing buffer).
        guard let base = values.baseAddress, values.count > 0 else { return }
        guard H5Dwrite(d, type.memoryType, cd_h5s_all(), cd_h5s_all(), cd_h5p_default(), base) >= 0 else {
            throw failure("cannot write the dataset \(childPath(name))", fix: "check that the disk has space")
        }
    }

    public func writeDataset<T: HDF5Element>(_ name: String, shape: [Int], _ values: [T]) throws {
        try values.withUnsafeBufferPointer { try writeDataset(name, shape: shape, from: $0) }
    }

    /// A scalar dataset (shape []).
    public func writeScalar<T: HDF5Element>(_ name: String, _ value: T) throws {
        try writeDataset(name, shape: [], [value])
    }
}
