import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// RFC 4314 ACLs and shared mailboxes: another account's mailbox appears as
/// `Other Users/OWNER/NAME` (MailboxNamespace) once its ACL grants lookup, and every operation
/// checks its right.
extension StoreConformance {
    var projects: String { MailboxNamespace.shared(owner: alice, mailbox: "Projects") }

    /// Without lookup (or read) the mailbox does not exist for another account, and no error says
    /// otherwise; a read-only grant lists, reads, searches and copies out, and nothing more.
    func checkReadOnlyShare() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Projects")
        let first = message("plan")
        _ = try await store.append(user: alice, mailbox: "Projects", message: first, flags: [], internalDate: nil)
        await assertEqual(try await store.mailboxes(user: bob).filter { $0.owner != nil }, [])
        await assertThrows(StorageError.noSuchMailbox(projects)) { try await store.status(user: bob, mailbox: projects) }
        await assertThrows(StorageError.noSuchMailbox(projects)) { try await store.content(user: bob, mailbox: projects, uid: 1) }
        await assertThrows(StorageError.noSuchMailbox(projects)) { try await store.myRights(user: bob, mailbox: projects) }
        // A mailbox that does not exist at all looks the same.
        let ghost = MailboxNamespace.shared(owner: alice, mailbox: "Ghost")
        await assertThrows(StorageError.noSuchMailbox(ghost)) { try await store.status(user: bob, mailbox: ghost) }

        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .replace(ACLRights("lr")!))
        await assertEqual(try await store.mailboxes(user: bob).filter { $0.owner != nil }, [MailboxInfo(name: projects, owner: alice)])
        // The owner's own list does not change.
        await assertEqual(try await store.mailboxes(user: alice).filter { $0.owner != nil }, [])
        await assertEqual(try await store.myRights(user: bob, mailbox: projects).description, "lr")
        await assertEqual(try await store.myRights(user: alice, mailbox: "Projects").description, "lrswipkxtea")
        await assertEqual(try await store.status(user: bob, mailbox: projects).messages, 1)
        await assertEqual(try await store.content(user: bob, mailbox: projects, uid: 1), first)
        await assertEqual(try await store.messages(user: bob, mailbox: projects, uids: 1...UInt32.max).map(\.uid), [1])
        await assertEqual(try await store.search(user: bob, mailbox: projects, query: .header(name: "Subject", value: "PLAN")), [1])
        await assertThrows(StorageError.permissionDenied(anyReason)) {
            try await store.append(user: bob, mailbox: projects, message: message("x"), flags: [], internalDate: nil)
        }
        await assertThrows(StorageError.permissionDenied(anyReason)) {
            try await store.setFlags(user: bob, mailbox: projects, uids: [1], flags: ["\\Seen"], mode: .add)
        }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.expunge(user: bob, mailbox: projects, uids: nil) }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.deleteMailbox(user: bob, name: projects) }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.renameMailbox(user: bob, from: projects, to: "Mine") }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.acl(user: bob, mailbox: projects) }
        await assertThrows(StorageError.permissionDenied(anyReason)) {
            try await store.copy(user: bob, from: projects, uids: [1], to: "INBOX", move: true)
        }
        // Copying out needs only read; the copy is bob's.
        await assertEqual(try await store.copy(user: bob, from: projects, uids: [1], to: "INBOX", move: false), [1])
        await assertEqual(try await store.content(user: bob, mailbox: "INBOX", uid: 1), first)
        await assertEqual(try await store.quota(user: bob).messagesUsed, 1)
        await assertEqual(try await store.status(user: alice, mailbox: "Projects").messages, 1)
    }

    /// Each right opens its operation: s/w/t per flag (a flag the grantee may not set is dropped
    /// from an APPEND, RFC 4314 §4), i, e, k; what a grantee adds counts against the owner.
    func checkRightsGateEachOperation() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Projects")
        _ = try await store.append(user: alice, mailbox: "Projects", message: message("plan"), flags: [], internalDate: nil)
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .replace(ACLRights("lr")!))
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .add(ACLRights("site")!))
        await assertEqual(try await store.myRights(user: bob, mailbox: projects).description, "lrsite")
        await assertEqual(try await store.setFlags(user: bob, mailbox: projects, uids: [1], flags: ["\\Seen"], mode: .add).keys.sorted(), [1])
        await assertThrows(StorageError.permissionDenied(anyReason)) {
            try await store.setFlags(user: bob, mailbox: projects, uids: [1], flags: ["\\Flagged"], mode: .add)
        }
        let uid = try await store.append(user: bob, mailbox: projects, message: message("from bob"), flags: ["\\Seen", "$Label"], internalDate: nil)
        XCTAssertEqual(uid, 2)
        await assertEqual(try await store.messages(user: alice, mailbox: "Projects", uids: uid...uid).map(\.flags), [["\\Seen"]])
        await assertEqual(try await store.quota(user: alice).messagesUsed, 2)
        await assertEqual(try await store.quota(user: bob).messagesUsed, 0)
        // Over the owner's quota is over, whoever appends.
        let usage = try await store.quota(user: alice)
        try await f.accounts.setQuota(account: alice, bytes: usage.bytesUsed, messages: nil)
        await assertThrows(StorageError.overQuota(anyReason)) {
            try await store.append(user: bob, mailbox: projects, message: message("too much"), flags: [], internalDate: nil)
        }
        try await f.accounts.setQuota(account: alice, bytes: nil, messages: nil)
        // Moving out: read, \Deleted and expunge there, insert here.
        await assertEqual(try await store.copy(user: bob, from: projects, uids: [uid], to: "Archive", move: true), [1])
        await assertEqual(try await store.messages(user: alice, mailbox: "Projects", uids: 1...UInt32.max).map(\.uid), [1])
        _ = try await store.setFlags(user: bob, mailbox: projects, uids: [1], flags: ["\\Deleted"], mode: .add)
        await assertEqual(try await store.expunge(user: bob, mailbox: projects, uids: nil), [1])

        // Create beneath it only with `k`; never at the top of another's hierarchy.
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.createMailbox(user: bob, name: projects + "/Sub") }
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .add(ACLRights("k")!))
        try await store.createMailbox(user: bob, name: projects + "/Sub")
        await assertEqual(try await store.mailboxes(user: alice).map(\.name).contains("Projects/Sub"), true)
        await assertThrows(StorageError.permissionDenied(anyReason)) {
            try await store.createMailbox(user: bob, name: MailboxNamespace.shared(owner: alice, mailbox: "Top"))
        }
        // Delete with `x`.
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .add(ACLRights("x")!))
        await assertThrows(StorageError.hasChildren(projects)) { try await store.deleteMailbox(user: bob, name: projects) }
        await assertEqual(try await store.myRights(user: bob, mailbox: projects).description, "lrsikxte")
    }

    /// GETACL as the owner sees it: the owner's implicit rights first, then the entries; SETACL's
    /// add, remove, replace and delete; identifiers must be accounts or `anyone`.
    func checkACLEntries() async throws {
        let f = try await fixture(users: ["alice", "bob", "carol"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Projects")
        await assertEqual(try await store.acl(user: alice, mailbox: "Projects"), [ACLEntry(identifier: alice, rights: .all)])
        try await store.setACL(user: alice, mailbox: "Projects", identifier: "Bob@Example.org", change: .replace(ACLRights("lrs")!))
        try await store.setACL(user: alice, mailbox: "Projects", identifier: carol, change: .add(ACLRights("lr")!))
        try await store.setACL(user: alice, mailbox: "Projects", identifier: carol, change: .add(ACLRights("w")!))
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .remove(ACLRights("s")!))
        await assertEqual(try await store.acl(user: alice, mailbox: "Projects"), [
            ACLEntry(identifier: alice, rights: .all),
            ACLEntry(identifier: bob, rights: ACLRights("lr")!),
            ACLEntry(identifier: carol, rights: ACLRights("lrw")!),
        ])
        // Removing every right removes the entry, as DELETEACL does.
        try await store.setACL(user: alice, mailbox: "Projects", identifier: carol, change: .remove(ACLRights("lrw")!))
        try await store.setACL(user: alice, mailbox: "Projects", identifier: "anyone", change: .replace(ACLRights("l")!))
        await assertEqual(try await store.acl(user: alice, mailbox: "Projects").map(\.identifier), [alice, "anyone", bob])
        try await store.setACL(user: alice, mailbox: "Projects", identifier: "anyone", change: .delete)
        await assertEqual(try await store.acl(user: alice, mailbox: "Projects").map(\.identifier), [alice, bob])

        await assertThrows(StorageError.permissionDenied(anyReason)) {
            try await store.setACL(user: alice, mailbox: "Projects", identifier: alice, change: .replace(.none))
        }
        await assertThrows(StorageError.permissionDenied(anyReason)) {
            try await store.setACL(user: alice, mailbox: "Projects", identifier: "mallory@example.org", change: .replace(ACLRights("lr")!))
        }
        await assertThrows(StorageError.noSuchMailbox("Nope")) { try await store.acl(user: alice, mailbox: "Nope") }
        // The administer right lets a grantee see and pass on rights.
        try await store.setACL(user: alice, mailbox: "Projects", identifier: bob, change: .add(ACLRights("a")!))
        await assertEqual(try await store.acl(user: bob, mailbox: projects).map(\.identifier), [alice, bob])
        try await store.setACL(user: bob, mailbox: projects, identifier: carol, change: .replace(ACLRights("lr")!))
        await assertEqual(try await store.myRights(user: carol, mailbox: projects).description, "lr")
    }

    /// `anyone` grants every account; a negative entry (`-name`) takes rights away from one
    /// (RFC 4314 §2); lookup without read lists the mailbox but opens nothing.
    func checkAnyoneAndNegativeRights() async throws {
        let f = try await fixture(users: ["alice", "bob", "carol"])
        let store = f.store
        let inbox = MailboxNamespace.shared(owner: alice, mailbox: "INBOX")
        _ = try await store.append(user: alice, mailbox: "INBOX", message: message("hello"), flags: [], internalDate: nil)
        try await store.setACL(user: alice, mailbox: "INBOX", identifier: "anyone", change: .replace(ACLRights("lr")!))
        try await store.setACL(user: alice, mailbox: "INBOX", identifier: "-" + carol, change: .replace(ACLRights("r")!))
        await assertEqual(try await store.myRights(user: bob, mailbox: inbox).description, "lr")
        await assertEqual(try await store.myRights(user: carol, mailbox: inbox).description, "l")
        await assertEqual(try await store.mailboxes(user: carol).map(\.name).contains(inbox), true)
        await assertEqual(try await store.status(user: bob, mailbox: inbox).messages, 1)
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.status(user: carol, mailbox: inbox) }
        await assertThrows(StorageError.permissionDenied(anyReason)) { try await store.content(user: carol, mailbox: inbox, uid: 1) }
        await assertEqual(try await store.acl(user: alice, mailbox: "INBOX").map(\.identifier), [alice, "-" + carol, "anyone"])
        // A negative `anyone` takes the right from everybody, a positive entry notwithstanding.
        try await store.setACL(user: alice, mailbox: "INBOX", identifier: bob, change: .replace(ACLRights("lrs")!))
        try await store.setACL(user: alice, mailbox: "INBOX", identifier: "-anyone", change: .replace(ACLRights("s")!))
        await assertEqual(try await store.myRights(user: bob, mailbox: inbox).description, "lr")
        // Without lookup, gone from the list again.
        try await store.setACL(user: alice, mailbox: "INBOX", identifier: "anyone", change: .delete)
        await assertEqual(try await store.mailboxes(user: carol).map(\.name).contains(inbox), false)
        await assertThrows(StorageError.noSuchMailbox(inbox)) { try await store.myRights(user: carol, mailbox: inbox) }
        await assertEqual(try await store.mailboxes(user: bob).filter { $0.owner != nil }.map(\.name), [inbox])
    }

    /// A rename keeps the grants; an account's deletion takes its grants with it, so a new
    /// account of that name starts with none.
    func checkGrantsFollowRenameAndAccountDeletion() async throws {
        let f = try await fixture(users: ["alice", "bob", "carol"])
        let store = f.store
        try await store.createMailbox(user: alice, name: "Team")
        try await store.setACL(user: alice, mailbox: "Team", identifier: bob, change: .replace(ACLRights("lr")!))
        try await store.setACL(user: alice, mailbox: "Team", identifier: carol, change: .replace(ACLRights("lr")!))
        try await store.renameMailbox(user: alice, from: "Team", to: "Crew")
        let crew = MailboxNamespace.shared(owner: alice, mailbox: "Crew")
        await assertEqual(try await store.mailboxes(user: bob).filter { $0.owner != nil }.map(\.name), [crew])
        await assertEqual(try await store.myRights(user: bob, mailbox: crew).description, "lr")
        await assertThrows(StorageError.noSuchMailbox(MailboxNamespace.shared(owner: alice, mailbox: "Team"))) {
            try await store.status(user: bob, mailbox: MailboxNamespace.shared(owner: alice, mailbox: "Team"))
        }

        try await f.accounts.deleteAccount(bob)
        await assertEqual(try await store.acl(user: alice, mailbox: "Crew").map(\.identifier), [alice, carol])
        _ = try await f.accounts.createAccount(NewAccount(name: bob, password: "again"))
        await assertEqual(try await store.mailboxes(user: bob).filter { $0.owner != nil }, [])
        // The owner's deletion takes the shared mailbox from its grantees' lists.
        try await f.accounts.deleteAccount(alice)
        await assertEqual(try await store.mailboxes(user: carol).filter { $0.owner != nil }, [])
        await assertEqual(try await store.verifyIntegrity().problems, [])
    }
}
