import CHDF5

/// The numeric element types this layer reads and writes. On disk they are always the
/// little-endian standard types (what numpy/h5py and PyTorch expect), whatever the host.
public enum HDF5ElementType: String, Sendable {
    case float32, float64, int32, int64, uint8, uint64

    var isFloatingPoint: Bool { self == .float32 || self == .float64 }

    var memoryType: hid_t {
        switch self {
        case .float32: return cd_h5t_native_float()
        case .float64: return cd_h5t_native_double()
        case .int32: return cd_h5t_native_int32()
        case .int64: return cd_h5t_native_int64()
        case .uint8: return cd_h5t_native_uint8()
        case .uint64: return cd_h5t_native_uint64()
        }
    }

    var fileType: hid_t {
        switch self {
        case .float32: return cd_h5t_ieee_f32le()
        case .float64: return cd_h5t_ieee_f64le()
        case .int32: return cd_h5t_std_i32le()
        case .int64: return cd_h5t_std_i64le()
        case .uint8: return cd_h5t_std_u8le()
        case .uint64: return cd_h5t_std_u64le()
        }
    }
}

/// A Swift type that maps to one `HDF5ElementType`.
public protocol HDF5Element: Numeric {
    static var hdf5Type: HDF5ElementType { get }
}

extension Float: HDF5Element { public static var hdf5Type: HDF5ElementType { .float32 } }
extension Double: HDF5Element { public static var hdf5Type: HDF5ElementType { .float64 } }
extension Int32: HDF5Element { public static var hdf5Type: HDF5ElementType { .int32 } }
extension Int64: HDF5Element { public static var hdf5Type: HDF5ElementType { .int64 } }
extension UInt8: HDF5Element { public static var hdf5Type: HDF5ElementType { .uint8 } }
extension UInt64: HDF5Element { public static var hdf5Type: HDF5ElementType { .uint64 } }

/// The type of a stored dataset or attribute, as found in the file (any HDF5 type).
public enum HDF5StoredType: Equatable, Sendable, CustomStringConvertible {
    case float(bits: Int)
    case integer(signed: Bool, bits: Int)
    case string(variableLength: Bool, size: Int)
    /// Compound, array, enum, ...: a name for messages.
    case other(String)

    init(_ t: hid_t) {
        let bits = H5Tget_size(t) * 8
        switch H5Tget_class(t) {
        case H5T_FLOAT: self = .float(bits: bits)
        case H5T_INTEGER: self = .integer(signed: H5Tget_sign(t) != H5T_SGN_NONE, bits: bits)
        case H5T_STRING: self = .string(variableLength: H5Tis_variable_str(t) > 0, size: H5Tget_size(t))
        case H5T_COMPOUND: self = .other("compound")
        case H5T_ARRAY: self = .other("array")
        case H5T_ENUM: self = .other("enum")
        default: self = .other("other")
        }
    }

    /// numpy-style names: "float32", "int64", "uint8", "string" (variable length), "string[8]".
    public var description: String {
        switch self {
        case .float(let bits): return "float\(bits)"
        case .integer(let signed, let bits): return (signed ? "int" : "uint") + "\(bits)"
        case .string(let variable, let size): return variable ? "string" : "string[\(size)]"
        case .other(let name): return name
        }
    }

    /// Whether values of this stored type are read as `element` without changing their kind:
    /// floating point as floating point, integers as integers (never a silent float-to-int cut).
    func converts(to element: HDF5ElementType) -> Bool {
        switch self {
        case .float: return element.isFloatingPoint
        case .integer: return !element.isFloatingPoint
        default: return false
        }
    }
}
