import CHDF5
import Foundation

/// A failed HDF5 (or file system) call; the public entry points wrap it into a `CheckpointError`
/// that names the file and the fix.
struct H5Failure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// Thin, throwing wrappers over the serial HDF5 C API. Every function closes what it opens.
enum H5 {
    /// One-time library setup: HDF5's own error printing off (we report one clear message), and
    /// file locking off unless the user chose otherwise: checkpoints are published by an atomic
    /// rename, so readers never see a file being written, and flock fails on many NFS/Lustre
    /// mounts (the shared peer directory) with "unable to lock file".
    static let setup: Void = {
        setenv("HDF5_USE_FILE_LOCKING", "FALSE", 0)
        _ = H5open()
        cd_h5_silence_errors()
    }()

    static var P: hid_t { cd_h5p_default() }

    @discardableResult
    static func id(_ id: hid_t, _ what: @autoclosure () -> String) throws -> hid_t {
        if id < 0 { throw H5Failure(what()) }
        return id
    }

    static func ok(_ r: herr_t, _ what: @autoclosure () -> String) throws {
        if r < 0 { throw H5Failure(what()) }
    }

    /// A file access property list that closes every open object with the file (so `H5Fclose`
    /// really releases the file before we fsync and rename it).
    static func strongCloseFapl() throws -> hid_t {
        let fapl = try id(H5Pcreate(cd_h5p_file_access()), "cannot create a file access property list")
        _ = H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG)
        return fapl
    }

    // MARK: Writing

    static func createGroup(_ parent: hid_t, _ name: String) throws -> hid_t {
        try id(H5Gcreate2(parent, name, P, P, P), "cannot create group '\(name)'")
    }

    private static func dataspace(_ shape: [Int]) throws -> hid_t {
        if shape.isEmpty { return try id(H5Screate(H5S_SCALAR), "cannot create a scalar dataspace") }
        var dims = shape.map { hsize_t($0) }
        return try id(H5Screate_simple(Int32(dims.count), &dims, nil), "cannot create a dataspace of shape \(shape)")
    }

    /// A dataset of `shape` (empty: scalar) written from `data` (`memType` in memory, `fileType` on disk).
    static func writeDataset(_ loc: hid_t, _ name: String, shape: [Int], fileType: hid_t, memType: hid_t,
                             data: UnsafeRawPointer) throws {
        let space = try dataspace(shape)
        defer { H5Sclose(space) }
        let ds = try id(H5Dcreate2(loc, name, fileType, space, P, P, P), "cannot create dataset '\(name)'")
        defer { H5Dclose(ds) }
        try ok(H5Dwrite(ds, memType, cd_h5s_all(), cd_h5s_all(), P, data), "cannot write dataset '\(name)'")
    }

    static func writeFloats(_ loc: hid_t, _ name: String, shape: [Int], _ data: UnsafePointer<Float>) throws {
        try writeDataset(loc, name, shape: shape, fileType: cd_h5t_ieee_f32le(), memType: cd_h5t_native_float(),
                         data: UnsafeRawPointer(data))
    }

    private static func writeScalarAttribute(_ loc: hid_t, _ name: String, fileType: hid_t, memType: hid_t,
                                             _ data: UnsafeRawPointer) throws {
        let space = try id(H5Screate(H5S_SCALAR), "cannot create a scalar dataspace")
        defer { H5Sclose(space) }
        let a = try id(H5Acreate2(loc, name, fileType, space, P, P), "cannot create attribute '\(name)'")
        defer { H5Aclose(a) }
        try ok(H5Awrite(a, memType, data), "cannot write attribute '\(name)'")
    }

    static func setAttribute(_ loc: hid_t, _ name: String, _ value: Int) throws {
        var v = Int64(value)
        try writeScalarAttribute(loc, name, fileType: cd_h5t_std_i64le(), memType: cd_h5t_native_int64(), &v)
    }

    static func setAttribute(_ loc: hid_t, _ name: String, _ value: UInt64) throws {
        var v = value
        try writeScalarAttribute(loc, name, fileType: cd_h5t_native_uint64(), memType: cd_h5t_native_uint64(), &v)
    }

    static func setAttribute(_ loc: hid_t, _ name: String, _ value: Double) throws {
        var v = value
        try writeScalarAttribute(loc, name, fileType: cd_h5t_native_double(), memType: cd_h5t_native_double(), &v)
    }

    /// A scalar variable-length UTF-8 string (h5py reads it back as `str`).
    static func setAttribute(_ loc: hid_t, _ name: String, _ value: String) throws {
        let t = try id(H5Tcopy(cd_h5t_c_s1()), "cannot create a string type")
        defer { H5Tclose(t) }
        try ok(H5Tset_size(t, cd_h5t_variable()), "cannot create a string type")
        try ok(H5Tset_cset(t, H5T_CSET_UTF8), "cannot create a string type")
        try value.withCString { p in
            var ptr: UnsafePointer<CChar>? = p
            try writeScalarAttribute(loc, name, fileType: t, memType: t, &ptr)
        }
    }

    // MARK: Reading

    static func exists(_ loc: hid_t, _ name: String) -> Bool { H5Lexists(loc, name, P) > 0 }
    static func attributeExists(_ loc: hid_t, _ name: String) -> Bool { H5Aexists(loc, name) > 0 }

    static func openGroup(_ loc: hid_t, _ name: String) throws -> hid_t {
        try id(H5Gopen2(loc, name, P), "cannot open group '\(name)'")
    }

    enum ObjectKind { case group, dataset, other }

    static func kind(_ loc: hid_t, _ name: String) throws -> ObjectKind {
        let o = try id(H5Oopen(loc, name, P), "cannot open object '\(name)'")
        defer { H5Oclose(o) }
        switch H5Iget_type(o) {
        case H5I_GROUP: return .group
        case H5I_DATASET: return .dataset
        default: return .other
        }
    }

    /// The names of a group's links, sorted by name.
    static func linkNames(_ group: hid_t) throws -> [String] {
        var info = H5G_info_t()
        try ok(H5Gget_info(group, &info), "cannot list a group")
        var names: [String] = []
        for i in 0..<info.nlinks {
            let n = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, P)
            guard n >= 0 else { throw H5Failure("cannot read the name of link \(i) of a group") }
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            guard H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, Int(n) + 1, P) >= 0 else {
                throw H5Failure("cannot read the name of link \(i) of a group")
            }
            names.append(String(cString: buf))
        }
        return names
    }

    /// The names of an object's attributes, sorted by name.
    static func attributeNames(_ obj: hid_t) throws -> [String] {
        final class Box { var names: [String] = [] }
        let box = Box()
        var idx: hsize_t = 0
        let r = withExtendedLifetime(box) {
            H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, { _, name, _, data in
                let box = Unmanaged<Box>.fromOpaque(data!).takeUnretainedValue()
                box.names.append(String(cString: name!))
                return 0
            }, Unmanaged.passUnretained(box).toOpaque())
        }
        try ok(r, "cannot list attributes")
        return box.names
    }

    static func typeName(_ t: hid_t) -> String {
        let size = H5Tget_size(t)
        switch H5Tget_class(t) {
        case H5T_FLOAT: return "float\(size * 8)"
        case H5T_INTEGER: return (H5Tget_sign(t) == H5T_SGN_NONE ? "uint" : "int") + "\(size * 8)"
        case H5T_STRING: return H5Tis_variable_str(t) > 0 ? "string" : "string[\(size)]"
        case H5T_COMPOUND: return "compound"
        case H5T_ARRAY: return "array"
        case H5T_ENUM: return "enum"
        default: return "other"
        }
    }

    /// Dimensions of a dataspace ([] for a scalar).
    static func dims(_ space: hid_t) throws -> [Int] {
        let rank = H5Sget_simple_extent_ndims(space)
        guard rank >= 0 else { throw H5Failure("cannot read a dataspace") }
        var d = [hsize_t](repeating: 0, count: Int(rank))
        guard H5Sget_simple_extent_dims(space, &d, nil) >= 0 else { throw H5Failure("cannot read a dataspace") }
        return d.map { Int($0) }
    }

    /// A dataset's shape and type name.
    static func datasetInfo(_ loc: hid_t, _ name: String) throws -> (shape: [Int], type: String) {
        let ds = try id(H5Dopen2(loc, name, P), "cannot open dataset '\(name)'")
        defer { H5Dclose(ds) }
        let space = try id(H5Dget_space(ds), "cannot read the shape of '\(name)'")
        defer { H5Sclose(space) }
        let t = try id(H5Dget_type(ds), "cannot read the type of '\(name)'")
        defer { H5Tclose(t) }
        return (try dims(space), typeName(t))
    }

    /// Reads a numeric dataset converted to `T` (HDF5 converts from the stored type).
    static func readDataset<T: Numeric>(_ loc: hid_t, _ name: String, as: T.Type, memType: hid_t,
                                        requireClass: H5T_class_t) throws -> (shape: [Int], values: [T]) {
        let ds = try id(H5Dopen2(loc, name, P), "cannot open dataset '\(name)'")
        defer { H5Dclose(ds) }
        let t = try id(H5Dget_type(ds), "cannot read the type of '\(name)'")
        defer { H5Tclose(t) }
        guard H5Tget_class(t) == requireClass else {
            throw H5Failure("dataset '\(name)' has type \(typeName(t)), expected \(requireClass == H5T_FLOAT ? "float" : "integer")")
        }
        let space = try id(H5Dget_space(ds), "cannot read the shape of '\(name)'")
        defer { H5Sclose(space) }
        let shape = try dims(space)
        let count = shape.reduce(1, *)
        var values = [T](repeating: 0, count: count)
        if count > 0 {
            try values.withUnsafeMutableBytes { buf in
                try ok(H5Dread(ds, memType, cd_h5s_all(), cd_h5s_all(), P, buf.baseAddress),
                       "cannot read the data of dataset '\(name)'")
            }
        }
        return (shape, values)
    }

    // MARK: Attributes (reading)

    enum AttributeValue {
        case ints([Int64]), uints([UInt64]), doubles([Double]), string(String), other(String)
        /// The single value of a scalar attribute, as Any for JSON.
        var jsonValue: Any {
            switch self {
            case .ints(let v): return v.count == 1 ? v[0] as Any : v
            case .uints(let v): return v.count == 1 ? v[0] as Any : v
            case .doubles(let v): return v.count == 1 ? v[0] as Any : v
            case .string(let s): return s
            case .other(let t): return "<\(t)>"
            }
        }
        var text: String {
            func list<T>(_ v: [T]) -> String { v.count == 1 ? "\(v[0])" : "[" + v.map { "\($0)" }.joined(separator: ", ") + "]" }
            switch self {
            case .ints(let v): return list(v)
            case .uints(let v): return list(v)
            case .doubles(let v): return list(v)
            case .string(let s): return "\"\(s)\""
            case .other(let t): return "<\(t)>"
            }
        }
    }

    static func readAttribute(_ loc: hid_t, _ name: String) throws -> AttributeValue {
        let a = try id(H5Aopen(loc, name, P), "cannot open attribute '\(name)'")
        defer { H5Aclose(a) }
        let t = try id(H5Aget_type(a), "cannot read the type of attribute '\(name)'")
        defer { H5Tclose(t) }
        let space = try id(H5Aget_space(a), "cannot read attribute '\(name)'")
        defer { H5Sclose(space) }
        let n = Int(H5Sget_simple_extent_npoints(space))
        guard n >= 0 else { throw H5Failure("cannot read attribute '\(name)'") }
        func read<T: Numeric>(_ type: T.Type, _ mem: hid_t) throws -> [T] {
            var v = [T](repeating: 0, count: n)
            if n > 0 {
                try v.withUnsafeMutableBytes { try ok(H5Aread(a, mem, $0.baseAddress!), "cannot read attribute '\(name)'") }
            }
            return v
        }
        switch H5Tget_class(t) {
        case H5T_INTEGER:
            return H5Tget_sign(t) == H5T_SGN_NONE ? .uints(try read(UInt64.self, cd_h5t_native_uint64()))
                                                  : .ints(try read(Int64.self, cd_h5t_native_int64()))
        case H5T_FLOAT:
            return .doubles(try read(Double.self, cd_h5t_native_double()))
        case H5T_STRING:
            guard n == 1 else { return .other("\(n) strings") }
            if H5Tis_variable_str(t) > 0 {
                let mem = try id(H5Tcopy(cd_h5t_c_s1()), "cannot create a string type")
                defer { H5Tclose(mem) }
                _ = H5Tset_size(mem, cd_h5t_variable())
                _ = H5Tset_cset(mem, H5Tget_cset(t))
                var p: UnsafeMutablePointer<CChar>? = nil
                try ok(H5Aread(a, mem, &p), "cannot read attribute '\(name)'")
                defer { if let p { H5free_memory(p) } }
                return .string(p.map { String(cString: $0) } ?? "")
            } else {
                let size = H5Tget_size(t)
                var buf = [UInt8](repeating: 0, count: size + 1)
                try buf.withUnsafeMutableBytes { try ok(H5Aread(a, t, $0.baseAddress!), "cannot read attribute '\(name)'") }
                let end = buf.firstIndex(of: 0) ?? size
                let s = String(decoding: buf[..<end], as: UTF8.self)
                return .string(H5Tget_strpad(t) == H5T_STR_SPACEPAD ? String(s.reversed().drop { $0 == " " }.reversed()) : s)
            }
        default:
            return .other(typeName(t))
        }
    }

    static func intAttribute(_ loc: hid_t, _ name: String) throws -> Int {
        switch try readAttribute(loc, name) {
        case .ints(let v) where v.count == 1: return Int(v[0])
        case .uints(let v) where v.count == 1 && v[0] <= UInt64(Int.max): return Int(v[0])
        case .doubles(let v) where v.count == 1 && v[0] == v[0].rounded() && abs(v[0]) < 9e15: return Int(v[0])
        case let other: throw H5Failure("attribute '\(name)' should be one integer, found \(other.text)")
        }
    }

    static func uint64Attribute(_ loc: hid_t, _ name: String) throws -> UInt64 {
        switch try readAttribute(loc, name) {
        case .uints(let v) where v.count == 1: return v[0]
        case .ints(let v) where v.count == 1 && v[0] >= 0: return UInt64(v[0])
        case let other: throw H5Failure("attribute '\(name)' should be one unsigned integer, found \(other.text)")
        }
    }

    static func doubleAttribute(_ loc: hid_t, _ name: String) throws -> Double {
        switch try readAttribute(loc, name) {
        case .doubles(let v) where v.count == 1: return v[0]
        case .ints(let v) where v.count == 1: return Double(v[0])
        case .uints(let v) where v.count == 1: return Double(v[0])
        case let other: throw H5Failure("attribute '\(name)' should be one number, found \(other.text)")
        }
    }

    static func stringAttribute(_ loc: hid_t, _ name: String) throws -> String {
        switch try readAttribute(loc, name) {
        case .string(let s): return s
        case let other: throw H5Failure("attribute '\(name)' should be a string, found \(other.text)")
        }
    }
}
