import HDF5
import Foundation

/// SplitMix64: a tiny PRNG whose whole state is one word, so a failing input is reproduced from
/// the seed and the iteration number alone, on any machine.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (n > 0); the modulo bias is irrelevant for fuzzing.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func chance(_ oneIn: Int) -> Bool { below(oneIn) == 0 }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// The run's seed and budget: fixed defaults for CI, overridden by hand (scripts/fuzz.sh) with
/// CODISTILL_FUZZ_SEED and CODISTILL_FUZZ_ITERATIONS (inputs per reader).
enum FuzzBudget {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["CODISTILL_FUZZ_SEED"].flatMap { UInt64($0) } ?? 1

    /// The CI default keeps the whole target well under 60 s in a debug build on a shared 2-core
    /// host (docs/FUZZING.md has the timings).
    static let iterations: Int = ProcessInfo.processInfo.environment["CODISTILL_FUZZ_ITERATIONS"]
        .flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil } ?? defaultIterations
    static let defaultIterations = 2000
}

/// Mutations of binary files: each call applies one to five of them to a copy of `seed`.
struct ByteMutator {
    var rng: SplitMix64

    /// Values that sit on the edges readers check: zero, all ones, sign bits, and sizes.
    static let interestingBytes: [UInt8] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0x10, 0x20, 0x40]
    /// 32-bit words that make header-declared sizes absurd or wrap when multiplied.
    static let interestingWords: [UInt32] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x0001_0000, 0x1000_0000]

    enum Kind: CaseIterable { case flipBit, setByte, setWord, truncate, extend, duplicateChunk, deleteChunk }
    /// The mutations that keep every byte where it was (plus garbage after the end, and a
    /// truncation now and then) for formats whose offsets are absolute.
    static let inPlace: [Kind] = [.flipBit, .flipBit, .setByte, .setByte, .setWord, .setWord, .extend, .truncate]

    mutating func mutate(_ seed: [UInt8], kinds: [Kind] = Kind.allCases) -> (bytes: [UInt8], applied: [Kind]) {
        var bytes = seed
        var applied: [Kind] = []
        for _ in 0...rng.below(5) {
            let kind = rng.pick(kinds)
            apply(kind, to: &bytes)
            applied.append(kind)
        }
        return (bytes, applied)
    }

    mutating func apply(_ kind: Kind, to bytes: inout [UInt8]) {
        if bytes.isEmpty && kind != .extend { return }
        switch kind {
        case .flipBit:
            bytes[rng.below(bytes.count)] ^= UInt8(1 << rng.below(8))
        case .setByte:
            bytes[position(in: bytes)] = rng.pick(Self.interestingBytes)
        case .setWord:
            let at = position(in: bytes)
            let word = rng.pick(Self.interestingWords)
            // Big-endian (IDX) or little-endian (HDF5), whichever the reader wants.
            let bigEndian = rng.chance(2)
            for k in 0..<4 where at + k < bytes.count {
                let shift = bigEndian ? 24 - 8 * k : 8 * k
                bytes[at + k] = UInt8(truncatingIfNeeded: word >> UInt32(shift))
            }
        case .truncate:
            bytes.removeLast(bytes.count - rng.below(bytes.count))
        case .extend:
            bytes += (0..<(1 + rng.below(64))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        case .duplicateChunk:
            let (start, length) = chunk(in: bytes)
            bytes.insert(contentsOf: bytes[start..<(start + length)], at: rng.below(bytes.count + 1))
        case .deleteChunk:
            let (start, length) = chunk(in: bytes)
            bytes.removeSubrange(start..<(start + length))
        }
    }

    /// Headers are where readers decide what to allocate: half of the point mutations land in
    /// the first 64 bytes.
    private mutating func position(in bytes: [UInt8]) -> Int {
        rng.chance(2) ? rng.below(min(bytes.count, 64)) : rng.below(bytes.count)
    }

    private mutating func chunk(in bytes: [UInt8]) -> (start: Int, length: Int) {
        let start = rng.below(bytes.count)
        return (start, 1 + rng.below(min(bytes.count - start, 256)))
    }
}

/// Mutations of `key = value` experiment files (TOML and YAML alike): values replaced by huge,
/// negative, non-finite, empty or wrongly typed ones, unknown keys, deleted and repeated lines,
/// then sometimes a byte-level mutation on top.
struct TextMutator {
    var rng: SplitMix64

    static let values = [
        "1e30", "-1e30", "1e400", "-1", "0", "-0", "9223372036854775807", "9223372036854775808", "-9223372036854775809",
        "nan", "inf", "-inf", ".nan", ".inf", "\"\"", "''", "\"abc\"", "abc", "true", "[]", "[1, 2]", "{}", "0x7fffffff",
        "1_000", "2024-01-01", "\"\u{0}\"", "~", "null", "18446744073709551616", "0.0000001", "\"\\u0000\"",
    ]
    static let keys = ["learning_rate", "", "lr.lr", "model model", "\"quoted\"", "__proto__", "batch-size", "LR"]

    /// `separator` is " = " for TOML, ": " for YAML.
    mutating func mutate(_ seed: String, separator: String) -> String {
        var lines = seed.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for _ in 0...rng.below(3) {
            let i = rng.below(lines.count)
            guard let range = lines[i].range(of: separator) else { continue }
            let key = String(lines[i][..<range.lowerBound]), value = String(lines[i][range.upperBound...])
            switch rng.below(6) {
            case 0, 1, 2: lines[i] = key + separator + rng.pick(Self.values)
            case 3: lines[i] = rng.pick(Self.keys) + separator + value
            case 4: lines.remove(at: i)
            default: lines.insert(lines[i], at: i)
            }
        }
        var text = lines.joined(separator: "\n")
        if rng.chance(4) {
            var bytes = ByteMutator(rng: SplitMix64(seed: rng.next()))
            text = String(decoding: bytes.mutate(Array(text.utf8)).bytes, as: UTF8.self)
        }
        return text
    }
}

/// The one mutation class the HDF5 campaigns leave out, because the HDF5 C library crashes on it
/// and no caller can check it first: the global heap, where variable-length strings (our string
/// attributes) live, and the heap IDs that point into it. HDF5 1.10.8 (Debian 12's
/// libhdf5-103-1) trusts both in H5HG_read: a flipped bit in an ID's object index (3 -> 0x800003)
/// indexes past the collection's object table, one in an object's size makes memcpy run off the
/// heap; both are a segfault, in `h5dump -A` as in our reader. The public API offers no way to
/// see a heap ID before the read that crashes. Found by CheckpointFuzzTests (seed 1, inputs 572
/// and 883 before this exclusion); docs/FUZZING.md.
enum GlobalHeapIndexes {
    /// The byte ranges of every global heap collection ("GCOL", its size at offset 8) and of
    /// every 16-byte heap ID (length 4, the collection's address 8, object index 4) in `file`.
    /// A false match only spares a few more bytes from mutation.
    static func ranges(in file: [UInt8]) -> [Range<Int>] {
        func word(at i: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(file[i + $1]) << (8 * UInt64($1)) } }
        let signature = Array("GCOL".utf8)
        var out: [Range<Int>] = []
        for at in 0..<max(file.count - 16 + 1, 0) where Array(file[at..<(at + 4)]) == signature {
            out.append(at..<min(file.count, at + Int(clamping: min(word(at: at + 8), UInt64(file.count)))))
            // Addresses are relative to the superblock, which a seal's user block moves to byte 512.
            for base in [0, HDF5Seal.userBlockBytes] where at >= base {
                let address = (0..<8).map { UInt8(truncatingIfNeeded: UInt64(at - base) >> (8 * UInt64($0))) }
                for id in 4..<max(file.count - 12 + 1, 4) where Array(file[id..<(id + 8)]) == address {
                    out.append((id - 4)..<(id + 12))
                }
            }
        }
        return out
    }

    /// `bytes` with those ranges put back as in `seed` (where `bytes` still reaches them).
    static func restore(_ ranges: [Range<Int>], of seed: [UInt8], in bytes: inout [UInt8]) {
        for r in ranges { for i in r where i < bytes.count { bytes[i] = seed[i] } }
    }
}

/// The second class left out, for the same reason: the description of an attribute in a
/// version-1 object header (its name, datatype and dataspace sizes and encodings; its value is
/// still mutated). HDF5 1.10.8 decodes an attribute whose name size was raised (5 -> 7) or whose
/// integer type claims 128 bytes instead of 8, and segfaults in `H5A__close` when it evicts the
/// object header at file close; `h5dump` crashes on the same files. Found by
/// CheckpointFuzzTests (seed 1, input 5710 of the long run; inputs 1147 and 1899 once inputs
/// were sealed again after mutation). Real damage to these bytes is refused by the seal before
/// libhdf5 reads the file.
enum AttributeDescriptions {
    /// The description bytes of every attribute message in `file`: message type 0x000C, its
    /// size, flags, 3 reserved bytes, then version 1, a reserved 0, the three sizes, and the
    /// name, datatype and dataspace, each padded to 8 bytes. A false match only spares a few
    /// more bytes.
    static func ranges(in file: [UInt8]) -> [Range<Int>] {
        func short(_ i: Int) -> Int { Int(file[i]) | Int(file[i + 1]) << 8 }
        func padded(_ n: Int) -> Int { (n + 7) / 8 * 8 }
        var out: [Range<Int>] = []
        for at in 0..<max(file.count - 16 + 1, 0)
        where file[at] == 0x0C && file[at + 1] == 0 && file[at + 5] == 0 && file[at + 6] == 0 && file[at + 7] == 0
            && file[at + 8] == 1 && file[at + 9] == 0 {
            let end = at + 16 + padded(short(at + 10)) + padded(short(at + 12)) + padded(short(at + 14))
            out.append((at + 8)..<min(end, at + 8 + short(at + 2), file.count))
        }
        return out
    }
}

/// Files codistill writes are sealed (HDF5Seal): a mutated copy fails its seal and never reaches
/// libhdf5. Three inputs in four are sealed again after the mutation, so they get past the seal
/// to libhdf5 and to our checks behind it, as a file damaged before it was sealed would be (a
/// bug, or someone who reseals on purpose); the fourth checks that the seal refuses it.
enum Reseal {
    /// Seals `path` again for three inputs in four; says so for the input's description.
    static func mostInputs(_ path: String, rng: inout SplitMix64) -> String {
        guard rng.below(4) != 0 else { return ", seal left stale" }
        return (try? HDF5Seal.seal(path)) != nil ? ", sealed again" : ", cannot be sealed"
    }
}
