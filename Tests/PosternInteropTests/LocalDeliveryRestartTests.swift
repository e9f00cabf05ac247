import Foundation
import PosternTestSupport
import PosternHost
import XCTest

/// Mail for local users across crashes and reloads (issue 12): a worker that has just started must
/// not deliver before its store and transports are active, or it routes local mail as remote and
/// bounces or defers it. Every test counts, for each message the client saw `250` for: delivered
/// exactly once, bounced (failure reports) and lost, from the store and the log.
final class LocalDeliveryRestartTests: XCTestCase {
    /// Sends `count` messages from `sender@example.org` to u0..u4 over `concurrency` sessions. Each
    /// transmission has its own Message-ID `<PREFIXN.ATTEMPT@restart.test>`; a cut session is retried
    /// with the next attempt number, so what got `250` is known exactly. A 5xx stops that message
    /// and is reported (a valid local recipient must never be refused).
    static let client = """
        import json, smtplib, sys, threading, time
        port, count, concurrency, prefix = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        users = ["u%d@example.org" % i for i in range(5)]
        acked, refused = {}, []
        cut = [0]
        lock = threading.Lock()
        next_i = [0]
        def take():
            with lock:
                if next_i[0] >= count: return None
                next_i[0] += 1
                return next_i[0] - 1
        def code_of(e):
            if isinstance(e, smtplib.SMTPRecipientsRefused):
                return min(c for c, _ in e.recipients.values())
            return getattr(e, "smtp_code", 0)
        def worker():
            s = None
            i, attempt = take(), 0
            while i is not None:
                tid = "%s%d.%d" % (prefix, i, attempt)
                to = users[i % len(users)]
                try:
                    if s is None:
                        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
                        s.ehlo("load.example")
                    msg = "From: sender@example.org\\r\\nTo: %s\\r\\nMessage-ID: <%s@restart.test>\\r\\nSubject: %s\\r\\n\\r\\n%s" % (to, tid, tid, "All work and no play.\\r\\n" * 20)
                    s.sendmail("sender@example.org", [to], msg)
                    with lock: acked[tid] = to
                    i, attempt = take(), 0
                except (smtplib.SMTPException, OSError) as e:
                    if 500 <= code_of(e) < 600:
                        with lock: refused.append("%s: %s" % (tid, e))
                        i, attempt = take(), 0
                    else:
                        with lock: cut[0] += 1
                        attempt += 1
                        time.sleep(0.05)
                    try:
                        if s is not None: s.close()
                    except Exception: pass
                    s = None
            if s is not None:
                try: s.quit()
                except Exception: pass
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        print(json.dumps({"acked": acked, "cut": cut[0], "refused": refused}))
        """

    static let users = (0..<5).map { "u\($0)@example.org" }

    /// The all-in-one plugins that matter here: the store, the queue, SMTP in, and the remote
    /// transports with DNS (a misrouted local recipient would go there). Retries are slow, so a
    /// deferral shows as mail that does not arrive.
    static func config(port: Int, dnsPort: Int, workers: Int, scanInterval: String) -> String {
        """
        data_dir = "./var"
        workers = \(workers)
        [plugin.store-sqlite]
        password_iterations = 4096
        [plugin.queue]
        hostname = "mx.restart.test"
        min_backoff = "1h"
        max_backoff = "1h"
        scan_interval = "\(scanInterval)"
        [plugin.dns]
        nameservers = ["127.0.0.1:\(dnsPort)"]
        timeout = "1s"
        attempts = 1
        [plugin.smtp-client]
        [plugin.smtp]
        hostname = "mx.restart.test"
        [[listener]]
        name = "mx"
        address = "127.0.0.1"
        port = \(port)
        protocol = "smtp"
        """
    }

    func admin(_ server: ServerProcess, _ args: [String]) -> (status: Int32, output: String) {
        Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: server.dir.path)
    }

    func makeAccounts(_ server: ServerProcess) {
        XCTAssertEqual(admin(server, ["domain", "add", "example.org"]).status, 0)
        for u in Self.users + ["sender@example.org"] {
            XCTAssertEqual(admin(server, ["user", "add", u, "--password", "pw"]).status, 0)
        }
    }

    func send(port: Int, count: Int, concurrency: Int, prefix: String = "", dir: TempDir) throws -> (acked: [String: String], cut: Int, refused: [String]) {
        let script = dir.write("restart_load.py", Self.client)
        let (code, output) = Build.run(try Build.tool("python3"), [script, "\(port)", "\(count)", "\(concurrency)", prefix])
        XCTAssertEqual(code, 0, output)
        guard let line = output.split(separator: "\n").last,
              let result = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
              let acked = result["acked"] as? [String: String] else { throw SystemError.message("client output: \(output)") }
        return (acked, result["cut"] as? Int ?? 0, result["refused"] as? [String] ?? [])
    }

    struct Outcome {
        var delivered = 0, duplicated = 0, lost = 0, unacknowledgedDelivered = 0, failureReports = 0, queued = 0
        var nonLocalAttempts: [String] = []
    }

    /// Waits (up to `timeout`) until every acknowledged transmission is in its mailbox and the
    /// queue is empty, then counts.
    func settle(_ server: ServerProcess, acked: [String: String], timeout: Double = 90) -> Outcome {
        var outcome = Outcome()
        let deadline = Date().addingTimeInterval(timeout)
        repeat {
            var copies: [String: Int] = [:]
            for u in Self.users {
                for row in admin(server, ["message", "list", u]).output.split(separator: "\n") {
                    guard let id = row.split(separator: "\t").last, id.hasPrefix("<"), id.hasSuffix("@restart.test>") else { continue }
                    copies[String(id.dropFirst().dropLast("@restart.test>".count)), default: 0] += 1
                }
            }
            outcome = Outcome()
            for tid in acked.keys {
                switch copies[tid, default: 0] {
                case 0: outcome.lost += 1
                case 1: outcome.delivered += 1
                default: outcome.delivered += 1; outcome.duplicated += 1
                }
            }
            outcome.unacknowledgedDelivered = copies.keys.filter { acked[$0] == nil }.count
            outcome.duplicated += copies.filter { acked[$0.key] == nil && $0.value > 1 }.count
            // Failure reports go to the sender, a local account.
            outcome.failureReports = admin(server, ["message", "list", "sender@example.org"]).output
                .split(separator: "\n").filter { !$0.isEmpty }.count
            let queue = Build.run(Build.postern, ["queue", "list", "-c", server.configFile], cwd: server.dir.path).output
            outcome.queued = Int(queue.split(separator: "\n").last?.split(separator: " ").first ?? "") ?? -1
            if outcome.lost == 0 && outcome.queued == 0 { break }
            usleep(500_000)
        } while Date() < deadline
        // Every attempt for a local user must have gone through the local transport.
        outcome.nonLocalAttempts = server.log.split(separator: "\n")
            .filter { $0.contains(" delivery ") && $0.contains("@example.org") && !$0.contains("transport=local") }
            .map(String.init)
        outcome.failureReports += server.log.components(separatedBy: "delivery report queued").count - 1
        return outcome
    }

    func assertNothingLost(_ o: Outcome, acked: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(o.delivered, acked, "every 250 is in its mailbox", file: file, line: line)
        XCTAssertEqual(o.lost, 0, "lost", file: file, line: line)
        XCTAssertEqual(o.duplicated, 0, "delivered twice", file: file, line: line)
        XCTAssertEqual(o.failureReports, 0, "no failure report for a valid local user", file: file, line: line)
        XCTAssertEqual(o.queued, 0, "the queue drained", file: file, line: line)
        XCTAssertEqual(o.nonLocalAttempts, [], "local mail went through the local transport only", file: file, line: line)
    }

    /// SIGKILL of workers about once a second, and twice of the whole server (master and workers,
    /// started again at once), while four clients send 2,000 messages (or more, until both server kills
    /// happened) to local users.
    func testCrashesOfWorkersAndServerLoseNoLocalMail() throws {
        let dir = TempDir("restart-kill")
        let port = freePort()
        let config = Self.config(port: port, dnsPort: freePort(), workers: 2, scanInterval: "200ms")
        let lock = NSLock()
        var server = try ServerProcess.start(dir, config)
        defer { lock.withLock { server }.stop() }
        makeAccounts(server)

        var stop = false, workerKills = 0, serverKills = 0
        var restartFailure: String?
        let killer = DispatchGroup()
        let started = Date()
        DispatchQueue.global().async(group: killer) {
            while !lock.withLock({ stop }) {
                usleep(useconds_t(Int.random(in: 600_000...1_000_000)))
                if lock.withLock({ stop }) { break }
                let current = lock.withLock { server }
                let elapsed = Date().timeIntervalSince(started)
                if (serverKills == 0 && elapsed > 4) || (serverKills == 1 && elapsed > 10) {
                    current.killEverything()
                    do {
                        let next = try ServerProcess.start(dir, config)
                        lock.withLock { server = next; serverKills += 1 }
                    } catch {
                        lock.withLock { restartFailure = "\(error)"; stop = true }
                    }
                    continue
                }
                guard let status = try? current.status(), let worker = status.workers.filter({ $0.state == "ready" }).randomElement() else { continue }
                if kill(worker.pid, SIGKILL) == 0 { lock.withLock { workerKills += 1 } }
            }
        }
        // Batches until both whole-server kills happened and 2,000 messages went: how long 2,000
        // take depends on the machine, and the second kill comes 10 s in.
        var acked: [String: String] = [:], cut = 0, refused: [String] = []
        var batch = 0
        while acked.count < 2000 || (lock.withLock { serverKills } < 2 && batch < 40) {
            let sent = try send(port: port, count: 250, concurrency: 4, prefix: "b\(batch)-", dir: dir)
            acked.merge(sent.acked) { a, _ in a }
            cut += sent.cut
            refused += sent.refused
            batch += 1
        }
        lock.withLock { stop = true }
        killer.wait()
        let seconds = Date().timeIntervalSince(started)
        XCTAssertNil(restartFailure)
        XCTAssertEqual(refused, [], "no valid local recipient refused")
        XCTAssertEqual(acked.count, batch * 250, "the client retries until every message is acknowledged")
        XCTAssertEqual(serverKills, 2, "the whole server was killed and started again twice")
        XCTAssertGreaterThanOrEqual(workerKills, 5, "workers were killed during the run")

        let outcome = settle(lock.withLock { server }, acked: acked)
        assertNothingLost(outcome, acked: acked.count)
        let check = admin(lock.withLock { server }, ["check"])
        XCTAssertEqual(check.status, 0, check.output)
        print("FIGURES restart-kill: \(acked.count) messages, 4 clients, \(workerKills) worker SIGKILLs and \(serverKills) whole-server SIGKILLs in \(String(format: "%.1f", seconds)) s, \(cut) sessions cut and retried; acknowledged \(acked.count), delivered \(outcome.delivered), bounced \(outcome.failureReports), lost \(outcome.lost), duplicated \(outcome.duplicated), delivered without a 250 seen by the client \(outcome.unacknowledgedDelivered), non-local attempts \(outcome.nonLocalAttempts.count)")
        if !outcome.nonLocalAttempts.isEmpty { print(outcome.nonLocalAttempts.prefix(5).joined(separator: "\n")) }
    }

    /// Deferred local mail that becomes due exactly when a new generation starts: the old
    /// generation's queue managers scan once an hour, the new one's at once, so the first thing
    /// the new workers do is deliver the whole batch. Then reloads every half second during a
    /// stream of new mail.
    func testReloadDeliversDueDeferredLocalMail() throws {
        let dir = TempDir("restart-reload")
        let port = freePort(), dnsPort = freePort()
        let server = try ServerProcess.start(dir, Self.config(port: port, dnsPort: dnsPort, workers: 2, scanInterval: "1h"))
        defer { server.stop() }
        makeAccounts(server)
        // Over quota: every local delivery is deferred (452 4.2.2), to be retried in an hour.
        for u in Self.users { XCTAssertEqual(admin(server, ["quota", "set", u, "--messages", "0"]).status, 0) }
        let batch = try send(port: port, count: 300, concurrency: 4, prefix: "b", dir: dir)
        XCTAssertEqual(batch.acked.count, 300)
        XCTAssertEqual(batch.refused, [])
        var deferred = 0
        let deadline = Date().addingTimeInterval(60)
        repeat {
            let list = Build.run(Build.postern, ["queue", "list", "-c", server.configFile], cwd: server.dir.path).output
            deferred = list.split(separator: "\n").filter { $0.split(separator: "\t").dropFirst().first == "deferred" }.count
            if deferred == 300 { break }
            usleep(200_000)
        } while Date() < deadline
        XCTAssertEqual(deferred, 300, "the batch waits in the deferred queue")

        // Room again, the batch due now, and a generation whose managers scan at once.
        for u in Self.users { XCTAssertEqual(admin(server, ["quota", "set", u]).status, 0) }
        XCTAssertTrue(Build.run(Build.postern, ["queue", "flush", "-c", server.configFile], cwd: dir.path).output.contains("flushed 300"))
        _ = dir.write("postern.toml", Self.config(port: port, dnsPort: dnsPort, workers: 2, scanInterval: "200ms"))
        let reload = try server.reload()
        XCTAssertTrue(reload.ok, "\(reload)")

        // New mail while the server reloads every half second.
        let lock = NSLock()
        var stop = false, reloads = 1, failedReloads: [String] = []
        let reloader = DispatchGroup()
        DispatchQueue.global().async(group: reloader) {
            while !lock.withLock({ stop }) {
                usleep(500_000)
                guard let answer = try? server.reload() else { continue }
                lock.withLock { if answer.ok { reloads += 1 } else { failedReloads.append("\(answer)") } }
            }
        }
        let stream = try send(port: port, count: 600, concurrency: 4, prefix: "s", dir: dir)
        lock.withLock { stop = true }
        reloader.wait()
        XCTAssertEqual(failedReloads, [])
        XCTAssertEqual(stream.refused, [])
        XCTAssertEqual(stream.acked.count, 600)

        let acked = batch.acked.merging(stream.acked) { a, _ in a }
        let outcome = settle(server, acked: acked, timeout: 60)
        assertNothingLost(outcome, acked: acked.count)
        print("FIGURES restart-reload: 300 deferred local messages due at a reload, then 600 more during \(reloads) reloads (\(stream.cut) sessions cut); acknowledged \(acked.count), delivered \(outcome.delivered), bounced \(outcome.failureReports), lost \(outcome.lost), duplicated \(outcome.duplicated), non-local attempts \(outcome.nonLocalAttempts.count)")
        if !outcome.nonLocalAttempts.isEmpty { print(outcome.nonLocalAttempts.prefix(5).joined(separator: "\n")) }
    }
}
