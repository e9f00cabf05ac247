import Foundation
import PosternHost
import PosternTestSupport
import XCTest

/// The filter chain through the real binary with scripted milters (Scripts/scripted_milter.py):
/// two milters that wait 300 ms at every step run side by side, not one after the other (shown by
/// the times the milters themselves recorded, not by a stopwatch); a milter that never answers
/// costs one timeout, then the session tempfails or goes on as the listener says; a milter that
/// cannot be reached gets its default action.
final class FilterChainInteropTests: XCTestCase {
    nonisolated(unsafe) static var peers: [PeerProcess] = []
    nonisolated(unsafe) static var server: MilterServer?
    nonisolated(unsafe) static var setupError: (any Error)?
    static let work = TempDir("milter-chain")
    static var stepLog: String { work.path + "/steps.jsonl" }

    override class func setUp() {
        super.setUp()
        do {
            let script = Build.packageRoot + "/Tests/MilterInteropTests/Scripts/scripted_milter.py"
            let python = try Build.tool("python3")
            let slowA = freePort(), slowB = freePort(), silent = freePort(), nowhere = freePort(), edit = freePort()
            let killA = freePort(), killB = freePort()
            let unix = work.path + "/unix-milter.sock"
            peers = [
                try PeerProcess("edit", python, [script, "\(edit)", "edit", stepLog, "edit"], dir: work.path, port: edit),
                try PeerProcess("unix", python, [script, unix, "unix", stepLog, "slow", "0"], dir: work.path, unixSocket: unix),
                try PeerProcess("slow-a", python, [script, "\(slowA)", "slow-a", stepLog, "slow", "300"], dir: work.path, port: slowA),
                try PeerProcess("slow-b", python, [script, "\(slowB)", "slow-b", stepLog, "slow", "300"], dir: work.path, port: slowB),
                try PeerProcess("kill-a", python, [script, "\(killA)", "kill-a", stepLog, "slow", "300"], dir: work.path, port: killA),
                try PeerProcess("kill-b", python, [script, "\(killB)", "kill-b", stepLog, "slow", "300"], dir: work.path, port: killB),
                try PeerProcess("silent", python, [script, "\(silent)", "silent", stepLog, "silent"], dir: work.path, port: silent),
            ]
            // The milters' own timeout is long: the listener's filter_timeout is what runs out.
            func milter(_ port: Int) -> String { "address = \"inet:127.0.0.1:\(port)\"\ntimeout = \"60s\"" }
            server = try MilterServer("milter-chain", milters: [
                "slow-a": milter(slowA), "slow-b": milter(slowB), "kill-a": milter(killA), "kill-b": milter(killB),
                "silent-tempfail": milter(silent), "silent-accept": milter(silent), "edit": milter(edit),
                "unix": "address = \"unix:\(unix)\"",
                "nowhere-tempfail": "address = \"inet:127.0.0.1:\(nowhere)\"\nconnect_timeout = \"2s\"",
                "nowhere-accept": "address = \"inet:127.0.0.1:\(nowhere)\"\nconnect_timeout = \"2s\"\ndefault_action = \"accept\"",
            ], listeners: [
                ("mx", "filters = [\"slow-a\", \"slow-b\"]"),
                ("kill", "filters = [\"kill-a\", \"kill-b\"]"),
                ("tempfail", "filters = [\"silent-tempfail\"]\nfilter_timeout = \"1s\""),
                ("accept", "filters = [\"silent-accept\"]\nfilter_timeout = \"1s\"\nfilter_timeout_action = \"accept\""),
                ("unreachable", "filters = [\"nowhere-tempfail\"]"),
                ("unreachable-accept", "filters = [\"nowhere-accept\"]"),
                ("edit", "filters = [\"edit\"]"),
                ("unix", "filters = [\"unix\"]"),
            ])
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        server?.stop()
        peers.forEach { $0.stop() }
        // A static TempDir is never deinitialised: its files go here.
        try? FileManager.default.removeItem(atPath: work.path)
        super.tearDown()
    }

    func running() throws -> MilterServer {
        if let e = Self.setupError { throw e }
        return try XCTUnwrap(Self.server)
    }

    struct Step: Decodable { var milter: String; var step: String; var start: Double; var end: Double }

    func steps() throws -> [Step] {
        let text = try String(contentsOfFile: Self.stepLog, encoding: .utf8)
        return try text.split(separator: "\n").map { try JSONDecoder().decode(Step.self, from: Data($0.utf8)) }
    }

    let message = "From: sender@remote.example\nTo: rcpt@remote.example\nSubject: slow\n\nHello.\n"

    func testTwoSlowMiltersRunSideBySideAtEveryStage() throws {
        let s = try running()
        let before = try queuedCount(s)
        let output = try s.send("mx", message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let all = try steps().filter { $0.milter.hasPrefix("slow-") }
        // One stage of the chain is one or more milter steps; the header stage is DATA, each
        // field and EOH, which a milter answers one after the other.
        let stages: [(String, Set<String>)] = [("connect", ["connect"]), ("helo", ["helo"]), ("mail", ["mail"]), ("rcpt", ["rcpt"]),
                                               ("headers", ["data", "header", "eoh"]), ("body", ["body"]), ("eom", ["eom"])]
        var previousEnd = 0.0
        for (stage, names) in stages {
            let a = all.filter { $0.milter == "slow-a" && names.contains($0.step) }
            let b = all.filter { $0.milter == "slow-b" && names.contains($0.step) }
            guard let aStart = a.map(\.start).min(), let aEnd = a.map(\.end).max(),
                  let bStart = b.map(\.start).min(), let bEnd = b.map(\.end).max() else {
                return XCTFail("\(stage): a milter did not see it: \(all)")
            }
            // Each milter began the stage before the other had finished it: they overlapped.
            XCTAssertLessThan(max(aStart, bStart), min(aEnd, bEnd), "\(stage) ran one milter after the other")
            // And the stages themselves stay in protocol order.
            XCTAssertGreaterThanOrEqual(min(aStart, bStart), previousEnd, "\(stage) began before the stage before it ended")
            previousEnd = max(aEnd, bEnd)
        }
        // Both milters' fields, in the listener's order.
        let queued = try s.queued()
        XCTAssertEqual(queued.count, before + 1)
        let text = String(decoding: queued.last ?? [], as: UTF8.self)
        let a = try XCTUnwrap(text.range(of: "X-Milter-slow-a: seen\r\n"), text)
        let b = try XCTUnwrap(text.range(of: "X-Milter-slow-b: seen\r\n"), text)
        XCTAssertLessThan(a.lowerBound, b.lowerBound)
    }

    func testMilterThatNeverAnswersCostsOneTimeoutThenTheSessionTempfails() throws {
        let s = try running()
        let client = try LineClient(port: s.ports["tempfail"]!, timeout: 30)
        XCTAssertTrue(try MilterServer.reply(client).hasPrefix("220"))
        XCTAssertTrue(try MilterServer.command(client, "EHLO client.test.example").hasPrefix("250 "))
        let refusal = "451 4.7.1 content filter not available, try again later"
        XCTAssertEqual(try MilterServer.command(client, "MAIL FROM:<sender@remote.example>"), refusal)
        // The milter is out of this session now: the next MAIL is refused without asking it.
        XCTAssertEqual(try MilterServer.command(client, "MAIL FROM:<sender@remote.example>"), refusal)
        XCTAssertTrue(try MilterServer.command(client, "QUIT").hasPrefix("221"))
        let metrics = try s.metrics()
        XCTAssertEqual(timeouts(metrics, filter: "silent-tempfail", stage: "mail"), 1, metrics)
        XCTAssertTrue(s.server.log.contains("filter timed out"), s.server.log)
    }

    func testMilterThatNeverAnswersCostsOneTimeoutThenTheSessionGoesOnWhenTheListenerAccepts() throws {
        let s = try running()
        let before = try queuedCount(s)
        let output = try s.send("accept", message: message)
        XCTAssertTrue(output.contains("MAIL 250"), output)
        XCTAssertTrue(output.contains("DATA 250"), output)
        XCTAssertEqual(try queuedCount(s), before + 1, "every 250 is a queued message")
        let metrics = try s.metrics()
        XCTAssertEqual(timeouts(metrics, filter: "silent-accept", stage: "mail"), 1, metrics)
    }

    func testUnreachableMilterGetsItsDefaultAction() throws {
        let s = try running()
        let refused = try LineClient(port: s.ports["unreachable"]!, timeout: 30)
        XCTAssertEqual(try refused.readLine(), "421 4.7.0 mx.test.example Service unavailable - try again later")
        let before = try queuedCount(s)
        let output = try s.send("unreachable-accept", message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        XCTAssertEqual(try queuedCount(s), before + 1)
        XCTAssertTrue(s.server.log.contains("cannot reach the milter"), s.server.log)
        let metrics = try s.metrics()
        XCTAssertTrue(metrics.split(separator: "\n").contains {
            $0.hasPrefix("postern_milter_failures_total{") && $0.contains(#"milter="nowhere-tempfail""#) && $0.hasSuffix(" 1")
        }, metrics)
    }

    /// The worker's `postern_filter_timeouts_total` sample for one filter and stage.
    func timeouts(_ metrics: String, filter: String, stage: String) -> Int? {
        let line = metrics.split(separator: "\n").first {
            $0.hasPrefix("postern_filter_timeouts_total{") && $0.contains("filter=\"\(filter)\"") && $0.contains("stage=\"\(stage)\"")
        }
        return line.flatMap { Int($0.split(separator: " ").last!) }
    }

    func testEveryEndOfMessageActionIsApplied() throws {
        let s = try running()
        let before = try queuedCount(s)
        let output = try s.send("edit", to: ["rcpt@remote.example", "kept@remote.example"],
                                message: "From: sender@remote.example\nSubject: original\nX-Remove-Me: yes\n\nOriginal body.\n")
        XCTAssertTrue(output.contains("DATA 250"), output)
        let entries = try s.queuedEntries()
        XCTAssertEqual(entries.count, before + 1)
        let entry = try XCTUnwrap(entries.first { ($0.summary["holdReason"] as? String) != nil })
        XCTAssertEqual(entry.summary["holdReason"] as? String, "held by the edit milter", "QUARANTINE: in the hold queue")
        // `queue list --reason` finds it by its reason, and only it.
        let (_, byReason) = Build.run(Build.postern, ["queue", "list", "--reason", "EDIT milter", "-c", s.server.configFile], cwd: s.dir.path)
        XCTAssertTrue(byReason.hasSuffix("1 message(s)\n"), byReason)
        XCTAssertTrue(byReason.contains("quarantined=held by the edit milter"), byReason)
        let (_, none) = Build.run(Build.postern, ["queue", "list", "--reason", "virus", "-c", s.server.configFile], cwd: s.dir.path)
        XCTAssertEqual(none, "0 message(s)\n")
        XCTAssertEqual(entry.summary["sender"] as? String, "changed@remote.example", "CHGFROM")
        let recipients = (entry.summary["pending"] as? [[String: Any]])?.compactMap { $0["address"] as? String }
        XCTAssertEqual(recipients, ["kept@remote.example", "added@remote.example", "added-with-args@remote.example"], "DELRCPT, ADDRCPT, ADDRCPT_PAR")
        let text = String(decoding: entry.message, as: UTF8.self)
        // INSHEADER at 0 goes before Postern's Received: field; CHGHEADER changes and deletes;
        // ADDHEADER appends; REPLBODY's two chunks make the new body.
        XCTAssertTrue(text.hasPrefix("X-Inserted: first\r\nReceived: "), text)
        XCTAssertTrue(text.hasSuffix("From: sender@remote.example\r\nSubject: edited subject\r\nX-Added: last\r\n\r\nReplaced body.\r\n"), text)
        XCTAssertFalse(text.contains("X-Remove-Me"), text)
    }

    func testMilterOnAUnixSocket() throws {
        let s = try running()
        let output = try s.send("unix", message: message)
        XCTAssertTrue(output.contains("DATA 250"), output)
        let text = try s.queued().map { String(decoding: $0, as: UTF8.self) }
        XCTAssertTrue(text.contains { $0.contains("X-Milter-unix: seen\r\n") }, "\(text)")
    }

    func queuedCount(_ s: MilterServer) throws -> Int { try s.queued().count }

    /// A worker SIGKILLed while messages are in the filters: each message got no 250, or is in the
    /// queue complete, with both milters' changes; never half-written, never half-modified.
    func testWorkerKilledDuringFilteringLosesNoAcceptedMessage() throws {
        let s = try running()
        let script = s.dir.write("concurrent.py", """
            import json, smtplib, sys, threading, time
            port, n = int(sys.argv[1]), int(sys.argv[2])
            results = {}
            def message(i):
                head = "From: k@remote.example\\r\\nTo: rcpt@remote.example\\r\\nSubject: kill %d\\r\\nMessage-ID: <kill-%d@remote.example>\\r\\n\\r\\n" % (i, i)
                return head + "".join("line %d of message %d\\r\\n" % (j, i) for j in range(3000))
            def one(i):
                time.sleep(0.3 * i)
                try:
                    s = smtplib.SMTP("127.0.0.1", port, timeout=60)
                    s.sendmail("k@remote.example", ["rcpt@remote.example"], message(i))
                    results[i] = "250"
                    s.quit()
                except Exception as e:
                    results.setdefault(i, type(e).__name__)
            threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
            for t in threads: t.start()
            for t in threads: t.join()
            print(json.dumps(results))
            """)
        let python = try Build.tool("python3")
        let clients = Process()
        clients.executableURL = URL(fileURLWithPath: python)
        clients.arguments = [script, "\(s.ports["kill"]!)", "8"]
        let pipe = Pipe()
        clients.standardOutput = pipe
        try clients.run()
        // Every stage waits 300 ms in each milter (the header stage once per field), about four
        // seconds a message; the clients start 300 ms apart. Five seconds in, the first ones
        // are queued and the others in their stages, from connect to end of message.
        usleep(5_000_000)
        let workers = try s.server.status().workers
        XCTAssertFalse(workers.isEmpty)
        for w in workers { kill(w.pid, SIGKILL) }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        clients.waitUntilExit()
        let results = try XCTUnwrap(try JSONSerialization.jsonObject(with: output) as? [String: String], String(decoding: output, as: UTF8.self))
        XCTAssertEqual(results.count, 8)
        XCTAssertTrue(results.values.contains { $0 != "250" }, "the kill came after every message was accepted: \(results)")
        // The master starts a new worker; the queue is read by the CLI meanwhile.
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, (try? s.server.status().workers.contains { $0.state == "running" }) != true { usleep(200_000) }
        let queued = try s.queued().map { String(decoding: $0, as: UTF8.self) }.filter { $0.contains("Subject: kill ") }
        for (key, result) in results where result == "250" {
            XCTAssertEqual(queued.filter { $0.contains("<kill-\(key)@remote.example>") }.count, 1, "message \(key) got a 250 and must be queued once")
        }
        for text in queued {
            let i = try XCTUnwrap(text.range(of: "Subject: kill ").map { text[$0.upperBound...].prefix { $0.isNumber } })
            let body = (0..<3000).map { "line \($0) of message \(i)\r\n" }.joined()
            XCTAssertTrue(text.hasSuffix("\r\n\r\n" + body), "message \(i) is complete")
            XCTAssertTrue(text.contains("X-Milter-kill-a: seen\r\n") && text.contains("X-Milter-kill-b: seen\r\n"), "message \(i) has both milters' changes")
        }
    }
}
