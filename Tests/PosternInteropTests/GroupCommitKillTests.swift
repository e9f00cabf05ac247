import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// The queue's group commit (issue 18): concurrent sessions share one round of fsyncs and get their
/// 250s together after it. The worst moment for a crash is between the two: the messages are on
/// disk and nobody was told. A test-build switch (a file in the queue directory) kills the worker
/// right there, once; afterwards every message exists exactly once or was never acknowledged.
/// The store's group commit of LMTP deliveries has the same switch and the same test.
final class GroupCommitKillTests: XCTestCase {
    /// One session per message, all at once; no retries: prints which got 250 and which were cut.
    static let client = """
        import json, smtplib, sys, threading
        port, prefix, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        acked, cut = [], []
        lock = threading.Lock()
        start = threading.Barrier(count)
        def send(i):
            tid = "%s%d" % (prefix, i)
            to = "u%d@example.org" % (i % 3)
            try:
                s = smtplib.SMTP("127.0.0.1", port, timeout=30)
                s.ehlo("load.example")
                start.wait()
                s.sendmail("sender@example.org", [to], "From: sender@example.org\\r\\nTo: %s\\r\\nSubject: %s\\r\\n\\r\\nbody\\r\\n" % (to, tid))
                with lock: acked.append(tid)
                s.quit()
            except Exception as e:
                with lock: cut.append(tid)
        threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(json.dumps({"acked": acked, "cut": cut}))
        """

    /// The same for LMTP into the store: concurrent sessions, each one message; no retries.
    static let lmtpClient = """
        import json, smtplib, sys, threading
        port, prefix, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        acked, cut = [], []
        lock = threading.Lock()
        start = threading.Barrier(count)
        def send(i):
            tid = "%s%d" % (prefix, i)
            to = "u%d@example.org" % (i % 3)
            try:
                s = smtplib.LMTP("127.0.0.1", port)
                s.sock.settimeout(30)
                s.ehlo("load.example")
                start.wait()
                s.sendmail("sender@example.org", [to], "From: sender@example.org\\r\\nTo: %s\\r\\nSubject: %s\\r\\n\\r\\nbody\\r\\n" % (to, tid))
                with lock: acked.append(tid)
                s.quit()
            except Exception as e:
                with lock: cut.append(tid)
        threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(json.dumps({"acked": acked, "cut": cut}))
        """

    /// The store's group commit of deliveries (WriteBatch): killed between the index commit and
    /// the LMTP replies. Every acknowledged message is in its mailbox once; the killed group's
    /// messages were committed, so they are there once too, though nobody was told.
    func testStoreKilledBetweenGroupCommitAndLMTPRepliesLosesAndDuplicatesNothing() throws {
        let dir = TempDir("store-group-commit-kill")
        let port = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(port)
            protocol = "lmtp"
            """)
        defer { server.stop() }
        let users = (0..<3).map { "u\($0)@example.org" }
        func admin(_ args: [String]) -> (Int32, String) { Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path) }
        XCTAssertEqual(admin(["domain", "add", "example.org"]).0, 0)
        for u in users { XCTAssertEqual(admin(["user", "add", u, "--password", "pw"]).0, 0) }
        let script = dir.write("lmtp_load.py", Self.lmtpClient)
        func send(_ prefix: String, _ count: Int) throws -> (acked: [String], cut: [String]) {
            let (code, output) = Build.run(try Build.tool("python3"), [script, "\(port)", prefix, "\(count)"])
            XCTAssertEqual(code, 0, output)
            guard let line = output.split(separator: "\n").last,
                  let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [String]] else {
                XCTFail(output)
                return ([], [])
            }
            return (result["acked"] ?? [], result["cut"] ?? [])
        }

        let fault = dir.path + "/var/store/fault-after-group-commit"
        XCTAssertTrue(FileManager.default.createFile(atPath: fault, contents: Data()))
        let first = try send("killed", 12)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fault), "the switch fired")
        XCTAssertFalse(first.cut.isEmpty, "the sessions of the killed group were cut without a reply")
        var second: (acked: [String], cut: [String]) = ([], [])
        let deadline = Date().addingTimeInterval(30)
        repeat {
            second = try send("after", 6)
        } while second.acked.count < 6 && Date() < deadline
        XCTAssertEqual(second.acked.count, 6)

        var copies: [String: Int] = [:]
        for u in users {
            for id in admin(["message", "list", u]).1.split(separator: "\n").compactMap({ $0.split(separator: "\t").first }) {
                let text = admin(["message", "get", u, String(id)]).1
                if let subject = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("Subject: ") }) {
                    copies[subject.dropFirst(9).trimmingCharacters(in: .whitespacesAndNewlines), default: 0] += 1
                }
            }
        }
        for tid in first.acked + second.acked { XCTAssertEqual(copies[tid], 1, "\(tid) was acknowledged: delivered exactly once") }
        for tid in first.cut { XCTAssertLessThanOrEqual(copies[tid] ?? 0, 1, "\(tid) was cut: delivered at most once") }
        let committedUnacknowledged = first.cut.filter { copies[$0] == 1 }.count
        XCTAssertGreaterThan(committedUnacknowledged, 0, "the killed group was committed before the kill")
        let check = admin(["check"])
        XCTAssertEqual(check.0, 0, check.1)
        print("FIGURES store-group-commit-kill: 12 concurrent LMTP sessions, worker killed after its group's commit: \(first.acked.count) acknowledged before, \(first.cut.count) cut, \(committedUnacknowledged) of those stored once (committed, never acknowledged), 0 duplicated")
    }

    func testKillBetweenGroupFsyncAndRepliesLosesAndDuplicatesNothing() throws {
        let dir = TempDir("group-commit-kill")
        let port = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.queue]
            scan_interval = "200ms"
            [plugin.smtp]
            hostname = "mx.test.example"
            [[listener]]
            name = "mx"
            address = "127.0.0.1"
            port = \(port)
            protocol = "smtp"
            """)
        defer { server.stop() }
        let users = (0..<3).map { "u\($0)@example.org" }
        func admin(_ args: [String]) -> (Int32, String) { Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path) }
        XCTAssertEqual(admin(["domain", "add", "example.org"]).0, 0)
        for u in users { XCTAssertEqual(admin(["user", "add", u, "--password", "pw"]).0, 0) }
        let script = dir.write("group_load.py", Self.client)
        func send(_ prefix: String, _ count: Int) throws -> (acked: [String], cut: [String]) {
            let (code, output) = Build.run(try Build.tool("python3"), [script, "\(port)", prefix, "\(count)"])
            XCTAssertEqual(code, 0, output)
            guard let line = output.split(separator: "\n").last,
                  let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [String]] else {
                XCTFail(output)
                return ([], [])
            }
            return (result["acked"] ?? [], result["cut"] ?? [])
        }

        // Armed: the first group to reach the disk kills the worker before its 250s.
        let fault = dir.path + "/var/spool/queue/fault-after-group-commit"
        XCTAssertTrue(FileManager.default.createFile(atPath: fault, contents: Data()))
        let first = try send("killed", 12)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fault), "the switch fired")
        XCTAssertFalse(first.cut.isEmpty, "the sessions of the killed group were cut without a reply")
        // The master starts another worker; the messages sent to it are acknowledged.
        var second: (acked: [String], cut: [String]) = ([], [])
        let deadline = Date().addingTimeInterval(30)
        repeat {
            second = try send("after", 6)
        } while second.acked.count < 6 && Date() < deadline
        XCTAssertEqual(second.acked.count, 6)

        // Delivered: what the mailboxes hold, by subject.
        var copies: [String: Int] = [:]
        let acked = Set(first.acked + second.acked)
        let wait = Date().addingTimeInterval(60)
        repeat {
            copies = [:]
            for u in users {
                for id in admin(["message", "list", u]).1.split(separator: "\n").compactMap({ $0.split(separator: "\t").first }) {
                    let text = admin(["message", "get", u, String(id)]).1
                    if let subject = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("Subject: ") }) {
                        copies[subject.dropFirst(9).trimmingCharacters(in: .whitespacesAndNewlines), default: 0] += 1
                    }
                }
            }
            let queue = Build.run(Build.postern, ["queue", "list", "-c", server.configFile], cwd: dir.path).output
            if acked.allSatisfy({ copies[$0] != nil }) && queue.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("0 message(s)") { break }
            usleep(300_000)
        } while Date() < wait
        for tid in acked { XCTAssertEqual(copies[tid], 1, "\(tid) was acknowledged: delivered exactly once") }
        for tid in first.cut { XCTAssertLessThanOrEqual(copies[tid] ?? 0, 1, "\(tid) was cut: delivered at most once") }
        // The killed group was on disk: its messages are delivered although nobody was told.
        let deliveredUnacknowledged = first.cut.filter { copies[$0] == 1 }.count
        XCTAssertGreaterThan(deliveredUnacknowledged, 0, "the group's messages were fsynced before the kill")
        let check = admin(["check"])
        XCTAssertEqual(check.0, 0, check.1)
        print("FIGURES group-commit-kill: 12 concurrent sessions, worker killed after its group's fsync: \(first.acked.count) acknowledged before, \(first.cut.count) cut, \(deliveredUnacknowledged) of those delivered once (on disk, never acknowledged), 0 duplicated")
    }
}
