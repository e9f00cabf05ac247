import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest
@testable import PosternWebmailCore

/// The webmail's IMAP client against two servers: Postern's own imap listener and a throw-away
/// Dovecot, since a webmail node may front either. The same scenario runs on both: login, folders
/// and special uses, appends, pages, reading, UTF-8 search, the conversation across folders,
/// flags, moves, expunges, folder management, STATUS, quota, and a refused login.
final class MailAccessTests: XCTestCase {
    static let password = "Access-Secret-1"

    /// Runs the async scenario to its end on the test's own thread, so that stopping the servers
    /// (Foundation's Process waits) happens outside the concurrency pool.
    func runScenario(port: Int, user: String, expectSort: Bool) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = NIOLockedValueBox<Result<Void, any Error>?>(nil)
        Task {
            do { try await self.exercise(port: port, user: user, expectSort: expectSort); outcome.withLockedValue { $0 = .success(()) } }
            catch { outcome.withLockedValue { $0 = .failure(error) } }
            done.signal()
        }
        done.wait()
        try outcome.withLockedValue { $0 }?.get()
    }

    func testAgainstPostern() throws {
        let dir = TempDir("webmail-access")
        let imap = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.imap]
            login_failure_delay = "10ms"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(imap)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            """)
        defer { server.stop() }
        for args in [["domain", "add", "example.org"], ["user", "add", "alice@example.org", "--password", Self.password, "--quota", "100M"]] {
            let (status, output) = Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
            XCTAssertEqual(status, 0, output)
        }
        try runScenario(port: imap, user: "alice@example.org", expectSort: true)
    }

    func testAgainstDovecot() throws {
        let dovecot = try DovecotFixture(users: ["alice"], password: Self.password)
        defer { dovecot.stop() }
        try runScenario(port: dovecot.port, user: "alice", expectSort: true)
        XCTAssertTrue(dovecot.log.contains("Login: user=<alice>"), "the scenario ran against Dovecot")
    }

    func exercise(port: Int, user: String, expectSort: Bool) async throws {
        let endpoint = IMAPEndpoint(host: "127.0.0.1", port: port, security: .none, verifyCertificate: false)
        let group = MultiThreadedEventLoopGroup.singleton
        do {
            _ = try await MailAccess.login(endpoint: endpoint, group: group, user: user, password: "wrong", clientAddress: "192.0.2.1")
            XCTFail("a wrong password logged in")
        } catch IMAPClientError.refused(let status, _, _) {
            XCTAssertEqual(status, .no)
        }
        let mail = try await MailAccess.login(endpoint: endpoint, group: group, user: user, password: Self.password, clientAddress: "192.0.2.1")

        let folders = try await mail.folders()
        XCTAssertEqual(folders.first { $0.name.uppercased() == "INBOX" }?.specialUse, "inbox")
        for use in ["drafts", "sent", "trash", "junk", "archive"] {
            XCTAssertNotNil(folders.first { $0.specialUse == use }, "\(use) in \(folders.map(\.name))")
        }
        let sentFolder = try await mail.specialFolder("sent"), archiveFolder = try await mail.specialFolder("archive")
        let sent = try XCTUnwrap(sentFolder), archive = try XCTUnwrap(archiveFolder)

        func message(_ subject: String, id: String, references: String? = nil, body: String) -> [UInt8] {
            var text = "From: bob@example.org\r\nTo: alice@example.org\r\nSubject: \(subject)\r\nMessage-ID: \(id)\r\n"
            text += "Date: Sat, 05 Dec 2026 10:00:00 +0000\r\n"
            if let references { text += "References: \(references)\r\nIn-Reply-To: \(references)\r\n" }
            text += "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\(body)\r\n"
            return Array(text.utf8)
        }
        try await mail.append(message("First", id: "<a@example.org>", body: "hello"), to: "INBOX", flags: [])
        try await mail.append(message("Re: First", id: "<b@example.org>", references: "<a@example.org>", body: "reply"), to: sent, flags: ["\\Seen"])
        let third = try await mail.append(message("Grüße", id: "<c@example.org>", body: "Käse aus Köln"), to: "INBOX", flags: [])
        XCTAssertNotNil(third, "UIDPLUS gives the new UID")

        let page = try await mail.page(folder: "INBOX", page: 0, pageSize: 1)
        XCTAssertEqual(page.total, 2)
        XCTAssertEqual(page.pageCount, 2)
        XCTAssertEqual(page.messages.map(\.uid), [third!], "newest first")
        let older = try await mail.page(folder: "INBOX", page: 1, pageSize: 1)
        XCTAssertEqual(older.messages.count, 1)
        XCTAssertTrue(String(decoding: older.messages[0].header, as: UTF8.self).contains("Subject: First"))

        let fetched = try await mail.message(folder: "INBOX", uid: third!)
        let read = try XCTUnwrap(fetched)
        let canSort = await mail.canSort
        XCTAssertEqual(canSort, expectSort)
        if canSort {
            // Both servers sort (RFC 5256).
            let bySubject = try await mail.page(folder: "INBOX", page: 0, pageSize: 10, sort: .subject, reverse: false)
            XCTAssertEqual(bySubject.messages.map { MessageView(raw: $0.header + [13, 10]).subject }, ["First", "Grüße"])
            let bySize = try await mail.page(folder: "INBOX", page: 0, pageSize: 1, sort: .size, reverse: true)
            XCTAssertEqual(bySize.messages.map(\.uid), [third!], "the larger message first, one per page")
        }
        XCTAssertEqual(MessageView(raw: read.raw).subject, "Grüße")
        let afterRead = try await mail.page(folder: "INBOX", page: 0, pageSize: 1)
        XCTAssertTrue(afterRead.messages[0].seen, "reading marks it seen")

        let byBody = try await mail.search(MailSearch(text: "Käse", field: .body), folder: "INBOX")
        XCTAssertEqual(byBody, [third!])
        let bySubject = try await mail.search(MailSearch(text: "first", field: .subject), folder: "INBOX")
        XCTAssertEqual(bySubject.count, 1)
        let none = try await mail.search(MailSearch(text: "nothing-like-this", field: .all), folder: "INBOX")
        XCTAssertEqual(none, [])

        let thread = try await mail.conversation(root: "<a@example.org>", folders: ["INBOX", sent])
        XCTAssertEqual(Set(thread.map(\.folder)), ["INBOX", sent], "the reply in Sent joins the thread")

        try await mail.setFlag("\\Flagged", on: true, uids: [third!], folder: "INBOX")
        let flagged = try await mail.page(folder: "INBOX", page: 0, pageSize: 5)
        XCTAssertTrue(flagged.messages.first { $0.uid == third! }?.flagged ?? false)

        try await mail.move(uids: [third!], from: "INBOX", to: archive)
        let inboxAfterMove = try await mail.page(folder: "INBOX", page: 0, pageSize: 5)
        XCTAssertEqual(inboxAfterMove.total, 1)
        let archived = try await mail.page(folder: archive, page: 0, pageSize: 5)
        XCTAssertEqual(archived.total, 1)
        try await mail.expunge(uids: archived.messages.map(\.uid), folder: archive)
        let archiveAfterExpunge = try await mail.page(folder: archive, page: 0, pageSize: 5)
        XCTAssertEqual(archiveAfterExpunge.total, 0)

        let status = try await mail.status("INBOX")
        XCTAssertEqual(status.messages, 1)
        XCTAssertEqual(status.unseen, 1)

        try await mail.createFolder("Projekte Ü")
        let created = try await mail.folders()
        XCTAssertTrue(created.contains { $0.name == "Projekte Ü" && $0.subscribed }, "\(created)")
        try await mail.renameFolder("Projekte Ü", to: "Projekte 2")
        try await mail.setSubscribed("Projekte 2", false)
        let renamed = try await mail.folders().first { $0.name == "Projekte 2" }
        XCTAssertEqual(renamed?.subscribed, false)
        try await mail.deleteFolder("Projekte 2")
        let afterDelete = try await mail.folders()
        XCTAssertFalse(afterDelete.contains { $0.name.hasPrefix("Projekte") })

        let quota = try await mail.quota()
        XCTAssertEqual(quota?.limitKiB, 100 * 1024)
        await mail.logout()

        // The pool: one connection per session, reused, and closed once idle even with no
        // request coming to close it.
        let pool = IMAPConnectionPool(endpoint: endpoint, group: group, logger: Logger(label: "test"), idleClose: 0.3,
                                      reapEvery: .milliseconds(100))
        let pooled = try await pool.access(sessionID: "s1", user: user, password: { Self.password }, clientAddress: "192.0.2.1")
        let again = try await pool.access(sessionID: "s1", user: user, password: { Self.password }, clientAddress: "192.0.2.1")
        XCTAssertTrue(pooled === again)
        let closedNow = await pooled.isClosed
        XCTAssertFalse(closedNow)
        try await Task.sleep(nanoseconds: 1_000_000_000)
        let closedLater = await pooled.isClosed
        XCTAssertTrue(closedLater, "the reaper closed the idle connection")
        pool.closeAll()
    }
}
