import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A malloc'd block of bytes with one owner. Files are read (and gunzipped) into one of these, and a
/// `Dataset` can adopt it directly, so the pixels of an IDX file are never copied after inflating.
final class ByteBuffer {
    let base: UnsafeMutableRawPointer
    let count: Int

    /// Adopts `base`, which must come from malloc/realloc; it is freed with the buffer.
    init(adopting base: UnsafeMutableRawPointer, count: Int) {
        self.base = base
        self.count = count
    }

    /// A new uninitialised buffer (never a null pointer, even for 0 bytes).
    convenience init(uninitializedCount count: Int) {
        guard let p = malloc(max(count, 1)) else { fatalError("out of memory allocating \(count) bytes") }
        self.init(adopting: p, count: count)
    }

    deinit { free(base) }

    var bytes: UnsafeMutablePointer<UInt8> { base.assumingMemoryBound(to: UInt8.self) }

    subscript(_ i: Int) -> UInt8 { bytes[i] }

    /// Big-endian 32-bit word at byte offset `at` (IDX headers).
    func bigEndianUInt32(at i: Int) -> UInt32 {
        UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
    }

    var isGzip: Bool { count >= 2 && bytes[0] == 0x1F && bytes[1] == 0x8B }
}

enum FileReader {
    /// The whole file, in one read. Errors name the path and say what to do.
    static func read(_ path: String) throws -> ByteBuffer {
        let fd = open(path, O_RDONLY)
        if fd < 0 {
            let e = errno
            switch e {
            case ENOENT: throw DataError("\(path) does not exist; check the path (or download the dataset there).")
            case EACCES: throw DataError("\(path) is not readable (permission denied); fix its permissions or copy it somewhere readable.")
            default: throw DataError("\(path) could not be opened (\(String(cString: strerror(e)))); check the path.")
            }
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            throw DataError("\(path) could not be examined (\(String(cString: strerror(errno)))); check the path.")
        }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            throw DataError("\(path) is a directory where a file was expected; point to the file itself.")
        }
        let size = Int(st.st_size)
        let buffer = ByteBuffer(uninitializedCount: size)
        var done = 0
        while done < size {
            let n = Glibc.read(fd, buffer.base + done, min(size - done, 1 << 30))
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError("\(path) could not be read (\(String(cString: strerror(errno)))); check the disk and the file.")
            }
            if n == 0 { break }
            done += n
        }
        if done < size {
            throw DataError("\(path) shrank while being read (\(done) of \(size) bytes); make sure nothing is writing it and retry.")
        }
        return buffer
    }

    /// The file's contents, gunzipped when it starts with the gzip magic bytes 1f 8b (whatever its name).
    static func readMaybeGzip(_ path: String) throws -> (data: ByteBuffer, gzipped: Bool) {
        let raw = try read(path)
        if raw.isGzip { return (try Gzip.inflate(raw, path: path), true) }
        return (raw, false)
    }
}

enum Gzip {
    /// Inflates a gzip file (one or more concatenated members) held in `input`.
    static func inflate(_ input: ByteBuffer, path: String) throws -> ByteBuffer {
        var strm = z_stream()
        guard cd_inflate_init_gzip(&strm) == Z_OK else {
            throw DataError("\(path): zlib could not start inflating (out of memory?); free some memory and retry.")
        }
        defer { inflateEnd(&strm) }

        // A single-member gzip file records the uncompressed size (mod 2^32) in its last 4 bytes:
        // use it as the first guess so that the usual case needs no reallocation.
        var capacity = 1 << 16
        if input.count >= 18 {
            let t = input.count - 4
            let isize = Int(input[t]) | Int(input[t + 1]) << 8 | Int(input[t + 2]) << 16 | Int(input[t + 3]) << 24
            capacity = max(capacity, isize + 1)
        }
        capacity = max(capacity, input.count)
        guard var out = malloc(capacity) else { throw DataError("\(path): out of memory inflating; free some memory and retry.") }
        var produced = 0
        var consumed = 0
        func fail(_ why: String) -> DataError {
            free(out)
            return DataError("\(path) is not a valid gzip file (\(why)); the download is damaged: delete it and download it again.")
        }

        while true {
            if strm.avail_in == 0 && consumed < input.count {
                let n = min(input.count - consumed, Int(UInt32.max >> 1))
                strm.next_in = input.bytes + consumed
                strm.avail_in = uInt(n)
                consumed += n
            }
            if produced == capacity {
                capacity *= 2
                guard let grown = realloc(out, capacity) else {
                    free(out)
                    throw DataError("\(path): out of memory inflating (\(capacity) bytes); free some memory and retry.")
                }
                out = grown
            }
            let room = min(capacity - produced, Int(UInt32.max >> 1))
            strm.next_out = (out + produced).assumingMemoryBound(to: Bytef.self)
            strm.avail_out = uInt(room)
            let ret = CZlib.inflate(&strm, Z_NO_FLUSH)
            produced += room - Int(strm.avail_out)
            switch ret {
            case Z_STREAM_END:
                // Another member may follow (concatenated gzip); anything else after the end is ignored,
                // as gzip(1) does with trailing zeros.
                let pending = Int(strm.avail_in) + (input.count - consumed)
                let at = input.count - pending
                if pending >= 2 && input[at] == 0x1F && input[at + 1] == 0x8B {
                    inflateReset(&strm)
                    continue
                }
                if capacity > produced + (1 << 20), let shrunk = realloc(out, max(produced, 1)) { out = shrunk }
                return ByteBuffer(adopting: out, count: produced)
            case Z_OK, Z_BUF_ERROR:
                if strm.avail_in == 0 && consumed == input.count && strm.avail_out > 0 {
                    throw fail("it ends before the compressed stream does: truncated after \(input.count) bytes")
                }
            case Z_DATA_ERROR:
                let msg = strm.msg.map { String(cString: $0) } ?? "corrupt data"
                throw fail(msg)
            case Z_NEED_DICT:
                throw fail("it needs a preset dictionary")
            case Z_MEM_ERROR:
                free(out)
                throw DataError("\(path): out of memory inflating; free some memory and retry.")
            default:
                throw fail("zlib error \(ret)")
            }
        }
    }
}
