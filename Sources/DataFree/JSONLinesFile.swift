import Foundation

/// Appends Codable rows as JSON Lines (`synth --metrics`, one row per round).
///
/// Training's MetricsWriter writes its .jsonl lines itself (fixed column names, %.6g numbers,
/// appending on resume) while this encodes each row's Codable keys: one appender for both would
/// change one of the two file formats.
final class JSONLinesFile {
    let handle: FileHandle
    init(path: String) throws {
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !dir.isEmpty { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        guard FileManager.default.createFile(atPath: path, contents: nil),
              let h = FileHandle(forWritingAtPath: path) else {
            throw DataFreeError("cannot write metrics file \(path): check that its directory is writable")
        }
        handle = h
    }
    deinit { try? handle.close() }
    func append<T: Encodable>(_ row: T) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        handle.write(try encoder.encode(row) + Data("\n".utf8))
    }
}
