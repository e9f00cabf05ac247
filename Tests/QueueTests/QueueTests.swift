import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest
@testable import PosternQueueCore

/// The queue plugin with the real store, activated as a serving worker activates it (its manager
/// delivers): alias expansion, local delivery with Return-Path, retries, lifetime expiry, RFC 3464
/// reports (never a bounce of a bounce), hop limit, take-over of entries a dead process left, and
/// `postern queue` control.
final class QueueTests: XCTestCase {
    let alice = "alice@example.org", bob = "bob@example.org", postmaster = "postmaster@example.org"

    final class Fixture {
        let dir: TempDir
        let configFile: String
        let context: AdminContext
        var queue: any MailQueue { try! context.queue() }
        var store: any StorageBackend { try! context.store() }
        var accounts: any AccountStore { try! context.accounts() }
        var spool: String { dir.path + "/data/spool/queue" }

        init(_ name: String, backoff: String = "1s", queueSettings: String = "", serving: Bool = true) throws {
            dir = TempDir(name)
            let source = """
                data_dir = "\(dir.path)/data"
                user = "root"   # the store runs inside this (root) test process: tools must keep root too
                [plugin.store-sqlite]
                password_iterations = 4096
                [plugin.queue]
                hostname = "mx.example.org"
                min_backoff = "\(backoff)"
                max_backoff = "\(backoff)"
                scan_interval = "100ms"
                double_bounce_recipient = "postmaster@example.org"
                \(queueSettings)

                """
            configFile = dir.path + "/postern.toml"
            try source.write(toFile: configFile, atomically: true, encoding: .utf8)
            switch HostConfig.parse(source: source, file: configFile) {
            case .success(let config): context = try AdminContext(config: config, serving: serving)
            case .failure(let d): throw SystemError.message("\(d.all)")
            }
        }

        func populate(_ users: [String]) async throws {
            try await accounts.createDomain("example.org")
            for r in try await accounts.createAccounts(users.map { NewAccount(name: "\($0)@example.org", password: "pw-\($0)") }) { _ = try r.get() }
        }

        /// Queues a message (the file is handed over, as the SMTP session does).
        func send(from sender: String, to recipients: [EnvelopeRecipient], _ bytes: [UInt8], ret: String? = nil) async throws -> String {
            let path = dir.write("in-\(UUID().uuidString)", bytes)
            return try await queue.enqueue(envelope: Envelope(sender: sender, recipients: recipients, dsnReturn: ret), messagePath: path)
        }

        /// The INBOX contents of `user` once it has `n` messages (waits up to `seconds`).
        func inbox(_ user: String, count n: Int, within seconds: Double = 10) async throws -> [[UInt8]] {
            let deadline = Date().addingTimeInterval(seconds)
            var messages: [StoredMessage] = []
            while Date() < deadline {
                messages = try await store.messages(user: user, mailbox: "INBOX", uids: 1...UInt32.max)
                if messages.count >= n { break }
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            XCTAssertEqual(messages.count, n, "\(user)'s INBOX")
            var out: [[UInt8]] = []
            for m in messages { out.append(try await store.content(user: user, mailbox: "INBOX", uid: m.uid)) }
            return out
        }

        /// Waits until the queue is empty.
        func drained(within seconds: Double = 10) async throws {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try await queue.list().isEmpty && filesUnder(spool + "/data").isEmpty { return }
                try await Task.sleep(nanoseconds: 50_000_000)
            }
            XCTFail("queue not empty: \(try await queue.list())")
        }
    }

    static func mail(_ subject: String, from: String = "carol@remote.example", extraHeader: String = "") -> [UInt8] {
        Array("\(extraHeader)From: \(from)\r\nTo: someone@example.org\r\nSubject: \(subject)\r\nMessage-ID: <\(UUID().uuidString)@remote.example>\r\n\r\nBody of \(subject).\r\n".utf8)
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    func testLocalDeliveryWithAliasesAndReturnPath() async throws {
        let f = try Fixture("queue-local")
        try await f.populate(["alice", "bob", "postmaster"])
        try await f.accounts.setAlias("team@example.org", targets: [alice, bob, "team-list@example.org"])
        try await f.accounts.setAlias("team-list@example.org", targets: [bob])    // bob twice: delivered once
        try await f.accounts.setAlias("@example.org", targets: [postmaster])       // catch-all
        let m = Self.mail("hello team")
        let id = try await f.send(from: "carol@remote.example", to: [EnvelopeRecipient(address: "team@example.org"), EnvelopeRecipient(address: "alice+news@example.org"),
                                                                     EnvelopeRecipient(address: "whoever@example.org")], m)
        XCTAssertFalse(id.isEmpty)
        let a = try await f.inbox(alice, count: 1)
        let b = try await f.inbox(bob, count: 1)
        let p = try await f.inbox(postmaster, count: 1)
        XCTAssertEqual(a[0], Array("Return-Path: <carol@remote.example>\r\n".utf8) + m)
        XCTAssertEqual(b[0], a[0])
        XCTAssertEqual(p[0], a[0])
        try await f.drained()
        // One blob for the three mailboxes.
        await assertEqual(try await f.store.verifyIntegrity().blobs, 1)
    }

    func testUnknownUserBouncesOnceWithAnRFC3464Report() async throws {
        let f = try Fixture("queue-bounce")
        try await f.populate(["alice"])
        let m = Self.mail("to nobody", from: alice)
        _ = try await f.send(from: alice, to: [EnvelopeRecipient(address: "nobody@example.org", originalRecipient: "rfc822;nobody@example.org"),
                                               EnvelopeRecipient(address: alice)], m)
        let inbox = try await f.inbox(alice, count: 2)
        try await f.drained()
        let report = try XCTUnwrap(inbox.first { Self.text($0).contains("multipart/report") }, "no report among \(inbox.map(Self.text))")
        let text = Self.text(report)
        XCTAssertTrue(text.hasPrefix("Return-Path: <>\r\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\nTo: <alice@example.org>\r\nSubject: Undelivered Mail Returned to Sender\r\n"), text)
        for expected in ["report-type=delivery-status", "Content-Type: message/delivery-status", "Reporting-MTA: dns; mx.example.org",
                         "Final-Recipient: rfc822; nobody@example.org", "Original-Recipient: rfc822;nobody@example.org", "Action: failed",
                         "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1 no such user", "Auto-Submitted: auto-replied",
                         "Content-Type: message/rfc822\r\n\r\n" + Self.text(m)] {
            XCTAssertTrue(text.contains(expected), "missing \(expected) in\n\(text)")
        }
        XCTAssertFalse(text.contains("Final-Recipient: rfc822; alice@example.org"), text)
        // The report is a well-formed MIME message with the three parts of RFC 6522.
        let parsed = MIMEMessage(parsing: report)
        XCTAssertEqual(parsed.root.children.map(\.contentType.mimeType), ["text/plain", "message/delivery-status", "message/rfc822"])
    }

    func testRetriesThenExpiresWithExactlyOneBounceAndADelayWarning() async throws {
        // `smtp` is not loaded here: remote mail defers (4.3.5) until its lifetime ends.
        let f = try Fixture("queue-expire", queueSettings: "lifetime = \"3s\"\ndelay_warning = \"1s\"")
        try await f.populate(["alice"])
        let id = try await f.send(from: alice, to: [EnvelopeRecipient(address: "dave@remote.example")], Self.mail("far away"), ret: "HDRS")
        // Deferred after the first attempt, with its reason.
        var listed: [QueueSummary] = []
        for _ in 0..<100 {
            listed = try await f.queue.list()
            if listed.first?.queue == "deferred" { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertEqual(listed.first?.id, id)
        XCTAssertEqual(listed.first?.queue, "deferred")
        XCTAssertEqual(listed.first?.pending.first?.lastReply, "451 4.3.5 transport 'smtp' is not loaded")
        let inbox = try await f.inbox(alice, count: 2, within: 15)
        try await f.drained()
        let texts = inbox.map(Self.text)
        XCTAssertEqual(texts.filter { $0.contains("Subject: Delayed Mail (still being retried)") }.count, 1, "\(texts)")
        XCTAssertEqual(texts.filter { $0.contains("Subject: Undelivered Mail Returned to Sender") }.count, 1, "\(texts)")
        let bounce = try XCTUnwrap(texts.first { $0.contains("Subject: Undelivered Mail") })
        XCTAssertTrue(bounce.contains("Status: 5.4.7"), bounce)
        XCTAssertTrue(bounce.contains("delivery time expired: last reply 451 4.3.5 transport 'smtp' is not loaded"), bounce)
        // RET=HDRS: the header only.
        XCTAssertTrue(bounce.contains("Content-Type: text/rfc822-headers"), bounce)
        XCTAssertFalse(bounce.contains("Body of far away"), bounce)
        let delay = try XCTUnwrap(texts.first { $0.contains("Subject: Delayed Mail") })
        XCTAssertTrue(delay.contains("Action: delayed") && delay.contains("Will-Retry-Until: "), delay)
        // Nothing more comes.
        try await Task.sleep(nanoseconds: 1_500_000_000)
        await assertEqual(try await f.store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).count, 2)
    }

    func testNoBounceOfABounceAndNotifyNeverAndSuccess() async throws {
        let f = try Fixture("queue-double")
        try await f.populate(["alice", "postmaster"])
        // A bounce (null sender) that fails goes to the postmaster as a double bounce...
        _ = try await f.send(from: "", to: [EnvelopeRecipient(address: "gone@example.org")], Self.mail("a bounce"))
        let pm = try await f.inbox(postmaster, count: 1)
        XCTAssertTrue(Self.text(pm.first ?? []).contains("Final-Recipient: rfc822; gone@example.org"))
        try await f.drained()
        // ... and a failing double bounce goes nowhere.
        try await f.accounts.deleteAccount(postmaster)
        _ = try await f.send(from: "", to: [EnvelopeRecipient(address: "gone@example.org")], Self.mail("another bounce"))
        try await f.drained()
        // NOTIFY=NEVER: no report; NOTIFY=SUCCESS: a "delivered" report.
        _ = try await f.send(from: alice, to: [EnvelopeRecipient(address: "gone@example.org", notify: ["NEVER"])], Self.mail("quiet"))
        try await f.drained()
        await assertEqual(try await f.store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).count, 0)
        _ = try await f.send(from: alice, to: [EnvelopeRecipient(address: alice, notify: ["SUCCESS"])], Self.mail("tell me"))
        let a = try await f.inbox(alice, count: 2)
        try await f.drained()
        let report = try XCTUnwrap(a.map(Self.text).first { $0.contains("Successful Mail Delivery Report") })
        XCTAssertTrue(report.contains("Action: delivered") && report.contains("Status: 2.0.0"), report)
    }

    /// Masquerading: a sender on a host of a masquerade domain is shown as the domain, in the
    /// envelope (Return-Path) and the From: field; other fields are left alone.
    func testMasqueradingRewritesTheSender() async throws {
        let f = try Fixture("queue-masquerade", queueSettings: "masquerade_domains = [\"example.org\"]")
        try await f.populate(["bob"])
        let m = Array("From: Alice <alice@mail.example.org>\r\nTo: bob@example.org\r\nX-Note: alice@mail.example.org\r\nSubject: m\r\n\r\nhi\r\n".utf8)
        _ = try await f.send(from: "alice@mail.example.org", to: [EnvelopeRecipient(address: "bob@example.org")], m)
        let b = try await f.inbox("bob@example.org", count: 1)
        XCTAssertEqual(Self.text(b[0]), "Return-Path: <alice@example.org>\r\nFrom: Alice <alice@example.org>\r\nTo: bob@example.org\r\nX-Note: alice@mail.example.org\r\nSubject: m\r\n\r\nhi\r\n")
        try await f.drained()
    }

    /// With one local delivery at a time (transport concurrency 1), every slot taken is given
    /// back: 20 messages to 4 users all arrive.
    func testTransportConcurrencyLimitStillDeliversEverything() async throws {
        let f = try Fixture("queue-class", queueSettings: "transport_concurrency = { local = 1 }\ndestination_concurrency = 1")
        try await f.populate(["a", "b", "c", "d"])
        for i in 0..<20 {
            _ = try await f.send(from: "x@remote.example", to: [EnvelopeRecipient(address: "\(["a", "b", "c", "d"][i % 4])@example.org")], Self.mail("m\(i)"))
        }
        for u in ["a", "b", "c", "d"] { _ = try await f.inbox("\(u)@example.org", count: 5) }
        try await f.drained()
    }

    func testMailLoopIsRefused() async throws {
        let f = try Fixture("queue-loop")
        try await f.populate(["alice"])
        let hops = String(repeating: "Received: from a by b; Mon, 3 Jun 2024 10:00:00 +0000\r\n", count: 51)
        _ = try await f.send(from: alice, to: [EnvelopeRecipient(address: alice)], Self.mail("loop", extraHeader: hops))
        let a = try await f.inbox(alice, count: 1)
        try await f.drained()
        XCTAssertTrue(Self.text(a[0]).contains("Status: 5.4.6"), Self.text(a[0]))
    }

    /// An entry left in `active/` by a process that died (no lock on its data file) is taken
    /// over; entries are on disk as soon as enqueue returns.
    func testCrashLeftoversAreDeliveredAndNothingIsLostBeforeDelivery() async throws {
        let stopped = try Fixture("queue-takeover", serving: false)
        try await stopped.populate(["alice"])
        let id1 = try await stopped.send(from: "x@remote.example", to: [EnvelopeRecipient(address: alice)], Self.mail("one"))
        let id2 = try await stopped.send(from: "x@remote.example", to: [EnvelopeRecipient(address: alice)], Self.mail("two"))
        XCTAssertEqual(filesUnder(stopped.spool + "/incoming"), [id1, id2].sorted())
        XCTAssertEqual(filesUnder(stopped.spool + "/data"), [id1, id2].sorted())
        // As if a worker had taken it and died mid-delivery.
        XCTAssertEqual(rename(stopped.spool + "/incoming/" + id2, stopped.spool + "/active/" + id2), 0)
        let serving = try StoreFixtureLike.reopen(stopped.configFile)
        let inbox = try await stopped.inbox(alice, count: 2)
        XCTAssertEqual(Set(inbox.map(Self.text).map { $0.contains("Body of one") ? "one" : "two" }), ["one", "two"])
        try await stopped.drained()
        _ = serving
    }

    /// A filter's quarantine puts the message straight into the hold queue, durably, where no
    /// manager delivers it; `postern queue list` says why; release delivers it.
    func testQuarantinedMessageWaitsInHoldUntilReleased() async throws {
        let f = try Fixture("queue-quarantine")
        try await f.populate(["alice"])
        let path = f.dir.write("in-quarantine", Self.mail("suspicious"))
        let id = try await f.queue.enqueue(envelope: Envelope(sender: "carol@remote.example", recipients: [EnvelopeRecipient(address: alice)]),
                                           messagePath: path, holdReason: "attachment-block: .exe")
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the file was taken over")
        XCTAssertEqual(filesUnder(f.spool + "/hold"), [id])
        // Several scan intervals later it is still there, undelivered.
        try await Task.sleep(nanoseconds: 500_000_000)
        await assertEqual(try await f.queue.list().map(\.queue), ["hold"])
        await assertEqual(try await f.queue.list().first?.holdReason, "attachment-block: .exe")
        await assertEqual(try await f.store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).count, 0)
        let r = Build.runSeparately(Build.postern, ["queue", "list", "-c", f.configFile])
        XCTAssertTrue(r.stdout.hasPrefix("\(id)\thold\t") && r.stdout.contains("\tquarantined=attachment-block: .exe\n"), r.stdout)
        await assertEqual(try await f.queue.release(ids: [id]), 1)
        let delivered = try await f.inbox(alice, count: 1)
        XCTAssertTrue(Self.text(delivered[0]).contains("Subject: suspicious\r\n"))
        try await f.drained()
    }

    func testQueueCommands() async throws {
        let f = try Fixture("queue-cli", backoff: "1h")
        try await f.populate(["alice"])
        let id = try await f.send(from: alice, to: [EnvelopeRecipient(address: "dave@remote.example")], Self.mail("held"))
        // Deferred (no smtp transport), next try in an hour.
        for _ in 0..<100 where try await f.queue.list().first?.queue != "deferred" { try await Task.sleep(nanoseconds: 20_000_000) }
        let c = ["-c", f.configFile]
        var r = Build.runSeparately(Build.postern, ["queue", "list"] + c)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasPrefix("\(id)\tdeferred\t"), r.stdout)
        XCTAssertTrue(r.stdout.contains("\tdave@remote.example\t451 4.3.5 transport 'smtp' is not loaded\n1 message(s)\n"), r.stdout)
        r = Build.runSeparately(Build.postern, ["queue", "hold", id] + c)
        XCTAssertEqual(r.stdout, "held 1 message(s)\n", r.stderr)
        r = Build.runSeparately(Build.postern, ["queue", "list", "--json"] + c)
        let listed = try JSONDecoder().decode([QueueSummary].self, from: Data(r.stdout.utf8))
        XCTAssertEqual(listed.map(\.queue), ["hold"])
        XCTAssertNil(listed[0].nextAttempt)
        r = Build.runSeparately(Build.postern, ["queue", "show", id] + c)
        XCTAssertTrue(r.stdout.contains("Subject: held\r\n"), r.stdout)
        r = Build.runSeparately(Build.postern, ["queue", "release", id] + c)
        XCTAssertEqual(r.stdout, "released 1 message(s)\n", r.stderr)
        // Released means due now: tried again at once (and deferred again).
        for _ in 0..<100 where try await f.queue.list().first?.attempts != 2 { try await Task.sleep(nanoseconds: 20_000_000) }
        await assertEqual(try await f.queue.list().first?.attempts, 2)
        // An alias for the remote address, then requeue: routed again, delivered locally.
        try await f.accounts.createDomain("remote.example")
        try await f.accounts.setAlias("dave@remote.example", targets: [alice])
        r = Build.runSeparately(Build.postern, ["queue", "requeue"] + c)
        XCTAssertEqual(r.stdout, "requeued 1 message(s)\n", r.stderr)
        _ = try await f.inbox(alice, count: 1)
        try await f.drained()
        // Delete without a bounce.
        try await f.accounts.setAlias("dave@remote.example", targets: [])
        try await f.accounts.deleteDomain("remote.example")
        let id2 = try await f.send(from: alice, to: [EnvelopeRecipient(address: "dave@remote.example")], Self.mail("dropped"))
        r = Build.runSeparately(Build.postern, ["queue", "delete", id2] + c)
        XCTAssertEqual(r.stdout, "deleted 1 message(s)\n", r.stderr)
        try await f.drained()
        r = Build.runSeparately(Build.postern, ["queue", "show", id2] + c)
        XCTAssertEqual(r.status, 1)
        await assertEqual(try await f.store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).count, 1)
    }
}

/// A second, serving activation of a fixture's config (another process's worth of plugins).
enum StoreFixtureLike {
    static func reopen(_ file: String) throws -> AdminContext {
        switch HostConfig.parse(source: try String(contentsOfFile: file, encoding: .utf8), file: file) {
        case .success(let config): return try AdminContext(config: config, serving: true)
        case .failure(let d): throw SystemError.message("\(d.all)")
        }
    }
}
