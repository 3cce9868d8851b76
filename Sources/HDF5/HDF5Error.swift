import Foundation

/// A failed HDF5 (or file system) operation. The description names the file, what is wrong and
/// what to do; `problem` lets callers (checkpoints, datasets) give their own advice per case.
public struct HDF5Error: Error, CustomStringConvertible, LocalizedError {
    public enum Problem: Equatable, Sendable {
        /// Opening: the path does not exist / is a folder / cannot be read / has 0 bytes.
        case missingFile, isDirectory, permissionDenied, emptyFile
        /// Opening: the file lacks the 8-byte HDF5 signature.
        case notHDF5
        /// Opening: it has the signature but HDF5 cannot open it (truncated or damaged).
        case damaged
        /// Opening: the file's seal (HDF5Seal) does not match its contents: cut short, or bytes
        /// changed after it was written. libhdf5 never saw it.
        case failsSeal
        /// A group, dataset or attribute that is not in the file.
        case missingObject
        /// An object of another kind or element type than the one asked for.
        case wrongType
        /// Data whose shape or element count differs from the one asked for.
        case wrongShape
        /// Any other failed call (create, write, flush, close, sync, rename, a damaged object).
        case failed
    }

    public let problem: Problem
    /// The file the operation was on.
    public let file: String
    /// What went wrong, without the file name ("dataset /model/x has shape [2, 3], expected [6]").
    public let reason: String
    /// What to do about it.
    public let fix: String

    public init(_ problem: Problem, file: String, _ reason: String, fix: String) {
        self.problem = problem; self.file = file; self.reason = reason; self.fix = fix
    }

    public var description: String { "\(file): \(reason); \(fix)." }
    public var errorDescription: String? { description }

    /// " (No such file or directory)" for the current errno, or "" when errno is 0.
    static func systemReason() -> String {
        errno == 0 ? "" : " (\(String(cString: strerror(errno))))"
    }
}
