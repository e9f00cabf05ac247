import Foundation
import XCTest

/// The rules the suite keeps about itself: `make unit` and `make interop` together run every test
/// target, and a skipped test fails the run unless Tests/optional-tests.txt lists it.
final class TestSuiteRulesTests: XCTestCase {
    static let root: String = {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { dir.deleteLastPathComponent() }
        return dir.path
    }()

    func read(_ path: String) throws -> String { try String(contentsOfFile: Self.root + "/" + path, encoding: .utf8) }

    func testEveryTestTargetIsInExactlyOneMakeTarget() throws {
        let package = try read("Package.swift")
        let makefile = try read("Makefile")
        // `.testTarget(name: "X"` possibly with the name on the next line.
        let targets = Set(package.components(separatedBy: ".testTarget(").dropFirst().compactMap { chunk -> String? in
            guard let r = chunk.range(of: "name: \"") else { return nil }
            return String(chunk[r.upperBound...].prefix { $0 != "\"" })
        })
        XCTAssertGreaterThan(targets.count, 10)
        func list(_ variable: String) -> [String] {
            let line = makefile.split(separator: "\n").first { $0.hasPrefix(variable + " :=") } ?? ""
            return line.split(separator: " ").dropFirst(2).map(String.init)
        }
        let unit = list("UNIT_TARGETS"), interop = list("INTEROP_TARGETS")
        XCTAssertEqual(Set(unit).intersection(interop), [], "a target in both lists runs twice")
        XCTAssertEqual(targets.subtracting(unit + interop).sorted(), [], "test targets neither make unit nor make interop runs")
        XCTAssertEqual(Set(unit + interop).subtracting(targets).sorted(), [], "listed targets Package.swift does not have")
    }

    func runChecker(log: String, optional: String) throws -> (status: Int32, output: String) {
        let dir = NSTemporaryDirectory() + "skips-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try log.write(toFile: dir + "/test.log", atomically: true, encoding: .utf8)
        try optional.write(toFile: dir + "/optional.txt", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        process.arguments = [Self.root + "/scripts/check-skips.py", dir + "/test.log", dir + "/optional.txt"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    static let log = """
        Test Case 'AlphaTests.testOne' started at 2026-12-06 02:00:00.000
        Test Case 'AlphaTests.testOne' passed (0.001 seconds)
        Test Case 'BetaTests.testTwo' started at 2026-12-06 02:00:00.000
        /src/Tests/BetaTests.swift:12: BetaTests.testTwo : Test skipped - peer missing
        Test Case 'BetaTests.testTwo' passed (0.000 seconds)
        Test Case 'GammaTests.testThree' started at 2026-12-06 02:00:00.000
        Test Case 'GammaTests.testThree' skipped (0.000 seconds)
        """

    func testUnlistedSkipFailsTheRun() throws {
        let (status, output) = try runChecker(log: Self.log, optional: "BetaTests.testTwo always the peer is optional\n")
        XCTAssertEqual(status, 1, output)
        XCTAssertTrue(output.contains("1 passed, 0 failed, 2 skipped (1 on the optional list"), output)
        XCTAssertTrue(output.contains("skipped, NOT optional: GammaTests.testThree"), output)
    }

    func testListedSkipsPassAndAreCounted() throws {
        let (status, output) = try runChecker(log: Self.log, optional: """
            # comment
            BetaTests.testTwo   always  the peer is optional
            GammaTests          always  the whole class is optional
            """)
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("2 skipped (2 on the optional list"), output)
    }

    func testOutputWithoutTestsFails() throws {
        let (status, output) = try runChecker(log: "error: no tests found\n", optional: "")
        XCTAssertEqual(status, 1, output)
    }

    func testOptionalListInTheTreeIsWellFormed() throws {
        let (status, output) = try runChecker(log: "Test Case 'A.b' passed (0.1 seconds)\n", optional: try read("Tests/optional-tests.txt"))
        XCTAssertEqual(status, 0, output)
    }
}
