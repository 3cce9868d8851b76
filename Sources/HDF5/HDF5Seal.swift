import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A checksum over every HDF5 file codistill writes, kept in the file's user block (the bytes
/// before the superblock, which HDF5 reserves for applications and every HDF5 tool skips):
///
///     codistill-seal 1
///     crc32 89abcdef
///     bytes 123456
///     (zeros up to 512 bytes; the HDF5 file proper starts at byte 512)
///
/// `crc32` is zlib's CRC-32 of everything after the user block and `bytes` its length, so
/// `python3 -c "import zlib;d=open(F,'rb').read();print('%08x'%zlib.crc32(d[512:]))"` checks
/// one by hand.
///
/// Why: libhdf5 trusts the bytes it parses. A damaged object header can crash it inside
/// `H5Fopen` or when it evicts the object (`h5dump` crashes on the same files; docs/FUZZING.md),
/// before any check of ours could run. A file that fails its seal is refused before libhdf5
/// reads a byte, so a cut-off copy, a flipped bit or a torn write gives a message, not a crash.
/// Files without a seal (written by other tools, or by codistill before the seal) are opened as
/// before.
public enum HDF5Seal {
    /// The user block size (HDF5 requires a power of two of at least 512).
    public static let userBlockBytes = 512
    static let magic = Array("codistill-seal 1\n".utf8)

    /// What `check` found.
    public enum State: Equatable {
        /// No seal: the file starts with the HDF5 signature, or with a user block of another tool.
        case unsealed
        /// The seal matches the contents.
        case intact
        /// The seal does not match (why, for the message).
        case broken(String)
    }

    /// Writes the seal of the complete, closed file at `path`, created with `userBlockBytes` of
    /// user block.
    public static func seal(_ path: String) throws {
        let fd = open(path, O_RDWR)
        guard fd >= 0 else {
            throw HDF5Error(.failed, file: path, "cannot open it to seal it" + HDF5Error.systemReason(), fix: "check its folder's permissions")
        }
        defer { close(fd) }
        var superblock = [UInt8](repeating: 0, count: HDF5File.signature.count)
        guard pread(fd, &superblock, superblock.count, off_t(userBlockBytes)) == superblock.count, superblock == HDF5File.signature else {
            throw HDF5Error(.failed, file: path, "it has no \(userBlockBytes)-byte user block before its HDF5 superblock to hold a seal",
                            fix: "seal only files codistill wrote; others are read unsealed")
        }
        let (crc, count) = try checksum(fd: fd, path: path)
        var block = [UInt8](repeating: 0, count: userBlockBytes)
        let text = Array((String(decoding: magic, as: UTF8.self) + String(format: "crc32 %08x\nbytes %d\n", crc, count)).utf8)
        block.replaceSubrange(0..<text.count, with: text)
        errno = 0
        guard pwrite(fd, block, block.count, 0) == block.count else {
            throw HDF5Error(.failed, file: path, "cannot write its seal" + HDF5Error.systemReason(), fix: "check that its disk has space")
        }
    }

    /// Checks `path`'s seal (reads the whole file when it has one).
    public static func check(_ path: String) -> State {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return .unsealed }  // opening reports why
        defer { close(fd) }
        var head = [UInt8](repeating: 0, count: userBlockBytes)
        let got = pread(fd, &head, head.count, 0)
        guard got > 0 else { return .unsealed }
        if got >= HDF5File.signature.count && Array(head[0..<HDF5File.signature.count]) == HDF5File.signature { return .unsealed }
        // Most of the magic in place: a seal, perhaps damaged; little of it: another tool's user block.
        let matching = zip(head.prefix(magic.count), magic).filter { $0 == $1 }.count
        guard matching * 2 > magic.count else { return .unsealed }
        guard got == userBlockBytes else { return .broken("it is \(got) bytes, shorter than its seal's block: cut short") }
        guard matching == magic.count, let fields = parse(head) else {
            return .broken("its seal (the checksum in its first 512 bytes) is damaged")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .unsealed }
        let count = Int(st.st_size) - userBlockBytes
        guard count == fields.bytes else {
            return .broken("it holds \(count) bytes after its seal, which was written for \(fields.bytes): "
                           + (count < fields.bytes ? "cut short" : "bytes were added"))
        }
        guard let (crc, _) = try? checksum(fd: fd, path: path) else { return .broken("it cannot be read to the end") }
        guard crc == fields.crc else {
            return .broken(String(format: "its contents fail their checksum (crc32 %08x, sealed as %08x): bytes were changed after it was written",
                                  crc, fields.crc))
        }
        return .intact
    }

    /// The "crc32 X" and "bytes N" lines after the magic.
    static func parse(_ head: [UInt8]) -> (crc: UInt32, bytes: Int)? {
        let end = head.firstIndex(of: 0) ?? head.count
        let lines = String(decoding: head[magic.count..<end], as: UTF8.self).split(separator: "\n")
        guard lines.count == 2, lines[0].hasPrefix("crc32 "), lines[1].hasPrefix("bytes "),
              let crc = UInt32(lines[0].dropFirst(6), radix: 16), let bytes = Int(lines[1].dropFirst(6)), bytes >= 0 else { return nil }
        return (crc, bytes)
    }

    /// zlib's CRC-32 of everything after the user block, and its length.
    static func checksum(fd: Int32, path: String) throws -> (UInt32, Int) {
        let chunk = 1 << 20
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: chunk)
        defer { buffer.deallocate() }
        var crc = crc32(0, nil, 0), offset = userBlockBytes, count = 0
        while true {
            let n = pread(fd, buffer, chunk, off_t(offset))
            guard n >= 0 else {
                throw HDF5Error(.failed, file: path, "cannot read it" + HDF5Error.systemReason(), fix: "check the file")
            }
            if n == 0 { break }
            crc = crc32(crc, buffer, uInt(n))
            offset += n; count += n
        }
        return (UInt32(crc), count)
    }
}
