import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// The acceptance criterion: a message to many local users is stored once.
final class SingleInstanceTests: XCTestCase {
    func testOneMegabyteToHundredUsersIsStoredOnce() async throws {
        let f = try StoreFixture("single-instance")
        let users = (1...100).map { String(format: "user%03d", $0) }
        try await f.populate(users: users)
        let store = f.store
        let recipients = users.map { "\($0)@example.org" }

        var text = "From: sender@example.net\r\nTo: all@example.org\r\nSubject: one megabyte\r\n\r\n"
        let line = String(repeating: "0123456789abcdef", count: 4) + "\r\n"   // 66 bytes
        while text.utf8.count + line.utf8.count <= 1 << 20 { text += line }
        text += String(repeating: "z", count: (1 << 20) - text.utf8.count)
        let bytes = Array(text.utf8)
        XCTAssertEqual(bytes.count, 1 << 20)

        let before = bytesUnder(f.blobRoot)
        let outcomes = try await store.deliver(messagePath: f.messageFile(bytes), to: recipients, mailbox: nil)
        XCTAssertEqual(outcomes.map(\.status), Array(repeating: .delivered, count: 100))
        XCTAssertEqual(outcomes.map(\.reply.code), Array(repeating: 250, count: 100))
        let grown = bytesUnder(f.blobRoot) - before
        print("FIGURES single-instance: 1 MiB to 100 users grew the blob directory by \(grown) bytes")
        XCTAssertGreaterThanOrEqual(grown, 1 << 20)
        XCTAssertLessThan(grown, 1_100_000)
        let blobFile = f.blobRoot + "/" + String(digest(bytes).prefix(2)) + "/" + String(digest(bytes).dropFirst(2).prefix(2)) + "/" + digest(bytes)
        XCTAssertEqual(filesUnder(f.blobRoot), [String(blobFile.dropFirst(f.blobRoot.count + 1))])
        XCTAssertEqual(try f.index.blobRefs(), [digest(bytes): 100])

        for user in recipients {
            let status = try await store.status(user: user, mailbox: "INBOX")
            XCTAssertEqual(status.messages, 1, user)
            XCTAssertEqual(status.uidNext, 2, user)
            let content = try await store.content(user: user, mailbox: "INBOX", uid: 1)
            XCTAssertTrue(content == bytes, "\(user): content differs")
            await assertEqual(try await store.quota(user: user).bytesUsed, 1 << 20)
        }

        // Gone from 99 mailboxes: the one file stays for the last.
        for user in recipients.dropLast() {
            await assertEqual(try await store.setFlags(user: user, mailbox: "INBOX", uids: [1], flags: ["\\Deleted"], mode: .add).keys.sorted(), [1])
            await assertEqual(try await store.expunge(user: user, mailbox: "INBOX", uids: nil), [1])
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: blobFile))
        XCTAssertEqual(try f.index.blobRefs(), [digest(bytes): 1])
        let last = recipients.last!
        await assertTrue(try await store.content(user: last, mailbox: "INBOX", uid: 1) == bytes)

        _ = try await store.setFlags(user: last, mailbox: "INBOX", uids: [1], flags: ["\\Deleted"], mode: .add)
        await assertEqual(try await store.expunge(user: last, mailbox: "INBOX", uids: [1]), [1])
        XCTAssertFalse(FileManager.default.fileExists(atPath: blobFile))
        XCTAssertEqual(try f.index.blobRefs(), [:])
        XCTAssertEqual(bytesUnder(f.blobRoot), before)

        // Delivered again afterwards: stored again, once.
        let again = try await store.deliver(messagePath: f.messageFile(bytes), to: Array(recipients.prefix(3)), mailbox: nil)
        XCTAssertEqual(again.map(\.reply.code), [250, 250, 250])
        XCTAssertTrue(FileManager.default.fileExists(atPath: blobFile))
        XCTAssertEqual(try f.index.blobRefs(), [digest(bytes): 3])
        await assertTrue(try await store.content(user: recipients[0], mailbox: "INBOX", uid: 2) == bytes)
    }

    /// The same message delivered in two transactions, and appended: still one file.
    func testSeparateDeliveriesShareTheBlob() async throws {
        let f = try StoreFixture("dedup")
        try await f.populate(users: ["alice", "bob"])
        let store = f.store
        let bytes = message("twice", body: String(repeating: "y", count: 10_000))
        _ = try await store.deliver(messagePath: f.messageFile(bytes), to: ["alice@example.org"], mailbox: nil)
        _ = try await store.deliver(messagePath: f.messageFile(bytes), to: ["bob@example.org"], mailbox: nil)
        _ = try await store.append(user: "bob@example.org", mailbox: "Sent", message: bytes, flags: ["\\Seen"], internalDate: nil)
        XCTAssertEqual(filesUnder(f.blobRoot).count, 1)
        XCTAssertEqual(try f.index.blobRefs(), [digest(bytes): 3])
        try await f.accounts.deleteAccount("bob@example.org")
        XCTAssertEqual(try f.index.blobRefs(), [digest(bytes): 1])
        try await f.accounts.deleteAccount("alice@example.org")
        XCTAssertEqual(try f.index.blobRefs(), [:])
        XCTAssertEqual(filesUnder(f.blobRoot), [])
    }
}
