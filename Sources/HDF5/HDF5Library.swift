import CHDF5
import Foundation

/// The process-wide HDF5 policy, applied before the first HDF5 call of the process whatever
/// opens a file first (a dataset, a checkpoint, `inspect`): every open and create in this module
/// calls `prepare()` before it touches the library.
///
/// - File locking is off unless the user set `HDF5_USE_FILE_LOCKING`. codistill publishes every
///   file it writes by an atomic rename, so no reader sees a file being written, and flock fails
///   on many NFS/Lustre mounts (the shared checkpoint and peer folders) with "unable to lock file".
///   HDF5 reads the variable once, when the library initialises, so setting it later has no
///   effect; the file access property (`H5Pset_file_locking`, on every file we open or create)
///   makes the policy hold even if something else initialised HDF5 first.
/// - HDF5's own error-stack printing is off: failures become thrown `HDF5Error`s that name the
///   file and the fix, printed once by the caller.
public enum HDF5Library {
    static let lockingVariable = "HDF5_USE_FILE_LOCKING"

    /// Whether `prepare()` has run in this process.
    public private(set) static var isPrepared = false

    /// Whether this process turned HDF5 file locking off (false when the user set
    /// `HDF5_USE_FILE_LOCKING`, whose value HDF5 then follows).
    public static var lockingDisabledByPolicy: Bool {
        prepare()
        return policy
    }

    /// Applies the policy; cheap after the first call, safe from any thread.
    public static func prepare() {
        _ = policy
        silenceErrorPrintingOnThisThread()
    }

    /// Swift runs this initialiser exactly once, thread-safely, on first use.
    private static let policy: Bool = {
        let userChoice = getenv(lockingVariable).map { String(cString: $0) } ?? ""
        let disable = userChoice.isEmpty
        if disable { setenv(lockingVariable, "FALSE", 1) }
        _ = H5open()
        isPrepared = true
        return disable
    }()

    /// The library is thread-safe, so its error stacks (and whether they print) are per thread.
    private static func silenceErrorPrintingOnThisThread() {
        let key = "codistill.hdf5.errorPrintingOff"
        let thread = Thread.current.threadDictionary
        if thread[key] == nil {
            cd_h5_silence_errors()
            thread[key] = true
        }
    }

    /// A file access property list with the policy: file locking off (unless the user chose),
    /// and, when `strongClose`, closing the file closes every object in it, so `H5Fclose` really
    /// releases the file before it is synced and renamed. The caller closes the list.
    static func fileAccessList(strongClose: Bool, file: String) throws -> hid_t {
        prepare()
        let fapl = H5Pcreate(cd_h5p_file_access())
        guard fapl >= 0 else {
            throw HDF5Error(.failed, file: file, "cannot create an HDF5 file access property list",
                            fix: "check that the HDF5 library (libhdf5) is installed correctly")
        }
        if policy {
            // Second argument: also ignore lock failures on file systems without flock.
            _ = H5Pset_file_locking(fapl, false, true)
        }
        if strongClose { _ = H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) }
        return fapl
    }
}
