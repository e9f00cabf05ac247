import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest
@testable import PosternIMAPCore

// The session state machine (Plugins/IMAP/Session, compiled in through the symlink
// Tests/IMAPTests/Session) on the real store (the built libPosternStoreSQLite.so, opened through
// the host's AdminContext as `postern admin` opens it), with an in-memory transport instead of a
// socket: commands go in as bytes, responses are read back as text.

/// Where SwiftPM put the plugins: beside this test bundle.
enum BuildDirectory {
    static let path: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = (exe as NSString).deletingLastPathComponent
        if dir.hasSuffix(".xctest") { dir = (dir as NSString).deletingLastPathComponent }
        return dir
    }()
}

/// A store with accounts, opened in this process.
final class SessionStore {
    let dir = TempDir("imap-session")
    let context: AdminContext
    let throttle: LoginThrottle
    let recent: RecentTracker

    /// `plugins`: more plugin sections (`[plugin.sasl-plain]` for AUTHENTICATE PLAIN).
    init(users: [String] = ["alice@example.org", "bob@example.org"], throttle: LoginThrottle = LoginThrottle(failureDelay: 0, maxFailures: 100, window: 60),
         plugins: String = "") throws {
        let source = """
            data_dir = "\(dir.path)/data"
            [plugins]
            path = ["\(BuildDirectory.path)"]
            [plugin.store-sqlite]
            password_iterations = 4096
            \(plugins)

            """
        guard case .success(let config) = HostConfig.parse(source: source, file: dir.path + "/postern.toml") else {
            throw SystemError.message("bad test config")
        }
        context = try AdminContext(config: config)
        self.throttle = throttle
        recent = RecentTracker(directory: dir.path + "/recent")
        let accounts = try context.accounts()
        try runBlocking {
            try await accounts.createDomain("example.org")
            for u in users { _ = try await accounts.createAccount(NewAccount(name: u, password: "secret-\(u.prefix(while: { $0 != "@" }))")) }
        }
    }

    var services: IMAPSessionServices {
        IMAPSessionServices(store: try! context.store(), auth: context.services.auth, notifier: context.services.notifications,
                            throttle: throttle, recent: recent)
    }
}

/// The transport a session writes to, kept in memory.
final class MemoryTransport: IMAPTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var bytes: [UInt8] = []
    private var isClosed = false
    var secure = false
    var input: AsyncStream<IMAPSessionInput>.Continuation?

    func send(_ b: [UInt8]) { lock.withLock { bytes += b } }
    func waitUntilWritable() async {}
    func startTLS(after reply: [UInt8]) async -> Bool {
        send(reply)
        lock.withLock { secure = true }
        input?.yield(.tlsStarted)
        return true
    }
    func startCompression(after reply: [UInt8]) async -> Bool { false }
    var canCompress: Bool { false }
    func close() { lock.withLock { isClosed = true } }
    func consumed(_ count: Int) {}
    private var acknowledged = 0
    func acknowledgeReceipt() { lock.withLock { acknowledged += 1 } }
    var acknowledgements: Int { lock.withLock { acknowledged } }
    var isSecure: Bool { lock.withLock { secure } }
    var canStartTLS: Bool { lock.withLock { !secure } }
    var isLoopback: Bool { true }
    var peerAddress: String { "127.0.0.1" }

    var output: [UInt8] { lock.withLock { bytes } }
    var closed: Bool { lock.withLock { isClosed } }
}

/// One client session on the store, driven line by line.
final class SessionClient {
    let transport = MemoryTransport()
    let session: IMAPSession
    let input: AsyncStream<IMAPSessionInput>.Continuation
    private var read = 0

    init(_ store: SessionStore, settings: IMAPSessionSettings = SessionClient.defaultSettings) {
        let (stream, continuation) = AsyncStream.makeStream(of: IMAPSessionInput.self)
        input = continuation
        transport.input = continuation
        session = IMAPSession(settings: settings, transport: transport, services: store.services,
                              logger: Logger(label: "test"), input: continuation)
        let session = self.session
        Task { await session.run(stream) }
    }

    static var defaultSettings: IMAPSessionSettings {
        var s = IMAPSessionSettings()
        s.allowPlaintextOnLoopback = true
        s.loginFailureDelay = 0
        return s
    }

    deinit { input.yield(.closed) }

    func send(_ text: String) { input.yield(.bytes(Array(text.utf8))) }
    func send(bytes: [UInt8]) { input.yield(.bytes(bytes)) }

    /// Waits until the output holds a line starting with `prefix`; returns the lines since the
    /// last call up to and including that line.
    func until(_ prefix: String, timeout: Double = 10, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let out = transport.output
            let text = String(decoding: out[read...], as: UTF8.self)
            let lines = text.components(separatedBy: "\r\n")
            if let i = lines.dropLast().firstIndex(where: { $0.hasPrefix(prefix) }) {
                let taken = lines[...i]
                read += taken.reduce(0) { $0 + $1.utf8.count + 2 }
                return Array(taken)
            }
            usleep(2_000)
        }
        XCTFail("no line starting with \"\(prefix)\" within \(timeout) s; got: \(String(decoding: transport.output[read...], as: UTF8.self))",
                file: file, line: line)
        return []
    }

    /// Sends a command and returns every line of its answer, the tagged one last.
    @discardableResult
    func command(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        let tag = String(text.prefix { $0 != " " })
        send(text + "\r\n")
        return until(tag + " ", file: file, line: line)
    }

    func greeting() -> String { until("* ").first ?? "" }

    func login(_ user: String = "alice@example.org", _ password: String = "secret-alice") {
        _ = greeting()
        let r = command("l1 LOGIN \(user) \(password)")
        XCTAssertTrue(r.last?.hasPrefix("l1 OK") == true, "\(r)")
    }

    /// Appends a message to `mailbox` and returns its UID (from APPENDUID).
    @discardableResult
    /// `date`: an IMAP date-time for the internal date ("02-Jan-2006 15:04:05 +0000"); now if nil.
    func append(_ message: String, to mailbox: String = "INBOX", flags: String = "", date: String? = nil,
                file: StaticString = #filePath, line: UInt = #line) -> UInt32 {
        let bytes = Array(message.utf8)
        let dated = date.map { "\"\($0)\" " } ?? ""
        let r = command("ap APPEND \(mailbox) \(flags.isEmpty ? "" : "(\(flags)) ")\(dated){\(bytes.count)+}\r\n\(message)", file: file, line: line)
        guard let last = r.last, last.hasPrefix("ap OK [APPENDUID "), let uid = last.split(separator: " ")[4].split(separator: "]").first else {
            XCTFail("APPEND failed: \(r)", file: file, line: line)
            return 0
        }
        return UInt32(uid) ?? 0
    }
}

func message(_ n: Int, subject: String? = nil, from: String = "sender@example.net", body: String = "Hello.\r\n") -> String {
    "From: \(from)\r\nTo: alice@example.org\r\nSubject: \(subject ?? "message \(n)")\r\nMessage-ID: <\(n)@example.net>\r\n"
        + "Date: Mon, 2 Jan 2006 15:04:05 +0000\r\n\r\n" + body
}

final class SessionTests: XCTestCase {
    func testGreetingLoginSelectFetch() throws {
        let store = try SessionStore()
        let c = SessionClient(store)
        let greeting = c.greeting()
        XCTAssertTrue(greeting.hasPrefix("* OK [CAPABILITY IMAP4rev1 "), greeting)
        XCTAssertTrue(greeting.contains("STARTTLS"))
        XCTAssertTrue(greeting.hasSuffix("] Postern ready."))
        XCTAssertFalse(greeting.contains("LOGINDISABLED"), "plaintext allowed on loopback here")
        let login = c.command("a1 LOGIN alice@example.org secret-alice")
        XCTAssertTrue(login.lastLine.hasPrefix("a1 OK [CAPABILITY IMAP4rev1 "))
        XCTAssertTrue(login.lastLine.contains(" CONDSTORE QRESYNC "))
        c.append(message(1), flags: "\\Flagged")
        c.append(message(2, body: "0123456789\r\n"))
        let select = c.command("a2 SELECT INBOX")
        XCTAssertEqual(select, [
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)",
            "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted.",
            "* 2 EXISTS", "* 2 RECENT", "* OK [UNSEEN 1] First unseen.",
            select[5], "* OK [UIDNEXT 3] Predicted next UID", select[7], "a2 OK [READ-WRITE] Select completed."])
        XCTAssertTrue(select[5].hasPrefix("* OK [UIDVALIDITY "))
        XCTAssertTrue(select[7].hasPrefix("* OK [HIGHESTMODSEQ "))
        XCTAssertEqual(c.command("a3 FETCH 1:* (UID FLAGS RFC822.SIZE)"), [
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent) RFC822.SIZE \(message(1).utf8.count))",
            "* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE \(message(2, body: "0123456789\r\n").utf8.count))",
            "a3 OK Fetch completed."])
        // A body fetch without PEEK sets \Seen and says so.
        let body = c.command("a4 FETCH 2 (BODY[TEXT]<2.5>)")
        XCTAssertEqual(body, ["* 2 FETCH (BODY[TEXT]<2> {5}", "23456 FLAGS (\\Seen \\Recent))", "a4 OK Fetch completed."])
        XCTAssertEqual(c.command("a5 FETCH 2 BODY.PEEK[HEADER.FIELDS (Subject)]"),
                       ["* 2 FETCH (BODY[HEADER.FIELDS (Subject)] {22}", "Subject: message 2", "", ")", "a5 OK Fetch completed."])
        // Another session is not the first to see these messages: no \Recent there.
        let other = SessionClient(store)
        other.login()
        XCTAssertTrue(other.command("b1 EXAMINE INBOX").contains("* 0 RECENT"))
        XCTAssertEqual(c.command("a6 LOGOUT"), ["* BYE Logging out", "a6 OK Logout completed."])
        XCTAssertTrue(c.transport.closed)
    }

    /// A literal followed by its CRLF in a separate write (as imaplib sends APPEND) gets an
    /// immediate ACK once the literal is in, so the client's Nagle does not hold the CRLF for a
    /// delayed ACK; no ACK is asked mid-literal or for a command that arrives whole.
    func testAcknowledgesALiteralWhoseLineIsStillOpen() throws {
        let store = try SessionStore()
        let c = SessionClient(store)
        c.login()
        c.send("a1 APPEND INBOX {5}\r\n")
        _ = c.until("+ ")
        c.send("hello")
        let deadline = Date().addingTimeInterval(10)
        while c.transport.acknowledgements == 0 && Date() < deadline { usleep(1_000) }
        XCTAssertEqual(c.transport.acknowledgements, 1)
        c.send("\r\n")
        XCTAssertTrue(c.until("a1 ").last?.hasPrefix("a1 OK [APPENDUID") == true)
        c.send("a2 APPEND INBOX {5}\r\n")
        _ = c.until("+ ")
        c.send("hel")
        c.send("lo\r\n")
        XCTAssertTrue(c.until("a2 ").last?.hasPrefix("a2 OK [APPENDUID") == true)
        c.append(message(3))
        XCTAssertEqual(c.transport.acknowledgements, 1)
    }

    /// Bodies are read ahead in batches: a FETCH over more messages than one batch holds, with
    /// a message expunged by another session in the middle, answers every other one whole.
    func testFetchOfManyBodiesAcrossReadAheadBatches() throws {
        let store = try SessionStore()
        let c = SessionClient(store)
        c.login()
        let count = IMAPSession.fetchBatchMessages + 20
        for n in 1...count { c.append(message(n)) }
        XCTAssertTrue(c.command("s1 SELECT INBOX").last?.hasPrefix("s1 OK") == true)
        let other = SessionClient(store)
        other.login()
        _ = other.command("o1 SELECT INBOX")
        _ = other.command("o2 UID STORE 100 +FLAGS (\\Deleted)")
        _ = other.command("o3 EXPUNGE")
        let lines = c.command("f1 UID FETCH 1:* (RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        XCTAssertEqual(lines.last, "f1 OK Fetch completed.")
        let fetched = lines.filter { $0.contains(" FETCH (") }
        XCTAssertEqual(fetched.count, count - 1)
        for n in [1, 99, 101, IMAPSession.fetchBatchMessages, IMAPSession.fetchBatchMessages + 1, count] {
            let size = message(n).utf8.count
            XCTAssertTrue(fetched.contains { $0.contains("UID \(n) ") && $0.contains("RFC822.SIZE \(size) ") }, "message \(n)")
        }
        XCTAssertFalse(fetched.contains { $0.contains("UID 100 ") })
        XCTAssertEqual(lines.filter { $0.hasPrefix("Message-ID: <") }.count, count - 1)
    }

    func testStateRules() throws {
        let store = try SessionStore()
        let c = SessionClient(store)
        _ = c.greeting()
        XCTAssertEqual(c.command("a1 SELECT INBOX"), ["a1 BAD Log in first."])
        XCTAssertEqual(c.command("a2 FETCH 1 FLAGS"), ["a2 BAD Log in first."])
        XCTAssertEqual(c.command("a3 NOOP"), ["a3 OK NOOP completed."])
        XCTAssertEqual(c.command("l LOGIN alice@example.org secret-alice").count, 1)
        XCTAssertEqual(c.command("a4 LOGIN alice@example.org secret-alice"), ["a4 BAD Already logged in."])
        XCTAssertEqual(c.command("a5 FETCH 1 FLAGS"), ["a5 BAD No mailbox selected."])
        XCTAssertEqual(c.command("a6 EXPUNGE"), ["a6 BAD No mailbox selected."])
        XCTAssertEqual(c.command("a7 SELECT Nowhere"), ["a7 NO [NONEXISTENT] Mailbox doesn't exist: Nowhere"])
        XCTAssertEqual(c.command("a8 STARTTLS"), ["a8 BAD Already logged in."])
        XCTAssertTrue(c.command("a9 FOO").lastLine.hasPrefix("a9 BAD "))
    }

    func testOtherSessionsChangesArriveWhereAllowed() throws {
        let store = try SessionStore()
        let a = SessionClient(store), b = SessionClient(store)
        a.login()
        b.login()
        for n in 1...4 { a.append(message(n)) }
        _ = a.command("a1 SELECT INBOX")
        _ = b.command("b1 SELECT INBOX")
        _ = b.command("b2 STORE 2 +FLAGS.SILENT (\\Deleted)")
        XCTAssertEqual(b.command("b3 EXPUNGE"), ["* 2 EXPUNGE", "b3 OK Expunge completed."])
        _ = b.command("b4 STORE 3 +FLAGS (\\Flagged)")
        b.append(message(5))
        // A FETCH may not carry EXPUNGE (RFC 3501 §7.4.1): the expunged message keeps its number.
        let fetch = a.command("a2 FETCH 4 (UID FLAGS)")
        XCTAssertFalse(fetch.contains { $0.contains("EXPUNGE") }, "\(fetch)")
        XCTAssertTrue(fetch.contains("* 4 FETCH (UID 4 FLAGS (\\Flagged \\Recent))"), "\(fetch)")
        XCTAssertTrue(fetch.contains("* 5 EXISTS"), "new message announced, counting the unannounced expunge: \(fetch)")
        XCTAssertEqual(a.command("a3 FETCH 2 FLAGS"), ["a3 NO [EXPUNGEISSUED] Some messages were expunged by another session."])
        // NOOP brings the expunge.
        XCTAssertEqual(a.command("a4 NOOP"), ["* 2 EXPUNGE", "a4 OK NOOP completed."])
        XCTAssertEqual(a.command("a5 FETCH 1:* UID"), ["* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 4)", "* 4 FETCH (UID 5)",
                                                     "a5 OK Fetch completed."])
    }

    func testUIDCommandsMayCarryExpunges() throws {
        let store = try SessionStore()
        let a = SessionClient(store), b = SessionClient(store)
        a.login()
        b.login()
        for n in 1...3 { a.append(message(n)) }
        _ = a.command("a1 SELECT INBOX")
        _ = b.command("b1 SELECT INBOX")
        _ = b.command("b2 UID STORE 1 +FLAGS.SILENT (\\Deleted)")
        _ = b.command("b3 UID EXPUNGE 1")
        XCTAssertEqual(a.command("a2 UID FETCH 3 FLAGS"), ["* 3 FETCH (UID 3 FLAGS (\\Recent))", "* 1 EXPUNGE", "a2 OK Fetch completed."])
        XCTAssertEqual(a.command("a3 SEARCH ALL"), ["* SEARCH 1 2", "a3 OK Search completed."])
    }

    func testIdleSeesAnotherSessionsChangesAtOnce() throws {
        let store = try SessionStore()
        let a = SessionClient(store), b = SessionClient(store)
        a.login()
        b.login()
        a.append(message(1))
        _ = a.command("a1 SELECT INBOX")
        a.send("a2 IDLE\r\n")
        XCTAssertEqual(a.until("+ "), ["+ idling"])
        let start = Date()
        b.append(message(2))
        XCTAssertEqual(a.until("* 2 EXISTS", timeout: 1), ["* 2 EXISTS"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 1)
        _ = b.command("b1 SELECT INBOX")
        _ = b.command("b2 STORE 1 +FLAGS (\\Answered)")
        XCTAssertEqual(a.until("* 1 FETCH", timeout: 1).last, "* 1 FETCH (FLAGS (\\Answered \\Recent))")
        _ = b.command("b3 STORE 1 +FLAGS (\\Deleted)")
        _ = b.command("b4 EXPUNGE")
        XCTAssertEqual(a.until("* 1 EXPUNGE", timeout: 1).last, "* 1 EXPUNGE")
        a.send("DONE\r\n")
        XCTAssertEqual(a.until("a2 ").last, "a2 OK Idle completed.")
    }

    func testLiteralsContinuationsAndRefusals() throws {
        let store = try SessionStore()
        let c = SessionClient(store)
        _ = c.greeting()
        c.send("a1 LOGIN {17}\r\n")
        XCTAssertEqual(c.until("+ "), ["+ Ready for literal data"])
        c.send("alice@example.org {12}\r\n")
        XCTAssertEqual(c.until("+ "), ["+ Ready for literal data"])
        c.send("secret-alice\r\n")
        XCTAssertTrue(c.until("a1 ").lastLine.hasPrefix("a1 OK"))
        XCTAssertTrue(c.command("a2 FETCH").lastLine.hasPrefix("a2 BAD "))
        XCTAssertTrue(c.command("a3 SELECT \"INBOX").lastLine.hasPrefix("a3 BAD "))
        c.send("a4 LIST \"\" {99999999}\r\n")
        XCTAssertEqual(c.until("a4 "), ["a4 BAD Literal too large (over 1048576 bytes)"])
        XCTAssertEqual(c.command("a5 NOOP"), ["a5 OK NOOP completed."], "the refused literal's bytes never came: the next line is a command")
    }

    func testLoginFailuresAreDelayedAndThrottled() throws {
        let store = try SessionStore(throttle: LoginThrottle(failureDelay: 0, maxFailures: 3, window: 60))
        var settings = SessionClient.defaultSettings
        settings.loginFailureDelay = 0.4
        settings.maxLoginFailuresPerSession = 10
        let c = SessionClient(store, settings: settings)
        _ = c.greeting()
        for i in 1...3 {
            let start = Date()
            XCTAssertEqual(c.command("f\(i) LOGIN alice@example.org wrong"), ["f\(i) NO [AUTHENTICATIONFAILED] Authentication failed."])
            XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 0.4)
        }
        XCTAssertEqual(c.command("f4 LOGIN alice@example.org secret-alice"),
                       ["f4 NO [UNAVAILABLE] Too many failed logins from your address; try again later."])
        XCTAssertTrue(c.transport.closed)
        // Another session from the same address is refused as well, even with the right password.
        let d = SessionClient(store, settings: settings)
        _ = d.greeting()
        XCTAssertEqual(d.command("g1 LOGIN alice@example.org secret-alice"),
                       ["g1 NO [UNAVAILABLE] Too many failed logins from your address; try again later."])
    }

    func testPlaintextLoginNeedsTLSUnlessLoopbackIsAllowed() throws {
        let store = try SessionStore()
        var settings = SessionClient.defaultSettings
        settings.allowPlaintextOnLoopback = false
        let c = SessionClient(store, settings: settings)
        let greeting = c.greeting()
        XCTAssertTrue(greeting.contains("LOGINDISABLED"), greeting)
        XCTAssertEqual(c.command("a1 LOGIN alice@example.org secret-alice"),
                       ["a1 NO [PRIVACYREQUIRED] Plaintext authentication disallowed on non-secure (SSL/TLS) connections."])
        // STARTTLS: what was pipelined after it is dropped; then LOGIN works.
        c.send("a2 STARTTLS\r\na3 NOOP\r\n")
        XCTAssertEqual(c.until("a2 "), ["a2 OK Begin TLS negotiation now."])
        XCTAssertEqual(c.command("a4 CAPABILITY").first.map { $0.contains("LOGINDISABLED") || $0.contains("STARTTLS") }, false)
        XCTAssertTrue(c.command("a5 LOGIN alice@example.org secret-alice").lastLine.hasPrefix("a5 OK"))
        XCTAssertFalse(String(decoding: c.transport.output, as: UTF8.self).contains("a3 "), "a3 was sent before the handshake")
    }

    func testSearchStoreCopyMove() throws {
        let store = try SessionStore()
        let c = SessionClient(store)
        c.login()
        c.append(message(1, subject: "alpha", from: "ann@example.net"))
        c.append(message(2, subject: "beta", from: "bob@example.net", body: "needle here\r\n"), flags: "\\Seen")
        c.append(message(3, subject: "gamma", from: "ann@example.net"))
        _ = c.command("a1 SELECT INBOX")
        XCTAssertEqual(c.command("a2 SEARCH FROM ann"), ["* SEARCH 1 3", "a2 OK Search completed."])
        XCTAssertEqual(c.command("a3 SEARCH OR BODY needle SUBJECT gamma NOT 1"), ["* SEARCH 2 3", "a3 OK Search completed."])
        XCTAssertEqual(c.command("a4 UID SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN"),
                       ["* ESEARCH (TAG \"a4\") UID MIN 1 MAX 3 ALL 1,3 COUNT 2", "a4 OK Search completed."])
        XCTAssertEqual(c.command("a5 SEARCH CHARSET KOI8-R ALL"), ["a5 NO [BADCHARSET (US-ASCII UTF-8)] Unsupported charset"])
        XCTAssertEqual(c.command("a6 STORE 1:2 +FLAGS (\\Flagged)"),
                       ["* 1 FETCH (FLAGS (\\Flagged \\Recent))", "* 2 FETCH (FLAGS (\\Flagged \\Seen \\Recent))", "a6 OK Store completed."])
        XCTAssertEqual(c.command("a7 STORE 1 -FLAGS.SILENT (\\Flagged)"), ["a7 OK Store completed."])
        let copy = c.command("a8 COPY 2:3 Archive")
        XCTAssertTrue(copy.lastLine.hasPrefix("a8 OK [COPYUID "), "\(copy)")
        XCTAssertTrue(copy.lastLine.hasSuffix(" 2:3 1:2] Copy completed."), "\(copy)")
        XCTAssertEqual(c.command("a9 COPY 1 Nowhere"), ["a9 NO [TRYCREATE] Mailbox doesn't exist: Nowhere"])
        let move = c.command("b1 UID MOVE 1 Archive")
        XCTAssertTrue(move[0].hasPrefix("* OK [COPYUID ") && move[0].hasSuffix(" 1 3] Moved UIDs."), "\(move)")
        XCTAssertEqual(Array(move.dropFirst()), ["* 1 EXPUNGE", "b1 OK Move completed."])
        XCTAssertEqual(c.command("b2 STATUS Archive (MESSAGES UIDNEXT UNSEEN)"),
                       ["* STATUS Archive (MESSAGES 3 UIDNEXT 4 UNSEEN 2)", "b2 OK Status completed."])
    }

    func testCondStoreAndQResync() throws {
        let store = try SessionStore()
        let c = SessionClient(store)
        c.login()
        for n in 1...3 { c.append(message(n)) }
        XCTAssertEqual(c.command("e1 ENABLE QRESYNC"), ["* ENABLED QRESYNC", "e1 OK Enabled."])
        let select = c.command("s1 SELECT INBOX")
        let modseq = UInt64(select.first { $0.hasPrefix("* OK [HIGHESTMODSEQ ") }!.dropFirst(20).prefix { $0.isNumber })!
        let validity = select.first { $0.hasPrefix("* OK [UIDVALIDITY ") }!.dropFirst(18).prefix { $0.isNumber }
        let stored = c.command("s2 STORE 2 (UNCHANGEDSINCE \(modseq)) +FLAGS (\\Seen)")
        XCTAssertEqual(stored.count, 2)
        XCTAssertTrue(stored[0].hasPrefix("* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ ("), "\(stored)")
        XCTAssertEqual(c.command("s3 STORE 2 (UNCHANGEDSINCE \(modseq)) +FLAGS (\\Flagged)"), ["s3 OK [MODIFIED 2] Conditional store failed."])
        _ = c.command("s4 STORE 3 +FLAGS.SILENT (\\Deleted)")
        XCTAssertEqual(c.command("s5 EXPUNGE"), ["* VANISHED 3", "s5 OK Expunge completed."])
        let fetch = c.command("s6 UID FETCH 1:* FLAGS (CHANGEDSINCE \(modseq) VANISHED)")
        XCTAssertEqual(fetch.first, "* VANISHED (EARLIER) 3")
        XCTAssertTrue(fetch[1].hasPrefix("* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent) MODSEQ ("), "\(fetch)")
        XCTAssertEqual(fetch.count, 3)
        // A fresh session resynchronises: UID 3 vanished, UID 2 changed.
        let d = SessionClient(store)
        d.login()
        _ = d.command("e ENABLE QRESYNC")
        let resync = d.command("q1 SELECT INBOX (QRESYNC (\(validity) \(modseq) 1:3))")
        XCTAssertTrue(resync.contains("* VANISHED (EARLIER) 3"), "\(resync)")
        XCTAssertTrue(resync.contains { $0.hasPrefix("* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (") }, "\(resync)")
        XCTAssertFalse(resync.contains { $0.hasPrefix("* 1 FETCH") })
        XCTAssertEqual(d.command("q2 SELECT Sent").first, "* OK [CLOSED] Previous mailbox closed.")
    }

    func testInactivityAndDrainEndTheSession() throws {
        let store = try SessionStore()
        var settings = SessionClient.defaultSettings
        settings.loginTimeout = 0.2
        settings.idleTimeout = 60
        let c = SessionClient(store, settings: settings)
        _ = c.greeting()
        c.input.yield(.tick)
        XCTAssertEqual(c.command("a1 NOOP"), ["a1 OK NOOP completed."], "not idle long enough yet")
        usleep(300_000)
        c.input.yield(.tick)
        XCTAssertEqual(c.until("* BYE"), ["* BYE Disconnected for inactivity."])
        XCTAssertTrue(c.transport.closed)
        // Logged in, the longer timeout applies; a drain says goodbye between commands.
        let d = SessionClient(store, settings: settings)
        d.login()
        usleep(300_000)
        d.input.yield(.tick)
        XCTAssertEqual(d.command("b1 NOOP"), ["b1 OK NOOP completed."])
        d.input.yield(.drain)
        XCTAssertEqual(d.until("* BYE"), ["* BYE Server shutting down."])
        XCTAssertTrue(d.transport.closed)
    }

    func testQuotaAndAppendRefusals() throws {
        let store = try SessionStore()
        try runBlocking { [context = store.context] in
            try await context.accounts().setQuota(account: "alice@example.org", bytes: 2048, messages: nil)
        }
        let c = SessionClient(store)
        c.login()
        XCTAssertEqual(c.command("q1 GETQUOTAROOT INBOX"),
                       ["* QUOTAROOT INBOX \"User quota\"", "* QUOTA \"User quota\" (STORAGE 0 2)", "q1 OK Getquotaroot completed."])
        let big = String(repeating: "x", count: 3000)
        XCTAssertEqual(c.command("q2 APPEND INBOX {\(big.utf8.count)+}\r\n\(big)"), ["q2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"])
        XCTAssertEqual(c.command("q3 APPEND Nowhere {5+}\r\nhello"), ["q3 NO [TRYCREATE] Mailbox doesn't exist: Nowhere"])
        XCTAssertEqual(c.command("q4 APPEND INBOX {0+}\r\n"), ["q4 NO Can't save a zero byte message."])
        // MULTIAPPEND is all or nothing: the first message is taken back when the second fails.
        XCTAssertEqual(c.command("q5 APPEND INBOX {5+}\r\nhello {\(big.utf8.count)+}\r\n\(big)"),
                       ["q5 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)"])
        XCTAssertEqual(c.command("q6 STATUS INBOX (MESSAGES)"), ["* STATUS INBOX (MESSAGES 0)", "q6 OK Status completed."])
        XCTAssertEqual(c.command("q7 SETQUOTA \"User quota\" (STORAGE 10)").lastLine.prefix(6), "q7 NO ")
    }

    func testCommandsPerSecondAreSlowedNotRefused() throws {
        let store = try SessionStore()
        var settings = SessionClient.defaultSettings
        settings.maxCommandsPerSecond = 5
        let c = SessionClient(store, settings: settings)
        _ = c.greeting()
        let start = Date()
        c.send((1...11).map { "n\($0) NOOP\r\n" }.joined())
        XCTAssertEqual(c.until("n11 ").count, 11)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(start), 1.9, "11 commands at 5 per second take two seconds")
    }

    func testListAndSharing() throws {
        let store = try SessionStore()
        let alice = SessionClient(store)
        alice.login()
        _ = alice.command("a1 CREATE Projects/2024/")
        _ = alice.command("a2 SETACL Projects/2024 bob@example.org lr")
        let list = alice.command("a3 LIST \"\" *")
        XCTAssertEqual(list.first, "* LIST (\\HasNoChildren) \"/\" INBOX")
        XCTAssertTrue(list.contains("* LIST (\\HasChildren) \"/\" Projects"))
        XCTAssertTrue(list.contains("* LIST (\\HasNoChildren \\Sent) \"/\" Sent"))
        XCTAssertEqual(alice.command("a4 LIST \"\" %/%"), ["* LIST (\\HasNoChildren) \"/\" Projects/2024", "a4 OK List completed."])
        XCTAssertEqual(alice.command("a5 LIST \"\" \"\""), ["* LIST (\\Noselect) \"/\" \"\"", "a5 OK List completed."])
        let bob = SessionClient(store)
        bob.login("bob@example.org", "secret-bob")
        XCTAssertEqual(bob.command("b1 LIST \"Other Users/\" *"), [
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users/alice@example.org\"",
            "* LIST (\\Noselect \\HasChildren) \"/\" \"Other Users/alice@example.org/Projects\"",
            "* LIST (\\HasNoChildren) \"/\" \"Other Users/alice@example.org/Projects/2024\"",
            "b1 OK List completed."])
        XCTAssertEqual(bob.command("b2 MYRIGHTS \"Other Users/alice@example.org/Projects/2024\""),
                       ["* MYRIGHTS \"Other Users/alice@example.org/Projects/2024\" lr", "b2 OK Myrights completed."])
        XCTAssertEqual(bob.command("b3 NAMESPACE"), ["* NAMESPACE ((\"\" \"/\")) ((\"Other Users/\" \"/\")) NIL", "b3 OK Namespace completed."])
        XCTAssertEqual(bob.command("b4 SELECT \"Other Users/alice@example.org/Projects/2024\"").last, "b4 OK [READ-ONLY] Select completed.")
    }
}

extension Array where Element == String {
    /// The last line, or "" (so a missing answer fails an assertion instead of crashing the run).
    var lastLine: String { last ?? "" }
}
