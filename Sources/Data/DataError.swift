import Foundation

/// A problem with a dataset on disk. The message is one sentence that names the file, says what is
/// wrong with it and what to do about it, so `codistill` can print it as is and stop.
public struct DataError: Error, CustomStringConvertible, LocalizedError {
    public let description: String
    public init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
}

/// Which half of a dataset to load.
public enum Split: String, CaseIterable {
    case train, test
}
