import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// The acceptance test of the SMTP issue: SIGKILL of the worker, again and again, while 1,000
/// messages are sent concurrently through the MX listener into the queue and on to the store.
/// Every message that got `250` is delivered after the restarts (0 lost); duplicates (a crash
/// between a delivery and the queue's record of it) are counted and reported.
final class SMTPKillTests: XCTestCase {
    static let client = """
        import json, smtplib, sys, threading, time
        port, count, concurrency = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
        users = ["u%d@example.org" % i for i in range(5)]
        acked, failed = {}, {}
        lock = threading.Lock()
        next_i = [0]
        def take():
            with lock:
                if next_i[0] >= count: return None
                next_i[0] += 1
                return next_i[0] - 1
        def worker():
            s = None
            i = take()
            while i is not None:
                try:
                    if s is None:
                        s = smtplib.SMTP("127.0.0.1", port, timeout=20)
                        s.ehlo("load.example")
                    to = users[i % len(users)]
                    msg = "From: load@remote.example\\r\\nTo: %s\\r\\nMessage-ID: <m%d@test>\\r\\nSubject: %d\\r\\n\\r\\n%s" % (to, i, i, "All work and no play.\\r\\n" * 50)
                    s.sendmail("load@remote.example", [to], msg)
                    with lock: acked[i] = to
                    i = take()
                except (smtplib.SMTPException, OSError) as e:
                    # Not acknowledged: a real client would retry; so does this one, from scratch.
                    with lock: failed[i] = str(e)
                    s = None
                    time.sleep(0.05)
            if s is not None:
                try: s.quit()
                except Exception: pass
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(json.dumps({"acked": {str(k): v for k, v in acked.items()}, "retried": len(failed)}))
        """

    func testKilledWorkerLosesNoAcknowledgedMessage() throws {
        let dir = TempDir("smtp-kill")
        let port = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.queue]
            min_backoff = "1s"
            max_backoff = "2s"
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
        let users = (0..<5).map { "u\($0)@example.org" }
        func admin(_ args: [String]) -> (Int32, String) { Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path) }
        XCTAssertEqual(admin(["domain", "add", "example.org"]).0, 0)
        for u in users { XCTAssertEqual(admin(["user", "add", u, "--password", "pw"]).0, 0) }

        let lock = NSLock()
        var stop = false, kills = 0
        let killer = DispatchGroup()
        DispatchQueue.global().async(group: killer) {
            while kills < 8 {
                usleep(useconds_t(Int.random(in: 300_000...700_000)))
                if lock.withLock({ stop }) { break }
                guard let status = try? server.status(), let worker = status.workers.first(where: { $0.state == "ready" }) else { continue }
                if kill(worker.pid, SIGKILL) == 0 { lock.withLock { kills += 1 } }
            }
        }
        let script = dir.write("smtp_load.py", Self.client)
        let started = Date()
        let (code, output) = Build.run(try Build.tool("python3"), [script, "\(port)", "1000", "20"])
        lock.withLock { stop = true }
        killer.wait()
        let sendSeconds = Date().timeIntervalSince(started)
        XCTAssertEqual(code, 0, output)
        guard let line = output.split(separator: "\n").last,
              let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let acked = result["acked"] as? [String: String] else { return XCTFail(output) }
        XCTAssertEqual(acked.count, 1000, "the client retries until every message is acknowledged")

        // Every acknowledged message must reach its mailbox once the queue has drained.
        var seen: [Int: [(user: String, uid: String)]] = [:]
        let deadline = Date().addingTimeInterval(120)
        repeat {
            seen = [:]
            for u in users {
                for row in admin(["message", "list", u]).1.split(separator: "\n") {
                    let columns = row.split(separator: "\t").map(String.init)
                    if let n = Int((columns.last ?? "").dropFirst(2).dropLast(6)) { seen[n, default: []].append((u, columns[0])) }
                }
            }
            if acked.keys.allSatisfy({ seen[Int($0)!] != nil }) { break }
            usleep(500_000)
        } while Date() < deadline
        let missing = acked.keys.filter { seen[Int($0)!] == nil }.count
        // Two kinds of duplicate: the client sent the message again after a crash cut its
        // session after the queue had it (different Received: ids, inherent to SMTP), or the
        // queue delivered one entry twice (identical bytes: a crash between the store's commit
        // and the queue's record).
        var duplicates = 0, resentByClient = 0, redeliveredByQueue = 0
        for copies in seen.values where copies.count > 1 {
            duplicates += 1
            let bodies = Set(copies.map { admin(["message", "get", $0.user, $0.uid]).1 })
            if bodies.count == copies.count { resentByClient += 1 } else { redeliveredByQueue += 1 }
        }
        XCTAssertEqual(missing, 0, "every 250 is delivered")
        XCTAssertEqual(redeliveredByQueue, 0, "local delivery is idempotent by queue id: a retried entry is not stored twice")
        XCTAssertGreaterThanOrEqual(kills, 3, "the worker was killed during the run")
        let check = admin(["check"])
        XCTAssertEqual(check.0, 0, check.1)
        print("FIGURES smtp-kill: 1000 messages, 20 concurrent clients, \(kills) SIGKILLs in \(String(format: "%.1f", sendSeconds)) s, \(result["retried"] ?? 0) attempts cut and retried by the client, 1000 acknowledged, \(missing) lost, \(duplicates) delivered twice (\(resentByClient) sent twice by the client after a cut session, \(redeliveredByQueue) delivered twice by the queue)")
    }
}
