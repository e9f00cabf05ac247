import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

// clamd not there: the real `postern` with the filter pointed at a Unix socket nobody made and at
// a TCP port nobody listens on. By default mail is deferred (451); with `on_error = "accept"` it
// passes, unscanned and without the scan headers.

final class ClamdDownTests: XCTestCase {
    static let rig = PeerRig("clamav-down")
    nonisolated(unsafe) static var accepting: FilterServer?

    override class func setUp() {
        super.setUp()
        do {
            rig.server = try FilterServer("clamav-down-tempfail", plugins: """
                [plugin.filter-clamav]
                clamd = "unix:\(rig.work.path)/no-clamd.sock"
                """, listeners: [("mx", "filters = [\"clamav\"]")])
            accepting = try FilterServer("clamav-down-accept", plugins: """
                [plugin.filter-clamav]
                clamd = "inet:127.0.0.1:\(freePort())"
                on_error = "accept"
                connect_timeout = "2s"
                """, listeners: [("mx", "filters = [\"clamav\"]")])
        } catch {
            rig.setupError = error
        }
    }

    override class func tearDown() {
        accepting?.stop()
        rig.tearDown()
        super.tearDown()
    }

    func testClamdDownTempfailsByDefault() throws {
        let s = try Self.rig.running()
        let output = try s.send("mx", message: Fixtures.plain("down", body: "hello"))
        XCTAssertEqual(dataLine(output), "DATA 451 4.7.1 virus scanner unavailable, try again later", output)
        XCTAssertEqual(try s.queued().count, 0)
        XCTAssertTrue(s.server.log.contains("clamd cannot be reached"), s.server.log)
    }

    func testClamdDownAcceptsWhenConfigured() throws {
        _ = try Self.rig.running()
        let s = try XCTUnwrap(Self.accepting)
        let message = Fixtures.plain("down but accepted", body: "hello")
        let output = try s.send("mx", message: message)
        XCTAssertTrue(dataLine(output).hasPrefix("DATA 250 "), output)
        let queued = String(decoding: try XCTUnwrap(try s.queued().last), as: UTF8.self)
        XCTAssertTrue(queued.hasSuffix(message.replacingOccurrences(of: "\n", with: "\r\n")), queued)
        XCTAssertFalse(queued.contains("X-Virus-"), "unscanned mail is not marked scanned:\n\(queued)")
    }

    func testTheExampleConfigPassesCheckConfig() throws {
        let dir = TempDir("clamav-check")
        // The README's example, as written there.
        let readme = try String(contentsOfFile: Build.packageRoot + "/Plugins/FilterClamAV/README.md", encoding: .utf8)
        let start = try XCTUnwrap(readme.range(of: "```toml\n"))
        let end = try XCTUnwrap(readme.range(of: "```", range: start.upperBound..<readme.endIndex))
        let config = "data_dir = \"./var\"\n[plugin.smtp]\n[plugin.queue]\n[plugin.store-sqlite]\n" + String(readme[start.upperBound..<end.lowerBound]).replacingOccurrences(of: "port = 25\n", with: "port = \(freePort())\naddress = \"127.0.0.1\"\n")
        let file = dir.write("postern.toml", config)
        let (code, output) = Build.run(Build.postern, ["check-config", "-c", file], cwd: dir.path)
        XCTAssertEqual(code, 0, output)
        XCTAssertTrue(output.contains("filter-clamav 1.0.0"), output)
        // A wrong action is refused, naming the key.
        let bad = dir.write("bad.toml", "data_dir = \"./var\"\n[plugin.filter-clamav]\ninbound_action = \"bounce\"\n")
        let (badCode, badOutput) = Build.run(Build.postern, ["check-config", "-c", bad], cwd: dir.path)
        XCTAssertNotEqual(badCode, 0, badOutput)
        XCTAssertTrue(badOutput.contains("inbound_action"), badOutput)
    }
}
