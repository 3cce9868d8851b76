import ArgumentParser
import Training

// The option enums parse from their raw strings; ArgumentParser lists `allValueStrings` (every
// case) in help and in the error for a bad value. Kept here so the Training library does not
// depend on ArgumentParser.
extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension ExchangeKind: ExpressibleByArgument {}
extension Topology: ExpressibleByArgument {}
extension DataSplit: ExpressibleByArgument {}
extension SynthesisMethod: ExpressibleByArgument {}

/// Help text that ends with the default, rendered as the options' own spelling (raw values for
/// enums, "none" for an empty string), so `--help` shows what a run without the flag uses.
func help<Value>(_ text: String, default value: Value) -> ArgumentHelp {
    let shown: String
    switch value {
    case let s as String: shown = s.isEmpty ? "none" : s
    case let choice as any OptionChoice: shown = choice.rawValue
    default: shown = "\(value)"
    }
    return ArgumentHelp("\(text) (default: \(shown))")
}
