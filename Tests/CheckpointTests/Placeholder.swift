import XCTest
final class CheckpointTestsPlaceholder: XCTestCase { func testBuilds() {} }
