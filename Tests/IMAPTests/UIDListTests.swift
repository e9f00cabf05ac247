import XCTest
@testable import PosternIMAPCore

/// The run-length UID list behind every session's view (Session/UIDList.swift): positions,
/// look-ups and removals agree with a plain sorted array, whatever the runs look like.
final class UIDListTests: XCTestCase {
    func testRunsSplitAndShrinkOnRemoval() {
        var list = UIDList(ascending: [1, 2, 3, 4, 5, 9, 10, 20])
        XCTAssertEqual(Array(list), [1, 2, 3, 4, 5, 9, 10, 20])
        list.remove(at: 2)          // 3: splits 1...5
        XCTAssertEqual(Array(list), [1, 2, 4, 5, 9, 10, 20])
        list.remove(at: 0)          // 1: first of a run
        XCTAssertEqual(Array(list), [2, 4, 5, 9, 10, 20])
        list.remove(at: 5)          // 20: a run of one
        XCTAssertEqual(Array(list), [2, 4, 5, 9, 10])
        list.remove(at: 2)          // 5: last of a run
        XCTAssertEqual(Array(list), [2, 4, 9, 10])
        XCTAssertEqual(list.position(of: 9), 2)
        XCTAssertNil(list.position(of: 5))
        XCTAssertEqual(list.lowerBound(5), 2)
        XCTAssertEqual(list.lowerBound(10), 3)
        XCTAssertEqual(list.lowerBound(11), 4)
        XCTAssertEqual(list.lowerBound(0), 0)
        XCTAssertEqual(list.last, 10)
        list.append(11)
        XCTAssertEqual(Array(list), [2, 4, 9, 10, 11])
    }

    func testEmptyList() {
        let list = UIDList()
        XCTAssertTrue(list.isEmpty)
        XCTAssertNil(list.last)
        XCTAssertNil(list.position(of: 1))
        XCTAssertEqual(list.lowerBound(1), 0)
        XCTAssertFalse(list.contains(uid: 0))
    }

    func testExtremeUIDs() {
        var list = UIDList(ascending: [1, UInt32.max - 1, UInt32.max])
        XCTAssertEqual(list.position(of: UInt32.max), 2)
        XCTAssertEqual(list[2], UInt32.max)
        list.remove(at: 1)
        XCTAssertEqual(Array(list), [1, UInt32.max])
    }

    /// Random appends and removals, checked against an array after every step.
    func testAgreesWithASortedArray() {
        var rng = SystemRandomNumberGenerator()
        for round in 0..<50 {
            var list = UIDList()
            var plain: [UInt32] = []
            var next: UInt32 = 1
            for _ in 0..<400 {
                if plain.isEmpty || Int.random(in: 0..<3, using: &rng) > 0 {
                    // Mostly consecutive, sometimes a gap (UIDs expunged before this session saw them).
                    next += Bool.random(using: &rng) && round % 2 == 0 ? UInt32.random(in: 1...5, using: &rng) : 1
                    list.append(next)
                    plain.append(next)
                    next += 1
                } else {
                    let at = Int.random(in: 0..<plain.count, using: &rng)
                    list.remove(at: at)
                    plain.remove(at: at)
                }
                XCTAssertEqual(list.count, plain.count)
            }
            XCTAssertEqual(Array(list), plain, "round \(round)")
            for (i, uid) in plain.enumerated() {
                XCTAssertEqual(list.position(of: uid), i)
                XCTAssertEqual(list[i], uid)
            }
            for probe in 0...(next + 1) {
                XCTAssertEqual(list.contains(uid: probe), plain.contains(probe))
                XCTAssertEqual(list.lowerBound(probe), plain.firstIndex { $0 >= probe } ?? plain.count, "lowerBound(\(probe))")
            }
        }
    }
}
