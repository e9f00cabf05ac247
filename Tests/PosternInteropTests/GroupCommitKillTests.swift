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
    /// One session per message (SMTP or LMTP), all at once; no retries: prints which got 250 and
    /// which were cut.
    static let client = """
        import json, smtplib, sys, threading
        port, prefix, count, protocol = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
        acked, cut = [], []
        lock = threading.Lock()
        start = threading.Barrier(count)
        def send(i):
            tid = "%s%d" % (prefix, i)
            to = "u%d@example.org" % (i % 3)
            try:
                if protocol == "lmtp":
                    s = smtplib.LMTP("127.0.0.1", port)
                    s.sock.settimeout(30)
                else:
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

    /// A server with three accounts, and the client above pointed at its `port`.
    private struct Rig {
        let dir: TempDir
        let server: ServerProcess
        let port: Int
        let protocolName: String
        let users = (0..<3).map { "u\($0)@example.org" }

        func admin(_ args: [String]) -> (Int32, String) {
            Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
        }

        /// `count` concurrent sessions, one message each, subjects `prefix0`...
        func send(_ prefix: String, _ count: Int) throws -> (acked: [String], cut: [String]) {
            let script = dir.write("group_load.py", GroupCommitKillTests.client)
            let (code, output) = Build.run(try Build.tool("python3"), [script, "\(port)", prefix, "\(count)", protocolName])
            XCTAssertEqual(code, 0, output)
            guard let line = output.split(separator: "\n").last,
                  let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [String]] else {
                XCTFail(output)
                return ([], [])
            }
            return (result["acked"] ?? [], result["cut"] ?? [])
        }

        /// Sends until a whole round is acknowledged (the master has restarted the worker).
        func sendAfterRestart(_ count: Int) throws -> [String] {
            var second: (acked: [String], cut: [String]) = ([], [])
            let deadline = Date().addingTimeInterval(30)
            repeat {
                second = try send("after", count)
            } while second.acked.count < count && Date() < deadline
            XCTAssertEqual(second.acked.count, count)
            return second.acked
        }

        /// How many copies of each subject the mailboxes hold.
        func copiesBySubject() -> [String: Int] {
            var copies: [String: Int] = [:]
            for u in users {
                for id in admin(["message", "list", u]).1.split(separator: "\n").compactMap({ $0.split(separator: "\t").first }) {
                    let text = admin(["message", "get", u, String(id)]).1
                    if let subject = text.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("Subject: ") }) {
                        copies[subject.dropFirst(9).trimmingCharacters(in: .whitespacesAndNewlines), default: 0] += 1
                    }
                }
            }
            return copies
        }
    }

    private func startRig(_ name: String, protocolName: String, config: (Int) -> String) throws -> Rig {
        let dir = TempDir(name)
        let port = freePort()
        let rig = Rig(dir: dir, server: try ServerProcess.start(dir, config(port)), port: port, protocolName: protocolName)
        XCTAssertEqual(rig.admin(["domain", "add", "example.org"]).0, 0)
        for u in rig.users { XCTAssertEqual(rig.admin(["user", "add", u, "--password", "pw"]).0, 0) }
        return rig
    }

    /// Every acknowledged message delivered once, every cut one at most once, and some cut ones
    /// delivered (the group was on disk before the kill). Returns how many of those.
    private func assertOnceEach(_ copies: [String: Int], acked: [String], cut: [String], file: StaticString = #filePath, line: UInt = #line) -> Int {
        for tid in acked { XCTAssertEqual(copies[tid], 1, "\(tid) was acknowledged: delivered exactly once", file: file, line: line) }
        for tid in cut { XCTAssertLessThanOrEqual(copies[tid] ?? 0, 1, "\(tid) was cut: delivered at most once", file: file, line: line) }
        let deliveredUnacknowledged = cut.filter { copies[$0] == 1 }.count
        XCTAssertGreaterThan(deliveredUnacknowledged, 0, "the killed group was durable before the kill", file: file, line: line)
        return deliveredUnacknowledged
    }

    func testKillBetweenGroupFsyncAndRepliesLosesAndDuplicatesNothing() throws {
        let rig = try startRig("group-commit-kill", protocolName: "smtp") { port in """
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
            """ }
        defer { rig.server.stop() }

        // Armed: the first group to reach the disk kills the worker before its 250s.
        let fault = rig.dir.path + "/var/spool/queue/fault-after-group-commit"
        XCTAssertTrue(FileManager.default.createFile(atPath: fault, contents: Data()))
        let first = try rig.send("killed", 12)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fault), "the switch fired")
        XCTAssertFalse(first.cut.isEmpty, "the sessions of the killed group were cut without a reply")
        // The master starts another worker; the messages sent to it are acknowledged.
        let acked = Set(first.acked + (try rig.sendAfterRestart(6)))

        // Delivered: what the mailboxes hold, by subject, once the queue is empty.
        var copies: [String: Int] = [:]
        let wait = Date().addingTimeInterval(60)
        repeat {
            copies = rig.copiesBySubject()
            let queue = Build.run(Build.postern, ["queue", "list", "-c", rig.server.configFile], cwd: rig.dir.path).output
            if acked.allSatisfy({ copies[$0] != nil }) && queue.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("0 message(s)") { break }
            usleep(300_000)
        } while Date() < wait
        let deliveredUnacknowledged = assertOnceEach(copies, acked: Array(acked), cut: first.cut)
        let check = rig.admin(["check"])
        XCTAssertEqual(check.0, 0, check.1)
        print("FIGURES group-commit-kill: 12 concurrent sessions, worker killed after its group's fsync: \(first.acked.count) acknowledged before, \(first.cut.count) cut, \(deliveredUnacknowledged) of those delivered once (on disk, never acknowledged), 0 duplicated")
    }

    /// The store's group commit of deliveries (WriteBatch): killed between the index commit and
    /// the LMTP replies. Every acknowledged message is in its mailbox once; the killed group's
    /// messages were committed, so they are there once too, though nobody was told.
    func testStoreKilledBetweenGroupCommitAndLMTPRepliesLosesAndDuplicatesNothing() throws {
        let rig = try startRig("store-group-commit-kill", protocolName: "lmtp") { port in """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [[listener]]
            name = "lmtp"
            address = "127.0.0.1"
            port = \(port)
            protocol = "lmtp"
            """ }
        defer { rig.server.stop() }

        let fault = rig.dir.path + "/var/store/fault-after-group-commit"
        XCTAssertTrue(FileManager.default.createFile(atPath: fault, contents: Data()))
        let first = try rig.send("killed", 12)
        XCTAssertFalse(FileManager.default.fileExists(atPath: fault), "the switch fired")
        XCTAssertFalse(first.cut.isEmpty, "the sessions of the killed group were cut without a reply")
        let acked = first.acked + (try rig.sendAfterRestart(6))
        let committedUnacknowledged = assertOnceEach(rig.copiesBySubject(), acked: acked, cut: first.cut)
        let check = rig.admin(["check"])
        XCTAssertEqual(check.0, 0, check.1)
        print("FIGURES store-group-commit-kill: 12 concurrent LMTP sessions, worker killed after its group's commit: \(first.acked.count) acknowledged before, \(first.cut.count) cut, \(committedUnacknowledged) of those stored once (committed, never acknowledged), 0 duplicated")
    }
}
