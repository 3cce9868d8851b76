import CHDF5
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An HDF5 file opened read-only, or being written by `createAtomically`. It closes itself when
/// released; `root` is its root group ("/"), where the file's attributes live.
public final class HDF5File {
    /// The path it was opened at.
    public let path: String
    let id: hid_t
    public let root: HDF5Group
    private var isOpen = true

    private init(id: hid_t, path: String) throws {
        self.id = id
        self.path = path
        let g = H5Gopen2(id, "/", cd_h5p_default())
        guard g >= 0 else {
            H5Fclose(id)
            throw HDF5Error(.damaged, file: path, "HDF5 cannot open its root group",
                            fix: "the file is damaged; write it again")
        }
        root = HDF5Group(id: g, file: path, path: "/")
    }

    deinit { if isOpen { H5Fclose(id) } }

    // MARK: Signature

    /// The 8 bytes that start an HDF5 superblock: at byte 0, or after a user block at byte 512,
    /// 1024, 2048, ... (a seal, HDF5Seal, is such a block).
    public static let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]

    /// True when `path` is a readable file with the HDF5 signature where HDF5 looks for one.
    public static func hasSignature(_ path: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: path), let size = try? h.seekToEnd() else { return false }
        defer { try? h.close() }
        var offset: UInt64 = 0
        while offset + UInt64(signature.count) <= size {
            guard (try? h.seek(toOffset: offset)) != nil else { return false }
            if [UInt8](h.readData(ofLength: signature.count)) == signature { return true }
            offset = offset == 0 ? UInt64(HDF5Seal.userBlockBytes) : offset * 2
        }
        return false
    }

    // MARK: Opening

    /// Opens `path` read-only with the library policy (`HDF5Library`). A file that cannot be
    /// opened throws the precise problem: `.missingFile`, `.isDirectory`, `.permissionDenied`,
    /// `.emptyFile`, `.notHDF5` (no signature), `.failsSeal` (a file codistill wrote, changed or
    /// cut short since: refused before libhdf5 parses it) or `.damaged` (the signature, but HDF5
    /// refuses it: typically truncated).
    public static func open(_ path: String) throws -> HDF5File {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HDF5Error(.missingFile, file: path, "the file does not exist", fix: "check the path")
        }
        if isDirectory.boolValue {
            throw HDF5Error(.isDirectory, file: path, "it is a folder, not an HDF5 file", fix: "pass a file in it")
        }
        if case .broken(let why) = HDF5Seal.check(path) {
            throw HDF5Error(.failsSeal, file: path, "truncated or damaged: \(why)",
                            fix: "use another copy or write it again (`h5dump -H \(path)` shows what is left)")
        }
        let fapl = try HDF5Library.fileAccessList(strongClose: false, file: path)
        defer { H5Pclose(fapl) }
        let id = H5Fopen(path, cd_h5f_acc_rdonly(), fapl)
        if id >= 0 { return try HDF5File(id: id, path: path) }

        guard FileManager.default.isReadableFile(atPath: path) else {
            throw HDF5Error(.permissionDenied, file: path, "permission denied",
                            fix: "make the file readable (chmod) or run as its owner")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1
        if size == 0 {
            throw HDF5Error(.emptyFile, file: path, "the file is empty (0 bytes)", fix: "write it again")
        }
        if !hasSignature(path) {
            throw HDF5Error(.notHDF5, file: path, "it is not an HDF5 file (it lacks the HDF5 signature)",
                            fix: "pass an HDF5 file")
        }
        throw HDF5Error(.damaged, file: path,
                        "it starts like an HDF5 file but HDF5 cannot open it (\(size) bytes; truncated or damaged?)",
                        fix: "check it with `h5dump -H \(path)` and write it again")
    }

    // MARK: Writing

    /// Writes `path` atomically: `body` fills a new file at `<path>.tmp` (in the same folder, which
    /// must exist), which is then flushed, closed, fsync'd and renamed over `path`, and the folder
    /// is fsync'd. The file is sealed (HDF5Seal) before it is synced. A crash leaves any previous `path` whole (and at worst the `.tmp` file). On any
    /// error, including one `body` throws (rethrown as is), the temporary file is removed and an
    /// existing `path` is left untouched.
    public static func createAtomically(at path: String, _ body: (HDF5Group) throws -> Void) throws {
        let tmp = path + ".tmp"
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let fapl = try HDF5Library.fileAccessList(strongClose: true, file: tmp)
        defer { H5Pclose(fapl) }
        func fail(_ reason: String) -> HDF5Error {
            HDF5Error(.failed, file: tmp, reason + HDF5Error.systemReason(),
                      fix: "check that \(folder) is writable and its disk has space")
        }
        errno = 0
        let fcpl = H5Pcreate(cd_h5p_file_create())
        defer { H5Pclose(fcpl) }
        H5Pset_userblock(fcpl, hsize_t(HDF5Seal.userBlockBytes))
        let id = H5Fcreate(tmp, cd_h5f_acc_trunc(), fcpl, fapl)
        guard id >= 0 else { throw fail("cannot create the file") }
        let file: HDF5File
        do { file = try HDF5File(id: id, path: tmp) } catch { unlink(tmp); throw error }
        do {
            try body(file.root)
            errno = 0
            guard H5Fflush(id, H5F_SCOPE_GLOBAL) >= 0 else { throw fail("cannot flush the file") }
            // Strong close: this also closes any object `body` kept, so after it the file on
            // disk is complete and released.
            file.root.release()
            file.isOpen = false
            errno = 0
            guard H5Fclose(id) >= 0 else { throw fail("cannot close the file") }
            try HDF5Seal.seal(tmp)
            try syncToDisk(tmp, directory: false)
            errno = 0
            guard rename(tmp, path) == 0 else { throw fail("cannot rename it to \(path)") }
        } catch {
            if file.isOpen { file.isOpen = false; H5Fclose(id) }
            // HDF5 reports a failed write without errno; say so when the disk is the cause.
            let full = fullDiskNote(folder: folder, written: tmp)
            unlink(tmp)
            if let full { throw HDF5Error(.failed, file: path, "\(error); \(full)", fix: "free space there, or write to another folder") }
            throw error
        }
        // The rename is durable once the folder is synced; a folder that cannot be synced (some
        // network file systems) still holds the complete file.
        try? syncToDisk(folder, directory: true)
    }

    /// "the file system of FOLDER is full (N KiB free)" when less space is left there than the
    /// partial file took (or under 1 MiB), else nil.
    static func fullDiskNote(folder: String, written: String) -> String? {
        var fs = statvfs()
        guard statvfs(folder, &fs) == 0 else { return nil }
        let free = UInt64(fs.f_bavail) * UInt64(fs.f_frsize)
        var st = stat()
        let partial = stat(written, &st) == 0 ? UInt64(st.st_size) : 0
        guard free < max(1 << 20, partial) else { return nil }
        return "the file system of \(folder) is full (\(free / 1024) KiB free)"
    }

    private static func syncToDisk(_ path: String, directory: Bool) throws {
        errno = 0
        let fd = Glibc.open(path, directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY)
        guard fd >= 0 else {
            throw HDF5Error(.failed, file: path, "cannot open it to sync it to disk" + HDF5Error.systemReason(),
                            fix: "check the permissions of its folder")
        }
        defer { close(fd) }
        guard fsync(fd) == 0 else {
            throw HDF5Error(.failed, file: path, "cannot sync it to disk" + HDF5Error.systemReason(),
                            fix: "check that its disk has space and is healthy")
        }
    }
}
