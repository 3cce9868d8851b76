import ArgumentParser
import DataFree
import RunConfig

// The option enums parse from their raw strings; ArgumentParser lists `allValueStrings` (every
// case) in help and in the error for a bad value. Kept here so the libraries do not depend on
// ArgumentParser.
extension OptimizerKind: ExpressibleByArgument {}
extension ScheduleKind: ExpressibleByArgument {}
extension ExchangeKind: ExpressibleByArgument {}
extension Topology: ExpressibleByArgument {}
extension ExchangeMode: ExpressibleByArgument {}
extension DataSplit: ExpressibleByArgument {}
extension SynthesisMethod: ExpressibleByArgument {}
