/// A data-free run that cannot start or continue. The description names the problem and the fix
/// (the option to change), as the command line prints it.
public struct DataFreeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
