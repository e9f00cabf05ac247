import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The mailbox list: the mailboxes a new account gets, CREATE, DELETE, RENAME, INBOX's rules and
/// subscriptions.
extension StoreConformance {
    /// INBOX, then the special-use mailboxes (RFC 6154) by name, each empty with a UIDVALIDITY of
    /// its own, and all of them subscribed.
    func checkDefaultMailboxes() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        await assertEqual(try await store.mailboxes(user: alice), [
            MailboxInfo(name: "INBOX"),
            MailboxInfo(name: "Archive", attributes: ["\\Archive"]),
            MailboxInfo(name: "Drafts", attributes: ["\\Drafts"]),
            MailboxInfo(name: "Junk", attributes: ["\\Junk"]),
            MailboxInfo(name: "Sent", attributes: ["\\Sent"]),
            MailboxInfo(name: "Trash", attributes: ["\\Trash"]),
        ])
        var validities = Set<UInt32>()
        for name in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
            let s = try await store.status(user: alice, mailbox: name)
            XCTAssertEqual(s, MailboxStatus(messages: 0, unseen: 0, uidValidity: s.uidValidity, uidNext: 1, highestModseq: 1), name)
            XCTAssertGreaterThan(s.uidValidity, 0, name)
            validities.insert(s.uidValidity)
        }
        XCTAssertEqual(validities.count, 6, "each mailbox has its own UIDVALIDITY")
        await assertEqual(try await store.subscriptions(user: alice), ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"])
        await assertEqual(try await store.quota(user: alice), Quota(bytesUsed: 0, bytesLimit: nil, messagesUsed: 0, messagesLimit: nil))
        await assertThrows(StorageError.noSuchUser(nobody)) { try await store.mailboxes(user: nobody) }
        await assertThrows(StorageError.noSuchUser(nobody)) { try await store.status(user: nobody, mailbox: "INBOX") }
    }

    /// CREATE makes missing parents (RFC 3501 §6.3.3) and refuses names that exist or cannot be.
    func checkCreateMailbox() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Projects/2024/Q1")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name),
                          ["INBOX", "Archive", "Drafts", "Junk", "Projects", "Projects/2024", "Projects/2024/Q1", "Sent", "Trash"])
        // Parents made on the way are mailboxes like any other.
        await assertEqual(try await store.status(user: alice, mailbox: "Projects/2024").uidNext, 1)
        try await store.createMailbox(user: alice, name: "Projects/2025")
        await assertEqual(try await store.mailboxes(user: alice).filter { $0.name.hasPrefix("Projects") }.map(\.name),
                          ["Projects", "Projects/2024", "Projects/2024/Q1", "Projects/2025"])
        // Children of INBOX are allowed; INBOX itself is not made again.
        try await store.createMailbox(user: alice, name: "INBOX/Lists")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name).filter { $0.uppercased().hasPrefix("INBOX") }, ["INBOX", "INBOX/Lists"])
        for bad in ["/x", "x/", "a//b", "Other Users/x", "tab\there"] {
            await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.createMailbox(user: alice, name: bad) }
        }
        await assertThrows(StorageError.mailboxExists("Projects")) { try await store.createMailbox(user: alice, name: "Projects") }
        await assertThrows(StorageError.mailboxExists("Projects/2024")) { try await store.createMailbox(user: alice, name: "Projects/2024") }
        await assertThrows(StorageError.mailboxExists("INBOX")) { try await store.createMailbox(user: alice, name: "INBOX") }
        await assertThrows(StorageError.mailboxExists("inbox")) { try await store.createMailbox(user: alice, name: "inbox") }
        await assertThrows(StorageError.noSuchUser(nobody)) { try await store.createMailbox(user: nobody, name: "X") }
        // Names other than INBOX are exact: `projects` is another mailbox.
        try await store.createMailbox(user: alice, name: "projects")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name).filter { $0.lowercased() == "projects" }, ["Projects", "projects"])
    }

    /// RENAME moves the children along and keeps the mailbox (UIDVALIDITY, messages); the freed
    /// name, created again, is a new mailbox with a new UIDVALIDITY (RFC 3501 §2.3.1.1).
    func checkRenameMailbox() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Projects/2024")
        let bytes = message("project")
        _ = try await store.append(user: alice, mailbox: "Projects", message: bytes, flags: ["\\Seen"], internalDate: nil)
        _ = try await store.append(user: alice, mailbox: "Projects/2024", message: message("child"), flags: [], internalDate: nil)
        let projects = try await store.status(user: alice, mailbox: "Projects")
        let child = try await store.status(user: alice, mailbox: "Projects/2024")
        try await store.renameMailbox(user: alice, from: "Projects", to: "Work")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name), ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash", "Work", "Work/2024"])
        await assertEqual(try await store.status(user: alice, mailbox: "Work"), projects)
        await assertEqual(try await store.status(user: alice, mailbox: "Work/2024"), child)
        await assertEqual(try await store.content(user: alice, mailbox: "Work", uid: 1), bytes)
        await assertThrows(StorageError.noSuchMailbox("Projects")) { try await store.status(user: alice, mailbox: "Projects") }
        await assertThrows(StorageError.noSuchMailbox("Projects/2024")) { try await store.status(user: alice, mailbox: "Projects/2024") }

        // Into a new hierarchy: its missing parents are made as CREATE makes them.
        try await store.renameMailbox(user: alice, from: "Work/2024", to: "Old/Years/2024")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name),
                          ["INBOX", "Archive", "Drafts", "Junk", "Old", "Old/Years", "Old/Years/2024", "Sent", "Trash", "Work"])
        await assertEqual(try await store.status(user: alice, mailbox: "Old/Years/2024"), child)

        await assertThrows(StorageError.mailboxExists("Sent")) { try await store.renameMailbox(user: alice, from: "Work", to: "Sent") }
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.renameMailbox(user: alice, from: "Nope", to: "Other") }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.renameMailbox(user: alice, from: "Work", to: "Work/Sub") }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.renameMailbox(user: alice, from: "Work", to: "bad//name") }

        try await store.createMailbox(user: alice, name: "Projects")
        let recreated = try await store.status(user: alice, mailbox: "Projects")
        XCTAssertEqual(recreated.messages, 0)
        XCTAssertEqual(recreated.uidNext, 1)
        XCTAssertNotEqual(recreated.uidValidity, projects.uidValidity)
    }

    /// DELETE refuses a mailbox with children (as Dovecot), then takes its messages with it; the
    /// name created again is a new mailbox.
    func checkDeleteMailbox() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Work/2024")
        _ = try await store.append(user: alice, mailbox: "Work", message: message("work"), flags: [], internalDate: nil)
        let work = try await store.status(user: alice, mailbox: "Work")
        await assertThrows(StorageError.hasChildren("Work")) { try await store.deleteMailbox(user: alice, name: "Work") }
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.deleteMailbox(user: alice, name: "Nope") }
        try await store.deleteMailbox(user: alice, name: "Work/2024")
        try await store.deleteMailbox(user: alice, name: "Work")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name), ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash"])
        await assertEqual(try await store.quota(user: alice).messagesUsed, 0)
        await assertThrows(StorageError.noSuchMailbox("Work")) { try await store.status(user: alice, mailbox: "Work") }
        // Even within the same second, the new mailbox's UIDVALIDITY is not the old one.
        try await store.createMailbox(user: alice, name: "Work")
        let recreated = try await store.status(user: alice, mailbox: "Work")
        XCTAssertEqual(recreated.messages, 0)
        XCTAssertEqual(recreated.uidNext, 1)
        XCTAssertNotEqual(recreated.uidValidity, work.uidValidity)
        // A special-use mailbox may go like any other.
        try await store.deleteMailbox(user: alice, name: "Junk")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name), ["INBOX", "Archive", "Drafts", "Sent", "Trash", "Work"])
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// INBOX: any case names it (RFC 3501 §5.1); it is neither deleted nor renamed here, and no
    /// mailbox is renamed to it.
    func checkInboxRules() async throws {
        let f = try await fixture(users: ["alice"])
        let store = f.store
        _ = try await store.append(user: alice, mailbox: "inbox", message: message("lower"), flags: [], internalDate: nil)
        await assertEqual(try await store.status(user: alice, mailbox: "InBox").messages, 1)
        await assertEqual(try await store.messages(user: alice, mailbox: "INBOX", uids: 1...UInt32.max).map(\.uid), [1])
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.deleteMailbox(user: alice, name: "INBOX") }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.deleteMailbox(user: alice, name: "Inbox") }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.renameMailbox(user: alice, from: "INBOX", to: "Old") }
        try await store.createMailbox(user: alice, name: "Work")
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.renameMailbox(user: alice, from: "Work", to: "inbox") }
        await assertEqual(try await store.mailboxes(user: alice).map(\.name), ["INBOX", "Archive", "Drafts", "Junk", "Sent", "Trash", "Work"])
        await assertEqual(try await store.status(user: alice, mailbox: "INBOX").messages, 1)
    }

    /// Subscriptions are the subscriber's own list of names (RFC 3501 allows names that do not
    /// exist); INBOX in any case is INBOX.
    func checkSubscriptions() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        let store = f.store
        try await store.setSubscribed(user: alice, mailbox: "Not/Yet/There", subscribed: true)
        try await store.setSubscribed(user: alice, mailbox: "Junk", subscribed: false)
        try await store.setSubscribed(user: alice, mailbox: "inbox", subscribed: true)
        try await store.setSubscribed(user: alice, mailbox: "Not/Yet/There", subscribed: true)
        await assertEqual(try await store.subscriptions(user: alice), ["Archive", "Drafts", "INBOX", "Not/Yet/There", "Sent", "Trash"])
        try await store.setSubscribed(user: alice, mailbox: "Never/Subscribed", subscribed: false)
        try await store.setSubscribed(user: bob, mailbox: "Other Users/alice@example.org/INBOX", subscribed: true)
        await assertEqual(try await store.subscriptions(user: bob),
                          ["Archive", "Drafts", "INBOX", "Junk", "Other Users/alice@example.org/INBOX", "Sent", "Trash"])
        await assertEqual(try await store.subscriptions(user: alice), ["Archive", "Drafts", "INBOX", "Not/Yet/There", "Sent", "Trash"])
        await assertThrows(StorageError.noSuchUser(nobody)) { try await store.subscriptions(user: nobody) }
    }
}
