import Data
import Foundation
import XCTest

/// The real dataset, when the machine has it (package dataset-fashion-mnist).
final class FashionMNISTTests: XCTestCase {
    func testLoadsRealFashionMNIST() throws {
        let path = DatasetLoader.defaultPath
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw XCTSkip("\(path) is absent (install the dataset-fashion-mnist package to run this test)")
        }
        let train = try DatasetLoader.load(path: path, split: .train)
        let test = try DatasetLoader.load(path: path, split: .test)
        XCTAssertEqual(train.count, 60000)
        XCTAssertEqual(test.count, 10000)
        XCTAssertEqual(train.sampleShape, [1, 28, 28])
        XCTAssertEqual(test.sampleShape, [1, 28, 28])
        XCTAssertEqual(train.classes, 10)
        XCTAssertEqual(test.classes, 10)
        XCTAssertEqual(train.name, "fashion-mnist/train")
        var histogram = [Int](repeating: 0, count: 10)
        for l in train.labels { histogram[Int(l)] += 1 }
        XCTAssertEqual(histogram, [Int](repeating: 6000, count: 10))
        let stats = train.channelStatistics()
        XCTAssertEqual(stats.mean[0], 0.2860, accuracy: 1e-3)
        XCTAssertEqual(stats.std[0], 0.3530, accuracy: 1e-3)
    }
}
