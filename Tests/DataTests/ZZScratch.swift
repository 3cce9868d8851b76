import Data
import Foundation
import XCTest
final class ZZScratch: XCTestCase {
    func testScratch() throws {
        let t0 = Date()
        try HDF5DatasetWriter.convert(source: DatasetLoader.defaultPath, destination: "/tmp/fmnist-scratch.h5")
        print("convert", Date().timeIntervalSince(t0))
        print(try DatasetLoader.describe(path: DatasetLoader.defaultPath))
        let t1 = Date()
        print(try DatasetLoader.describe(path: "/tmp/fmnist-scratch.h5"))
        print("describe h5", Date().timeIntervalSince(t1))
        for p in ["/nonexistent", "/tmp", "/etc/passwd", "/tmp/fmnist-scratch.h5/x"] {
            do { _ = try DatasetLoader.load(path: p, split: .train) } catch { print("ERR:", error) }
        }
        let d = try DatasetLoader.load(path: DatasetLoader.defaultPath, split: .train)
        let s = d.channelStatistics()
        let b = BatchBuilder(dataset: d, mean: s.mean, std: s.std, augmentation: .init(randomCropPadding: 4, horizontalFlip: true))
        let plan = ShardPlan(datasetCount: d.count, perRankBatch: 128, ranksInGroup: 1, rankInGroup: 0, seed: 1)
        let t2 = Date()
        for step in 0..<100 { _ = b.batch(indices: plan.indices(step: step), step: step) }
        print("100 batches of 128 (debug)", Date().timeIntervalSince(t2))
    }
}
