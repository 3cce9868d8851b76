import CHDF5

/// An attribute's values as stored: every integer, float and string type HDF5 has is read into
/// one of these (64-bit numbers, Swift strings); anything else is named in `.other`.
public enum HDF5AttributeValue: Equatable {
    case integers([Int64])
    case unsignedIntegers([UInt64])
    case reals([Double])
    case strings([String])
    case other(String)

    /// For messages and `inspect`: one value plainly, several as a list, strings quoted.
    public var text: String {
        func list<T>(_ v: [T], _ show: (T) -> String) -> String {
            v.count == 1 ? show(v[0]) : "[" + v.map(show).joined(separator: ", ") + "]"
        }
        switch self {
        case .integers(let v): return list(v) { "\($0)" }
        case .unsignedIntegers(let v): return list(v) { "\($0)" }
        case .reals(let v): return list(v) { "\($0)" }
        case .strings(let v): return list(v) { "\"\($0)\"" }
        case .other(let type): return "<\(type)>"
        }
    }
}

extension HDF5Object {
    public func hasAttribute(_ name: String) -> Bool { H5Aexists(id, name) > 0 }

    /// The attribute names, sorted by name.
    public func attributeNames() throws -> [String] {
        final class Names { var list: [String] = [] }
        let names = Names()
        var index: hsize_t = 0
        let status = withExtendedLifetime(names) {
            H5Aiterate2(id, H5_INDEX_NAME, H5_ITER_INC, &index, { _, name, _, context in
                Unmanaged<Names>.fromOpaque(context!).takeUnretainedValue().list.append(String(cString: name!))
                return 0
            }, Unmanaged.passUnretained(names).toOpaque())
        }
        guard status >= 0 else { throw failure("cannot list the attributes of \(path)") }
        return names.list
    }

    private func describeAttribute(_ name: String) -> String { "attribute '\(name)' of \(path)" }

    /// Attribute `name`; throws `.missingObject` when absent.
    public func attribute(_ name: String) throws -> HDF5AttributeValue {
        guard hasAttribute(name) else {
            throw HDF5Error(.missingObject, file: file, "\(describeAttribute(name)) is missing",
                            fix: "write the file again with it, or pass a file that has it")
        }
        let a = H5Aopen(id, name, cd_h5p_default())
        guard a >= 0 else { throw failure("cannot open \(describeAttribute(name))") }
        defer { H5Aclose(a) }
        let type = H5Aget_type(a), space = H5Aget_space(a)
        defer {
            if type >= 0 { H5Tclose(type) }
            if space >= 0 { H5Sclose(space) }
        }
        let n = space >= 0 ? Int(H5Sget_simple_extent_npoints(space)) : -1
        guard type >= 0, n >= 0 else { throw failure("cannot read the type and size of \(describeAttribute(name))") }
        // The values are allocated from the declared count: a damaged one must not ask for more
        // than the file holds (attributes are never compressed).
        if let fileSize = fileSize() {
            let (bytes, overflow) = n.multipliedReportingOverflow(by: max(H5Tget_size(type), 1))
            if overflow || UInt64(bytes) > fileSize {
                throw HDF5Error(.damaged, file: file, "\(describeAttribute(name)) declares \(n) values, more than the whole "
                                + "\(fileSize)-byte file can hold: its header is damaged", fix: "write the file again")
            }
        }

        func numbers<T: HDF5Element>(_: T.Type) throws -> [T] {
            var values = [T](repeating: 0, count: n)
            if n > 0 {
                let status = values.withUnsafeMutableBytes { H5Aread(a, T.hdf5Type.memoryType, $0.baseAddress!) }
                guard status >= 0 else { throw failure("cannot read \(describeAttribute(name))") }
            }
            return values
        }
        switch HDF5StoredType(type) {
        case .integer(let signed, _):
            return signed ? .integers(try numbers(Int64.self)) : .unsignedIntegers(try numbers(UInt64.self))
        case .float:
            return .reals(try numbers(Double.self))
        case .string(let variableLength, let size):
            return .strings(try strings(a, fileType: type, count: n, variableLength: variableLength, size: size, name: name))
        case .other(let kind):
            return .other(kind)
        }
    }

    /// Fixed or variable length, one or many; fixed ones lose their padding.
    private func strings(_ a: hid_t, fileType: hid_t, count n: Int, variableLength: Bool, size: Int,
                         name: String) throws -> [String] {
        let memory = H5Tcopy(cd_h5t_c_s1())
        guard memory >= 0 else { throw failure("cannot create a string type") }
        defer { H5Tclose(memory) }
        _ = H5Tset_cset(memory, H5Tget_cset(fileType))
        var values: [String] = []
        if variableLength {
            _ = H5Tset_size(memory, cd_h5t_variable())
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: n)
            let status = pointers.withUnsafeMutableBytes { H5Aread(a, memory, $0.baseAddress!) }
            guard status >= 0 else { throw failure("cannot read \(describeAttribute(name)) as text") }
            for p in pointers {
                values.append(p.map { String(cString: $0) } ?? "")
                if let p { H5free_memory(p) }
            }
        } else {
            // One byte more than stored, so HDF5's conversion to NUL-terminated strings always has
            // room for the terminator (it also drops space padding).
            let width = size + 1
            _ = H5Tset_size(memory, width)
            var buffer = [CChar](repeating: 0, count: max(n * width, 1))
            let status = buffer.withUnsafeMutableBytes { H5Aread(a, memory, $0.baseAddress!) }
            guard status >= 0 else { throw failure("cannot read \(describeAttribute(name)) as text") }
            buffer.withUnsafeBufferPointer { b in
                for i in 0..<n { values.append(String(cString: b.baseAddress! + i * width)) }
            }
        }
        return values
    }

    private func wrongType(_ name: String, _ wanted: String, _ found: HDF5AttributeValue) -> HDF5Error {
        HDF5Error(.wrongType, file: file, "\(describeAttribute(name)) should be \(wanted), found \(found.text)",
                  fix: "write it again as \(wanted)")
    }

    /// One integer (any integer type, or a float with an integral value).
    public func intAttribute(_ name: String) throws -> Int {
        let value = try attribute(name)
        switch value {
        case .integers(let v) where v.count == 1: return Int(v[0])
        case .unsignedIntegers(let v) where v.count == 1 && v[0] <= UInt64(Int.max): return Int(v[0])
        case .reals(let v) where v.count == 1 && v[0] == v[0].rounded() && abs(v[0]) < 9e15: return Int(v[0])
        default: throw wrongType(name, "one integer", value)
        }
    }

    /// One non-negative integer, kept whole to 64 bits (seeds).
    public func uint64Attribute(_ name: String) throws -> UInt64 {
        let value = try attribute(name)
        switch value {
        case .unsignedIntegers(let v) where v.count == 1: return v[0]
        case .integers(let v) where v.count == 1 && v[0] >= 0: return UInt64(v[0])
        default: throw wrongType(name, "one unsigned integer", value)
        }
    }

    /// One number of any numeric type.
    public func doubleAttribute(_ name: String) throws -> Double {
        let value = try attribute(name)
        switch value {
        case .reals(let v) where v.count == 1: return v[0]
        case .integers(let v) where v.count == 1: return Double(v[0])
        case .unsignedIntegers(let v) where v.count == 1: return Double(v[0])
        default: throw wrongType(name, "one number", value)
        }
    }

    /// Numbers of any numeric type (a scalar is one number).
    public func doublesAttribute(_ name: String) throws -> [Double] {
        let value = try attribute(name)
        switch value {
        case .reals(let v): return v
        case .integers(let v): return v.map(Double.init)
        case .unsignedIntegers(let v): return v.map(Double.init)
        default: throw wrongType(name, "an array of numbers", value)
        }
    }

    /// Exactly one string.
    public func stringAttribute(_ name: String) throws -> String {
        let value = try attribute(name)
        guard case .strings(let v) = value, v.count == 1 else { throw wrongType(name, "a string", value) }
        return v[0]
    }

    /// Strings (a scalar is one string).
    public func stringsAttribute(_ name: String) throws -> [String] {
        let value = try attribute(name)
        guard case .strings(let v) = value else { throw wrongType(name, "text", value) }
        return v
    }

    // MARK: Writing

    private func writeAttribute(_ name: String, fileType: hid_t, memoryType: hid_t, count: Int?,
                                _ value: UnsafeRawPointer) throws {
        var dims = [hsize_t(count ?? 1)]
        let space = count == nil ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, nil)
        guard space >= 0 else { throw failure("cannot create a dataspace for \(describeAttribute(name))") }
        defer { H5Sclose(space) }
        let a = H5Acreate2(id, name, fileType, space, cd_h5p_default(), cd_h5p_default())
        guard a >= 0 else { throw failure("cannot create \(describeAttribute(name))", fix: "check that the disk has space") }
        defer { H5Aclose(a) }
        guard H5Awrite(a, memoryType, value) >= 0 else {
            throw failure("cannot write \(describeAttribute(name))", fix: "check that the disk has space")
        }
    }

    private func setScalar<T: HDF5Element>(_ name: String, _ value: T) throws {
        let type = T.hdf5Type
        try withUnsafeBytes(of: value) {
            try writeAttribute(name, fileType: type.fileType, memoryType: type.memoryType, count: nil, $0.baseAddress!)
        }
    }

    /// A scalar int64.
    public func setAttribute(_ name: String, _ value: Int) throws { try setScalar(name, Int64(value)) }
    /// A scalar uint64.
    public func setAttribute(_ name: String, _ value: UInt64) throws { try setScalar(name, value) }
    /// A scalar float64.
    public func setAttribute(_ name: String, _ value: Double) throws { try setScalar(name, value) }

    /// A 1-D array of `T`.
    public func setAttribute<T: HDF5Element>(_ name: String, _ values: [T]) throws {
        let type = T.hdf5Type
        // HDF5 wants a buffer even for an empty array, which has none.
        let buffer = values.isEmpty ? [T.zero] : values
        try buffer.withUnsafeBytes {
            try writeAttribute(name, fileType: type.fileType, memoryType: type.memoryType, count: values.count, $0.baseAddress!)
        }
    }

    /// A scalar variable-length UTF-8 string (h5py reads it back as `str`).
    public func setAttribute(_ name: String, _ value: String) throws {
        let t = H5Tcopy(cd_h5t_c_s1())
        guard t >= 0 else { throw failure("cannot create a string type") }
        defer { H5Tclose(t) }
        guard H5Tset_size(t, cd_h5t_variable()) >= 0, H5Tset_cset(t, H5T_CSET_UTF8) >= 0 else {
            throw failure("cannot create a UTF-8 string type")
        }
        try value.withCString { p in
            var pointer: UnsafePointer<CChar>? = p
            try writeAttribute(name, fileType: t, memoryType: t, count: nil, &pointer)
        }
    }
}
