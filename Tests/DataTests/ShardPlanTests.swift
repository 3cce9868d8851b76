import Data
import XCTest

final class ShardPlanTests: XCTestCase {
    func plan(_ n: Int = 103, batch: Int, ranks: Int, rank: Int = 0, seed: UInt64 = 7, partitions: Int = 1, partition: Int = 0) -> ShardPlan {
        ShardPlan(datasetCount: n, perRankBatch: batch, ranksInGroup: ranks, rankInGroup: rank, seed: seed,
                  partitions: partitions, partition: partition)
    }

    func testStepsPerEpochDropsPartialBatch() {
        XCTAssertEqual(plan(batch: 5, ranks: 2).stepsPerEpoch, 10)    // 103 / 10
        XCTAssertEqual(plan(batch: 8, ranks: 4).stepsPerEpoch, 3)     // 103 / 32
        XCTAssertEqual(plan(batch: 200, ranks: 1).stepsPerEpoch, 0)   // too big: caller must check
    }

    func testRanksAreDisjointAndInRange() {
        let p = plan(batch: 6, ranks: 3)
        for step in 0..<(3 * p.stepsPerEpoch) {
            let all = (0..<3).flatMap { p.indices(step: step, rank: $0) }
            XCTAssertEqual(all.count, 18)
            XCTAssertEqual(Set(all).count, 18, "ranks overlap at step \(step)")
            XCTAssertTrue(all.allSatisfy { $0 >= 0 && $0 < 103 })
        }
    }

    func testEpochVisitsEachSampleAtMostOnce() {
        let p = plan(batch: 5, ranks: 2)
        var seen = Set<Int>()
        for step in 0..<p.stepsPerEpoch {
            for r in 0..<2 { for i in p.indices(step: step, rank: r) { XCTAssertTrue(seen.insert(i).inserted) } }
        }
        XCTAssertEqual(seen.count, 100)
    }

    /// What makes "2 ranks x B/2 == 1 rank x B" exact: the union of a group's ranks, in rank order,
    /// is the batch a single rank with the whole group batch reads.
    func testGroupUnionEqualsSingleRankBatch() {
        for (ranks, batch) in [(2, 8), (4, 4), (8, 2), (3, 5)] {
            let single = plan(batch: ranks * batch, ranks: 1)
            let group = plan(batch: batch, ranks: ranks)
            XCTAssertEqual(single.stepsPerEpoch, group.stepsPerEpoch)
            for step in 0..<(2 * single.stepsPerEpoch + 1) {
                let union = (0..<ranks).flatMap { group.indices(step: step, rank: $0) }
                XCTAssertEqual(union, single.indices(step: step), "ranks \(ranks) step \(step)")
            }
        }
    }

    func testIndicesUsesOwnRank() {
        let p = plan(batch: 4, ranks: 3, rank: 2)
        XCTAssertEqual(p.indices(step: 5), p.indices(step: 5, rank: 2))
    }

    func testDeterministicForSeedAndDifferentAcrossSeeds() {
        let a = plan(batch: 10, ranks: 1, seed: 42), b = plan(batch: 10, ranks: 1, seed: 42), c = plan(batch: 10, ranks: 1, seed: 43)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        for step in 0..<25 { XCTAssertEqual(a.indices(step: step), b.indices(step: step)) }
        XCTAssertNotEqual((0..<10).flatMap { a.indices(step: $0) }, (0..<10).flatMap { c.indices(step: $0) })
    }

    func testEpochsDiffer() {
        let p = plan(batch: 10, ranks: 1)
        let e0 = (0..<10).flatMap { p.indices(step: $0) }
        let e1 = (10..<20).flatMap { p.indices(step: $0) }
        XCTAssertNotEqual(e0, e1)
        XCTAssertNotEqual(e0, Array(0..<100), "epoch 0 is not shuffled")
    }

    func testPartitionsAreDisjointAndCoverTheirShare() {
        let n = 100, g = 3
        var seen = [Set<Int>](repeating: [], count: g)
        for part in 0..<g {
            let p = plan(n, batch: 3, ranks: 2, partitions: g, partition: part)
            let share = (n * part / g)..<(n * (part + 1) / g)
            XCTAssertEqual(p.partitionRange, share)
            for step in 0..<(p.stepsPerEpoch * 2) {
                for r in 0..<2 {
                    for i in p.indices(step: step, rank: r) {
                        XCTAssertTrue(share.contains(i), "partition \(part) read \(i) outside \(share)")
                        seen[part].insert(i)
                    }
                }
            }
        }
        for a in 0..<g { for b in (a + 1)..<g { XCTAssertTrue(seen[a].isDisjoint(with: seen[b])) } }
    }

    func testSharedDataWhenOnePartition() {
        let p = plan(100, batch: 50, ranks: 1)
        XCTAssertEqual(Set((0..<2).flatMap { p.indices(step: $0) }), Set(0..<100))
    }
}
