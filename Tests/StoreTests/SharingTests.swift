import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// RFC 4314 ACLs and shared mailboxes: another account's mailbox appears as
/// `Other Users/OWNER/NAME` once its ACL grants lookup, and every operation checks its right.
final class SharingTests: XCTestCase {
    let alice = "alice@example.org", bob = "bob@example.org", carol = "carol@example.org"
    let projects = "Other Users/alice@example.org/Projects"

    func testGrantsDecideWhatAnotherAccountSeesAndDoes() async throws {
        let f = try StoreFixture("acl")
        try await f.populate(users: ["alice", "bob", "carol"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Projects")
        let first = message("plan")
        _ = try await store.append(user: alice, mailbox: "Projects", message: first, flags: [], internalDate: nil)

        // Nothing shared: not listed, and the name gives no hint that it exists.
        await assertEqual(try await store.mailboxes(user: bob).filter { $0.owner != nil }, [])
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox(projects)) { try await store.status(user: bob, mailbox: projects) }
        await XCTAssertThrowsExactly(StorageError.noSuchMailbox(projects)) { try await store.content(user: bob, mailbox: projects, uid: 1) }

        // Read-only share.
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .replace(ACLRights("lr")!))
        await assertEqual(try await store.mailboxes(user: bob).filter { $0.owner != nil },
                          [MailboxInfo(name: projects, owner: alice)])
        await assertEqual(try await store.myRights(user: bob, mailbox: projects).description, "lr")
        await assertEqual(try await store.myRights(user: alice, mailbox: "Projects").description, "lrswipkxtea")
        await assertEqual(try await store.status(user: bob, mailbox: projects).messages, 1)
        await assertEqual(try await store.content(user: bob, mailbox: projects, uid: 1), first)
        await assertEqual(try await store.search(user: bob, mailbox: projects, query: .header(name: "Subject", value: "PLAN")), [1])
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 'i' right on \(projects)")) {
            try await store.append(user: bob, mailbox: projects, message: message("x"), flags: [], internalDate: nil)
        }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 's' right on \(projects)")) {
            try await store.setFlags(user: bob, mailbox: projects, uids: [1], flags: ["\\Seen"], mode: .add)
        }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 'e' right on \(projects)")) {
            try await store.expunge(user: bob, mailbox: projects, uids: nil)
        }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 'x' right on \(projects)")) {
            try await store.deleteMailbox(user: bob, name: projects)
        }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 'a' right on \(projects)")) {
            try await store.acl(user: bob, mailbox: projects)
        }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 't' right on \(projects)")) {
            try await store.copy(user: bob, from: projects, uids: [1], to: "INBOX", move: true)
        }
        // Copying out needs only read; the copy is bob's.
        await assertEqual(try await store.copy(user: bob, from: projects, uids: [1], to: "INBOX", move: false), [1])
        await assertEqual(try await store.content(user: bob, mailbox: "INBOX", uid: 1), first)

        // More rights: flags, insert, delete and expunge. Insert of flags the grantee may not
        // set drops them (no `w`: `$Label` goes, \Seen stays).
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .add(ACLRights("site")!))
        await assertEqual(try await store.myRights(user: bob, mailbox: projects).description, "lrsite")
        await assertEqual(try await store.setFlags(user: bob, mailbox: projects, uids: [1], flags: ["\\Seen"], mode: .add).keys.sorted(), [1])
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 'w' right on \(projects)")) {
            try await store.setFlags(user: bob, mailbox: projects, uids: [1], flags: ["\\Flagged"], mode: .add)
        }
        let uid = try await store.append(user: bob, mailbox: projects, message: message("from bob"), flags: ["\\Seen", "$Label"], internalDate: nil)
        await assertEqual(try await store.messages(user: alice, mailbox: "Projects", uids: uid...uid).map(\.flags), [["\\Seen"]])
        // What bob appended to alice's mailbox counts against alice's quota.
        let aliceUsage = try await store.quota(user: alice)
        try await f.accounts.setQuota(account: alice, bytes: aliceUsage.bytesUsed, messages: nil)
        await XCTAssertThrowsExactly(StorageError.overQuota("storage limit \(aliceUsage.bytesUsed) bytes")) {
            try await store.append(user: bob, mailbox: projects, message: message("too much"), flags: [], internalDate: nil)
        }
        try await f.accounts.setQuota(account: alice, bytes: nil, messages: nil)
        // Moving out of the shared mailbox: read, delete and expunge there, insert here.
        await assertEqual(try await store.copy(user: bob, from: projects, uids: [uid], to: "Archive", move: true), [1])
        await assertEqual(try await store.messages(user: alice, mailbox: "Projects", uids: 1...UInt32.max).map(\.uid), [1])

        // Create beneath it only with `k`.
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 'k' right on \(projects)")) {
            try await store.createMailbox(user: bob, name: projects + "/Sub")
        }
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .add(ACLRights("k")!))
        try await store.createMailbox(user: bob, name: projects + "/Sub")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name).contains("Projects/Sub"), true)
        await XCTAssertThrowsExactly(StorageError.permissionDenied("only alice@example.org can create top-level mailboxes there")) {
            try await store.createMailbox(user: bob, name: "Other Users/alice@example.org/Top")
        }

        // The ACL as the owner sees it: the owner's implicit rights, then the entries.
        await assertEqual(try await store.acl(user: alice, mailbox: "Projects"),
                          [ACLEntry(identifier: alice, rights: .all), ACLEntry(identifier: bob, rights: ACLRights("lrsikte")!)])
        await XCTAssertThrowsExactly(StorageError.permissionDenied("the owner always holds every right on their mailboxes")) {
            try await store.setACL(user: alice, mailbox: "Projects", identifier: alice, change: .replace(.none))
        }
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no such identifier 'mallory@example.org': use an account of this store or 'anyone'")) {
            try await store.setACL(user: alice, mailbox: "Projects", identifier: "mallory@example.org", change: .replace(ACLRights("lr")!))
        }

        // `anyone`, and a negative entry taking a right away from one account.
        try await store.setACL(user: alice, mailbox: "INBOX", identifier: "anyone", change: .replace(ACLRights("lr")!))
        try await store.setACL(user: alice, mailbox: "INBOX", identifier: "-" + carol, change: .replace(ACLRights("r")!))
        await assertEqual(try await store.myRights(user: carol, mailbox: "Other Users/alice@example.org/INBOX").description, "l")
        await assertEqual(try await store.myRights(user: bob, mailbox: "Other Users/alice@example.org/INBOX").description, "lr")
        await assertEqual(try await store.mailboxes(user: carol).map(\.name).contains("Other Users/alice@example.org/INBOX"), true)
        await XCTAssertThrowsExactly(StorageError.permissionDenied("no 'r' right on Other Users/alice@example.org/INBOX")) {
            try await store.status(user: carol, mailbox: "Other Users/alice@example.org/INBOX")
        }
        try await store.setACL(user: alice, mailbox: "INBOX", identifier: "anyone", change: .delete)
        await assertEqual(try await store.mailboxes(user: carol).map(\.name).contains("Other Users/alice@example.org/INBOX"), false)

        // Removing an account removes its grants: a new account of that name starts with none.
        try await f.accounts.deleteAccount(bob)
        await assertEqual(try await store.acl(user: alice, mailbox: "Projects").map(\.identifier), [alice])
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }

    /// Renaming a shared mailbox keeps its grants; the administer right lets a grantee share on.
    func testRenameKeepsGrantsAndAdministerDelegates() async throws {
        let f = try StoreFixture("acl-rename")
        try await f.populate(users: ["alice", "bob", "carol"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Team")
        try await store.setACL(user: alice, mailbox: "Team", identifier: bob, change: .replace(ACLRights("lra")!))
        try await store.renameMailbox(user: alice, from: "Team", to: "Crew")
        await assertEqual(try await store.mailboxes(user: bob).filter { $0.owner != nil }.map(\.name), ["Other Users/alice@example.org/Crew"])
        try await store.setACL(user: bob, mailbox: "Other Users/alice@example.org/Crew", identifier: carol, change: .replace(ACLRights("lr")!))
        await assertEqual(try await store.myRights(user: carol, mailbox: "Other Users/alice@example.org/Crew").description, "lr")
        // Obsolete RFC 2086 letters are read as their replacements.
        XCTAssertEqual(ACLRights("lrcd")?.description, "lrkxte")
        XCTAssertNil(ACLRights("lrz"))
        XCTAssertNil(ACLRights("lr1"))
    }

    /// `postern admin mailbox share|acl|unshare` as an administrator runs them.
    func testAdminShareCommands() async throws {
        let f = try StoreFixture("acl-cli")
        try await f.populate(users: ["alice", "carol"])
        try await f.store.createMailbox(user: alice, name: "Projects")
        _ = try await f.store.append(user: alice, mailbox: "Projects", message: message("p"), flags: [], internalDate: nil)
        let c = ["-c", f.configFile]
        var r = Build.runSeparately(Build.postern, ["admin", "mailbox", "share"] + c + [alice, "Projects", carol, "--rights", "lr"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, "alice@example.org Projects: carol@example.org has lr\n")
        r = Build.runSeparately(Build.postern, ["admin", "mailbox", "list"] + c + [carol])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("Other Users/alice@example.org/Projects\t\tmessages=1 unseen=1"), r.stdout)
        r = Build.runSeparately(Build.postern, ["admin", "mailbox", "acl"] + c + [alice, "Projects"])
        XCTAssertEqual(r.stdout, "alice@example.org\tlrswipkxtea\ncarol@example.org\tlr\n")
        r = Build.runSeparately(Build.postern, ["admin", "mailbox", "share"] + c + [alice, "Projects", carol, "--rights", "lrq"])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("'lrq' is not a set of rights"), r.stderr)
        r = Build.runSeparately(Build.postern, ["admin", "mailbox", "unshare"] + c + [alice, "Projects", carol])
        XCTAssertEqual(r.status, 0, r.stderr)
        r = Build.runSeparately(Build.postern, ["admin", "mailbox", "list"] + c + [carol])
        XCTAssertFalse(r.stdout.contains("Other Users"), r.stdout)
    }

    func testSubscriptionsAreTheSubscribersOwn() async throws {
        let f = try StoreFixture("subscriptions")
        try await f.populate(users: ["alice", "bob"])
        let store = f.store
        await assertEqual(try await store.subscriptions(user: alice), ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"])
        try await store.setSubscribed(user: alice, mailbox: "Not/Yet/There", subscribed: true)
        try await store.setSubscribed(user: alice, mailbox: "Junk", subscribed: false)
        try await store.setSubscribed(user: alice, mailbox: "inbox", subscribed: true)
        await assertEqual(try await store.subscriptions(user: alice), ["Archive", "Drafts", "INBOX", "Not/Yet/There", "Sent", "Trash"])
        try await store.setSubscribed(user: bob, mailbox: "Other Users/alice@example.org/INBOX", subscribed: true)
        await assertEqual(try await store.subscriptions(user: bob).contains("Other Users/alice@example.org/INBOX"), true)
        await assertEqual(try await store.subscriptions(user: alice).contains("Other Users/alice@example.org/INBOX"), false)
    }
}
