import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// One descriptor per connection: the master raises its soft limit on open files to the hard
/// limit, and its workers inherit it (issue 18: 10,000 idle IMAP sessions on one node).
final class DescriptorLimitTests: XCTestCase {
    func testWorkersRunWithTheHardDescriptorLimit() throws {
        var original = rlimit()
        XCTAssertEqual(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &original), 0)
        guard original.rlim_max >= 256 else {
            return XCTFail("this test needs a hard limit on open files of 256 or more (ulimit -Hn is \(original.rlim_max))")
        }
        // The server is started with a soft limit below the hard one (1,024, the usual soft limit
        // of a login shell, or half the hard limit where that is lower).
        var lowered = original
        lowered.rlim_cur = min(1024, original.rlim_max / 2)
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &lowered), 0)
        let dir = TempDir("descriptor-limit")
        let port = freePort()
        let started = Result {
            try ServerProcess.start(dir, """
                data_dir = "./var"
                workers = 1
                [plugin.store-sqlite]
                [plugin.pop3]
                [[listener]]
                name = "pop3"
                address = "127.0.0.1"
                port = \(port)
                protocol = "pop3"
                """)
        }
        XCTAssertEqual(setrlimit(Int32(RLIMIT_NOFILE.rawValue), &original), 0)
        let server = try started.get()
        defer { server.stop() }
        let worker = try XCTUnwrap(try server.status().workers.first)
        let limits = try String(contentsOfFile: "/proc/\(worker.pid)/limits", encoding: .utf8)
        let line = try XCTUnwrap(limits.split(separator: "\n").first { $0.hasPrefix("Max open files") })
        let soft = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst(3).first.map(String.init)
        XCTAssertEqual(soft, String(original.rlim_max), String(line))
    }
}
