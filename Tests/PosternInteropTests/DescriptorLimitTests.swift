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
        // of a login shell, or half the hard limit where that is lower), but above what this test
        // process already holds open: the whole suite runs in one process, and a soft limit under
        // its open descriptors would make every open here fail with EMFILE.
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var lowered = original
        lowered.rlim_cur = max(min(1024, original.rlim_max / 2), rlim_t(open + 128))
        guard lowered.rlim_cur < original.rlim_max else {
            return XCTFail("this process holds \(open) descriptors, too close to the hard limit \(original.rlim_max) to lower the soft one")
        }
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
