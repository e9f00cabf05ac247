import Foundation
import PosternTestSupport
import PluginAPI
import PosternHost
import XCTest

/// Domains, accounts, passwords and the credential backend of the built store plugin.
final class AccountTests: XCTestCase {
    func testDomains() async throws {
        let f = try StoreFixture("domains")
        let accounts = f.accounts
        try await accounts.createDomain("Example.ORG")
        try await accounts.createDomain("example.net")
        await assertEqual(try await accounts.domains(), ["example.net", "example.org"])
        await XCTAssertThrowsExactly(AccountError.domainExists("example.org")) { try await accounts.createDomain("EXAMPLE.org") }
        await XCTAssertThrowsExactly(AccountError.invalidName("bad_domain!")) { try await accounts.createDomain("bad_domain!") }
        await XCTAssertThrowsExactly(AccountError.invalidName("-x.org")) { try await accounts.createDomain("-x.org") }
        await XCTAssertThrowsExactly(AccountError.noSuchDomain("nowhere.test")) { try await accounts.deleteDomain("nowhere.test") }

        _ = try await accounts.createAccount(NewAccount(name: "ann@example.net", password: "p"))
        _ = try await accounts.createAccount(NewAccount(name: "bob@example.net", password: "p"))
        await XCTAssertThrowsExactly(AccountError.domainNotEmpty("example.net", accounts: 2)) { try await accounts.deleteDomain("Example.NET") }
        try await accounts.deleteAccount("ann@example.net")
        await XCTAssertThrowsExactly(AccountError.domainNotEmpty("example.net", accounts: 1)) { try await accounts.deleteDomain("example.net") }
        try await accounts.deleteAccount("bob@example.net")
        try await accounts.deleteDomain("example.net")
        await assertEqual(try await accounts.domains(), ["example.org"])
    }

    func testAccounts() async throws {
        let f = try StoreFixture("accounts")
        let accounts = f.accounts
        try await accounts.createDomain("example.org")
        try await accounts.createDomain("example.net")
        let before = Int64(Date().timeIntervalSince1970)
        let alice = try await accounts.createAccount(NewAccount(name: "alice@Example.ORG", password: "pencil", adminLevel: .domainAdmin,
                                                                quotaBytes: 500 << 20, quotaMessages: 1000))
        let after = Int64(Date().timeIntervalSince1970)
        XCTAssertTrue((before...after).contains(alice.created), "\(alice.created)")
        XCTAssertEqual(alice, AccountInfo(name: "alice@example.org", enabled: true, adminLevel: "domain-admin", quotaBytes: 500 << 20,
                                          quotaMessages: 1000, bytesUsed: 0, messagesUsed: 0, partition: f.blobRoot, created: alice.created))
        let bob = try await accounts.createAccount(NewAccount(name: "bob@example.net", password: "pencil"))
        XCTAssertEqual(bob.adminLevel, "user")
        XCTAssertNil(bob.quotaBytes)
        XCTAssertNil(bob.quotaMessages)

        await XCTAssertThrowsExactly(AccountError.accountExists("alice@example.org")) {
            try await accounts.createAccount(NewAccount(name: "alice@example.org", password: "other"))
        }
        // Names compare without case: a second ALICE is the same account.
        await XCTAssertThrowsExactly(AccountError.accountExists("ALICE@example.org")) {
            try await accounts.createAccount(NewAccount(name: "ALICE@EXAMPLE.org", password: "other"))
        }
        await XCTAssertThrowsExactly(AccountError.noSuchDomain("nowhere.test")) {
            try await accounts.createAccount(NewAccount(name: "carol@nowhere.test", password: "p"))
        }
        for bad in ["carol", "@example.org", "carol@", "carol smith@example.org", "carol+tag@example.org", "carol@x@example.org"] {
            await XCTAssertThrowsExactly(AccountError.invalidName(bad)) { try await accounts.createAccount(NewAccount(name: bad, password: "p")) }
        }
        await XCTAssertThrowsExactly(AccountError.invalidPassword("empty")) {
            try await accounts.createAccount(NewAccount(name: "carol@example.org", password: ""))
        }

        await assertEqual(try await accounts.accounts(domain: nil).map(\.name), ["alice@example.org", "bob@example.net"])
        await assertEqual(try await accounts.accounts(domain: "EXAMPLE.net").map(\.name), ["bob@example.net"])
        await assertEqual(try await accounts.accounts(domain: "nowhere.test"), [])
        await assertEqual(try await accounts.account("Alice@example.org"), alice)
        let none = try await accounts.account("nobody@example.org")
        XCTAssertNil(none)

        try await accounts.setQuota(account: "alice@example.org", bytes: nil, messages: 5)
        let changed = try await accounts.account("alice@example.org")
        XCTAssertEqual(changed?.quotaBytes, nil)
        XCTAssertEqual(changed?.quotaMessages, 5)
        await XCTAssertThrowsExactly(AccountError.noSuchAccount("nobody@example.org")) {
            try await accounts.setQuota(account: "nobody@example.org", bytes: 1, messages: nil)
        }

        await XCTAssertThrowsExactly(AccountError.noSuchAccount("nobody@example.org")) { try await accounts.deleteAccount("nobody@example.org") }
        try await accounts.deleteAccount("bob@example.net")
        let gone = try await accounts.account("bob@example.net")
        XCTAssertNil(gone)
        await assertEqual(try await accounts.accounts(domain: nil).map(\.name), ["alice@example.org"])
        // The name is free again.
        _ = try await accounts.createAccount(NewAccount(name: "bob@example.net", password: "again"))
    }

    func testBatchCreation() async throws {
        let f = try StoreFixture("batch")
        let accounts = f.accounts
        try await accounts.createDomain("example.org")
        _ = try await accounts.createAccount(NewAccount(name: "old@example.org", password: "p"))
        let results = try await accounts.createAccounts([
            NewAccount(name: "a1@example.org", password: "p1", quotaBytes: 1 << 20),
            NewAccount(name: "a2@nowhere.test", password: "p2"),
            NewAccount(name: "OLD@example.org", password: "p3"),
            NewAccount(name: "a1@EXAMPLE.org", password: "p4"),
            NewAccount(name: "a3@example.org", password: ""),
            NewAccount(name: "bad", password: "p5"),
            NewAccount(name: "a4@example.org", password: "p6", adminLevel: .siteAdmin),
        ])
        XCTAssertEqual(results.count, 7)
        XCTAssertEqual(try results[0].get().name, "a1@example.org")
        XCTAssertEqual(try results[0].get().quotaBytes, 1 << 20)
        XCTAssertEqual(results[1], .failure(.noSuchDomain("nowhere.test")))
        XCTAssertEqual(results[2], .failure(.accountExists("OLD@example.org")))
        XCTAssertEqual(results[3], .failure(.accountExists("a1@example.org")))
        XCTAssertEqual(results[4], .failure(.invalidPassword("empty")))
        XCTAssertEqual(results[5], .failure(.invalidName("bad")))
        XCTAssertEqual(try results[6].get().adminLevel, "site-admin")
        // What the batch reported is what the store keeps.
        for case .success(let info) in results { await assertEqual(try await accounts.account(info.name), info) }
        await assertEqual(try await accounts.accounts(domain: nil).map(\.name), ["a1@example.org", "a4@example.org", "old@example.org"])
        let backend = f.credentials
        await assertEqual(try await backend.verifyPassword(user: "a4@example.org", password: "p6"), .verified(user: "a4@example.org"))
        await assertEqual(try await backend.verifyPassword(user: "a1@example.org", password: "p4"), .wrongPassword)
        await assertEqual(try await accounts.createAccounts([]), [])
    }

    func testDefaultMailboxes() async throws {
        let f = try StoreFixture("special-use")
        try await f.populate(users: ["alice"])
        let store = f.store
        await assertEqual(try await store.mailboxes(user: "alice@example.org"), [
            MailboxInfo(name: "INBOX"),
            MailboxInfo(name: "Archive", attributes: ["\\Archive"]),
            MailboxInfo(name: "Drafts", attributes: ["\\Drafts"]),
            MailboxInfo(name: "Junk", attributes: ["\\Junk"]),
            MailboxInfo(name: "Sent", attributes: ["\\Sent"]),
            MailboxInfo(name: "Trash", attributes: ["\\Trash"]),
        ])
        var validities = Set<UInt32>()
        for name in ["INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"] {
            let s = try await store.status(user: "alice@example.org", mailbox: name)
            XCTAssertEqual(s.messages, 0)
            XCTAssertEqual(s.unseen, 0)
            XCTAssertEqual(s.uidNext, 1)
            XCTAssertEqual(s.highestModseq, 1)
            validities.insert(s.uidValidity)
        }
        XCTAssertEqual(validities.count, 6, "each mailbox has its own UIDVALIDITY")
        await XCTAssertThrowsExactly(StorageError.noSuchUser("nobody@example.org")) { try await store.mailboxes(user: "nobody@example.org") }
    }

    func testPasswordsAndSuspension() async throws {
        let f = try StoreFixture("passwords")
        try await f.populate(users: ["alice"])
        let backend = f.credentials, accounts = f.accounts
        let alice = "alice@example.org"
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alice"), .verified(user: alice))
        await assertEqual(try await backend.verifyPassword(user: "ALICE@Example.Org", password: "secret-alice"), .verified(user: alice))
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alicE"), .wrongPassword)
        await assertEqual(try await backend.verifyPassword(user: alice, password: ""), .wrongPassword)
        await assertEqual(try await backend.verifyPassword(user: "nobody@example.org", password: "x"), .unknownUser)
        await assertEqual(try await backend.lookupUser(alice), UserRecord(name: alice))
        let unknown = try await backend.lookupUser("nobody@example.org")
        XCTAssertNil(unknown)

        try await accounts.setEnabled(account: alice, enabled: false)
        await assertEqual(try await accounts.account(alice)?.enabled, false)
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alice"), .suspended(user: alice))
        // A wrong password says nothing about the account's state.
        await assertEqual(try await backend.verifyPassword(user: alice, password: "guess"), .wrongPassword)
        await assertEqual(try await backend.storedSecret(user: alice, scheme: "SCRAM-SHA-256"), .suspended(user: alice))
        await assertEqual(try await backend.lookupUser(alice), UserRecord(name: alice, enabled: false))
        try await accounts.setEnabled(account: alice, enabled: true)
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alice"), .verified(user: alice))

        try await accounts.setPassword(account: alice, password: "new pass phrase")
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alice"), .wrongPassword)
        await assertEqual(try await backend.verifyPassword(user: alice, password: "new pass phrase"), .verified(user: alice))
        await XCTAssertThrowsExactly(AccountError.noSuchAccount("nobody@example.org")) {
            try await accounts.setPassword(account: "nobody@example.org", password: "x")
        }
        await XCTAssertThrowsExactly(AccountError.invalidPassword("empty")) { try await accounts.setPassword(account: alice, password: "") }
        await XCTAssertThrowsExactly(AccountError.noSuchAccount("nobody@example.org")) {
            try await accounts.setEnabled(account: "nobody@example.org", enabled: false)
        }

        // Through the host's auth service, as a session would ask.
        let auth = f.context.services.auth
        await assertEqual(await AuthService.ask(auth.backends, .password(user: alice, password: "new pass phrase")), .verified(user: alice))
        await assertEqual(await AuthService.ask(auth.backends, .password(user: "x@example.org", password: "y")), .unknownUser)
    }

    func testStoredSCRAMSecret() async throws {
        let f = try StoreFixture("scram")
        try await f.populate(users: ["alice"])
        let backend = f.credentials
        guard case .secret(let user, let stored) = try await backend.storedSecret(user: "Alice@example.org", scheme: "SCRAM-SHA-256") else {
            return XCTFail("no secret")
        }
        XCTAssertEqual(user, "alice@example.org")
        XCTAssertEqual(stored.scheme, "SCRAM-SHA-256")
        XCTAssertEqual(Set(stored.fields.keys), ["salt", "iterations", "stored-key", "server-key"])
        XCTAssertEqual(String(decoding: stored.fields["iterations"]!, as: UTF8.self), "4096")
        let salt = try XCTUnwrap(stored.fields["salt"])
        XCTAssertEqual(salt.count, 16)
        // RFC 5802 §3, step by step: SaltedPassword = Hi(password, salt, i), ClientKey = HMAC(SaltedPassword,
        // "Client Key"), StoredKey = H(ClientKey), ServerKey = HMAC(SaltedPassword, "Server Key").
        let h = SCRAMSecret.Algorithm.sha256
        let salted = try h.saltedPassword(Array("secret-alice".utf8), salt: salt, iterations: 4096)
        XCTAssertEqual(stored.fields["stored-key"], h.hash(h.hmac(key: salted, Array("Client Key".utf8))))
        XCTAssertEqual(stored.fields["server-key"], h.hmac(key: salted, Array("Server Key".utf8)))
        // A wrong password gives other keys.
        let wrong = try h.saltedPassword(Array("secret-alicE".utf8), salt: salt, iterations: 4096)
        XCTAssertNotEqual(stored.fields["stored-key"], h.hash(h.hmac(key: wrong, Array("Client Key".utf8))))

        await assertEqual(try await backend.storedSecret(user: "alice@example.org", scheme: "scram-sha-256"), .secret(user: "alice@example.org", stored))
        guard case .unavailable = try await backend.storedSecret(user: "alice@example.org", scheme: "SCRAM-SHA-1") else {
            return XCTFail("SCRAM-SHA-1 is not stored")
        }
        await assertEqual(try await backend.storedSecret(user: "nobody@example.org", scheme: "SCRAM-SHA-256"), .unknownUser)
        // A new password, a new salt.
        try await f.accounts.setPassword(account: "alice@example.org", password: "other")
        guard case .secret(_, let again) = try await backend.storedSecret(user: "alice@example.org", scheme: "SCRAM-SHA-256") else {
            return XCTFail("no secret")
        }
        XCTAssertNotEqual(again.fields["salt"], salt)
    }
}
