import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// Domains, accounts, aliases, forwarding and vacation (`AccountStore`), and the credential
/// backend over the same accounts.
extension StoreConformance {
    func checkDomains() async throws {
        let f = try await fixture()
        let accounts = f.accounts
        try await accounts.createDomain("Example.ORG")
        try await accounts.createDomain("example.net")
        await assertEqual(try await accounts.domains(), ["example.net", "example.org"])
        await assertThrows(AccountError.domainExists("example.org")) { try await accounts.createDomain("EXAMPLE.org") }
        await assertThrows(AccountError.invalidName("bad_domain!")) { try await accounts.createDomain("bad_domain!") }
        await assertThrows(AccountError.invalidName("-x.org")) { try await accounts.createDomain("-x.org") }
        await assertThrows(AccountError.noSuchDomain("nowhere.test")) { try await accounts.deleteDomain("nowhere.test") }

        _ = try await accounts.createAccount(NewAccount(name: "ann@example.net", password: "p"))
        _ = try await accounts.createAccount(NewAccount(name: "bob@example.net", password: "p"))
        await assertThrows(AccountError.domainNotEmpty("example.net", accounts: 2)) { try await accounts.deleteDomain("Example.NET") }
        try await accounts.deleteAccount("ann@example.net")
        await assertThrows(AccountError.domainNotEmpty("example.net", accounts: 1)) { try await accounts.deleteDomain("example.net") }
        try await accounts.deleteAccount("bob@example.net")
        // A domain's aliases go with it.
        try await accounts.setAlias("info@example.net", targets: ["someone@example.com"])
        try await accounts.deleteDomain("example.net")
        await assertEqual(try await accounts.domains(), ["example.org"])
        await assertEqual(try await accounts.aliases(domain: nil), [])
    }

    func checkAccounts() async throws {
        let f = try await fixture()
        let accounts = f.accounts
        try await accounts.createDomain("example.org")
        try await accounts.createDomain("example.net")
        let before = Int64(Date().timeIntervalSince1970)
        let created = try await accounts.createAccount(NewAccount(name: "alice@Example.ORG", password: "pencil", adminLevel: .domainAdmin,
                                                                  quotaBytes: 500 << 20, quotaMessages: 1000))
        let after = Int64(Date().timeIntervalSince1970)
        XCTAssertTrue((before...after).contains(created.created), "\(created.created)")
        // The partition is the backend's own business; everything else is exact.
        XCTAssertEqual(created, AccountInfo(name: alice, enabled: true, adminLevel: "domain-admin", quotaBytes: 500 << 20, quotaMessages: 1000,
                                            bytesUsed: 0, messagesUsed: 0, partition: created.partition, created: created.created))
        let bobInfo = try await accounts.createAccount(NewAccount(name: "bob@example.net", password: "pencil"))
        XCTAssertEqual(bobInfo.adminLevel, "user")
        XCTAssertNil(bobInfo.quotaBytes)
        XCTAssertNil(bobInfo.quotaMessages)

        await assertThrows(AccountError.accountExists(alice)) { try await accounts.createAccount(NewAccount(name: alice, password: "other")) }
        // Names compare without case: a second ALICE is the same account.
        await assertThrows(AccountError.accountExists("ALICE@example.org")) {
            try await accounts.createAccount(NewAccount(name: "ALICE@EXAMPLE.org", password: "other"))
        }
        await assertThrows(AccountError.noSuchDomain("nowhere.test")) {
            try await accounts.createAccount(NewAccount(name: "carol@nowhere.test", password: "p"))
        }
        for bad in ["carol", "@example.org", "carol@", "carol smith@example.org", "carol+tag@example.org", "carol@x@example.org"] {
            await assertThrows(AccountError.invalidName(bad)) { try await accounts.createAccount(NewAccount(name: bad, password: "p")) }
        }
        await assertThrows(AccountError.invalidPassword(anyReason)) { try await accounts.createAccount(NewAccount(name: carol, password: "")) }

        await assertEqual(try await accounts.accounts(domain: nil).map(\.name), [alice, "bob@example.net"])
        await assertEqual(try await accounts.accounts(domain: "EXAMPLE.net").map(\.name), ["bob@example.net"])
        await assertEqual(try await accounts.accounts(domain: "nowhere.test"), [])
        await assertEqual(try await accounts.account("Alice@example.org"), created)
        await assertEqual(try await accounts.account(nobody), nil)

        await assertThrows(AccountError.noSuchAccount(nobody)) { try await accounts.deleteAccount(nobody) }
        try await accounts.deleteAccount("bob@example.net")
        await assertEqual(try await accounts.account("bob@example.net"), nil)
        await assertEqual(try await accounts.accounts(domain: nil).map(\.name), [alice])
        // The name is free again, and the new account starts empty.
        let again = try await accounts.createAccount(NewAccount(name: "bob@example.net", password: "again"))
        XCTAssertEqual([again.bytesUsed, again.messagesUsed], [0, 0])
        await assertEqual(try await f.store.status(user: "bob@example.net", mailbox: "INBOX").messages, 0)
    }

    func checkBatchCreation() async throws {
        let f = try await fixture()
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
        assertRefused(results[1], .noSuchDomain("nowhere.test"))
        assertRefused(results[2], .accountExists("OLD@example.org"))
        assertRefused(results[3], .accountExists("a1@example.org"))
        assertRefused(results[4], .invalidPassword(anyReason))
        assertRefused(results[5], .invalidName("bad"))
        XCTAssertEqual(try results[6].get().adminLevel, "site-admin")
        // What the batch reported is what the store keeps.
        for case .success(let info) in results { await assertEqual(try await accounts.account(info.name), info) }
        await assertEqual(try await accounts.accounts(domain: nil).map(\.name), ["a1@example.org", "a4@example.org", "old@example.org"])
        let backend = f.credentials
        await assertEqual(try await backend.verifyPassword(user: "a4@example.org", password: "p6"), .verified(user: "a4@example.org"))
        await assertEqual(try await backend.verifyPassword(user: "a1@example.org", password: "p4"), .wrongPassword)
        await assertEqual(try await accounts.createAccounts([]), [])
    }

    /// Enabled, quota and admin level: each setter changes what `account` and `lookupUser` say,
    /// and refuses an unknown account.
    func checkAccountSettings() async throws {
        let f = try await fixture(users: ["alice"])
        let accounts = f.accounts, backend = f.credentials
        await assertEqual(try await backend.lookupUser(alice), UserRecord(name: alice))
        try await accounts.setAdminLevel(account: alice, level: .siteAdmin)
        await assertEqual(try await accounts.account(alice)?.adminLevel, "site-admin")
        await assertEqual(try await backend.lookupUser("Alice@Example.org"), UserRecord(name: alice, adminLevel: .siteAdmin))
        try await accounts.setAdminLevel(account: alice, level: .domainAdmin)
        await assertEqual(try await backend.lookupUser(alice), UserRecord(name: alice, adminLevel: .domainAdmin))

        try await accounts.setQuota(account: alice, bytes: 1 << 30, messages: 50)
        var info = try await accounts.account(alice)
        XCTAssertEqual(info?.quotaBytes, 1 << 30)
        XCTAssertEqual(info?.quotaMessages, 50)
        try await accounts.setQuota(account: alice, bytes: nil, messages: 5)
        info = try await accounts.account(alice)
        XCTAssertNil(info?.quotaBytes)
        XCTAssertEqual(info?.quotaMessages, 5)

        try await accounts.setEnabled(account: alice, enabled: false)
        await assertEqual(try await accounts.account(alice)?.enabled, false)
        await assertEqual(try await backend.lookupUser(alice), UserRecord(name: alice, enabled: false, adminLevel: .domainAdmin))
        try await accounts.setEnabled(account: alice, enabled: true)
        await assertEqual(try await accounts.account(alice)?.enabled, true)
        await assertEqual(try await backend.lookupUser(nobody), nil)

        await assertThrows(AccountError.noSuchAccount(nobody)) { try await accounts.setQuota(account: nobody, bytes: 1, messages: nil) }
        await assertThrows(AccountError.noSuchAccount(nobody)) { try await accounts.setEnabled(account: nobody, enabled: false) }
        await assertThrows(AccountError.noSuchAccount(nobody)) { try await accounts.setAdminLevel(account: nobody, level: .user) }
        await assertThrows(AccountError.noSuchAccount(nobody)) { try await accounts.setPassword(account: nobody, password: "x") }
    }

    /// Aliases, the catch-all, and the rule that an address is an account or an alias, not both.
    func checkAliases() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        let accounts = f.accounts
        try await accounts.createDomain("example.net")
        try await accounts.setAlias("sales@example.org", targets: [alice, bob])
        try await accounts.setAlias("@example.org", targets: ["postmaster@example.net"])
        try await accounts.setAlias("info@Example.NET", targets: ["x@remote.example"])
        await assertEqual(try await accounts.alias("sales@example.org"), [alice, bob])
        // The router asks with the local part as the sender wrote it.
        await assertEqual(try await accounts.alias("SALES@example.org"), [alice, bob])
        await assertEqual(try await accounts.alias("@example.org"), ["postmaster@example.net"])
        await assertEqual(try await accounts.alias("info@example.net"), ["x@remote.example"])
        // Catch-alls are the router's to apply, not `alias`'s.
        await assertEqual(try await accounts.alias("other@example.org"), nil)
        await assertEqual(try await accounts.aliases(domain: "example.org"), [
            MailAlias(address: "@example.org", targets: ["postmaster@example.net"]),
            MailAlias(address: "sales@example.org", targets: [alice, bob]),
        ])
        await assertEqual(try await accounts.aliases(domain: nil).map(\.address), ["@example.org", "info@example.net", "sales@example.org"])

        // Setting again replaces the targets; none removes the alias.
        try await accounts.setAlias("sales@example.org", targets: [carol])
        await assertEqual(try await accounts.alias("sales@example.org"), [carol])
        try await accounts.setAlias("sales@example.org", targets: [])
        await assertEqual(try await accounts.alias("sales@example.org"), nil)
        await assertEqual(try await accounts.aliases(domain: "example.org").map(\.address), ["@example.org"])

        // An account cannot be shadowed by an alias, nor an alias by a new account.
        await assertThrows(AccountError.aliasConflict(anyReason)) { try await accounts.setAlias(alice, targets: [bob]) }
        await assertThrows(AccountError.aliasConflict(anyReason)) {
            try await accounts.createAccount(NewAccount(name: "info@example.net", password: "p"))
        }
        await assertThrows(AccountError.noSuchDomain("nowhere.test")) { try await accounts.setAlias("x@nowhere.test", targets: [alice]) }
        await assertThrows(AccountError.invalidName("not-an-address")) { try await accounts.setAlias("not-an-address", targets: [alice]) }
        await assertThrows(AccountError.invalidName("no address")) { try await accounts.setAlias("x@example.org", targets: ["no address"]) }
        await assertEqual(try await accounts.alias("x@example.org"), nil)
    }

    func checkForwarding() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        let accounts = f.accounts
        await assertEqual(try await accounts.forwarding(account: alice), nil)
        try await accounts.setForwarding(account: alice, to: [bob, "alice@elsewhere.example"], keepCopy: true)
        await assertEqual(try await accounts.forwarding(account: alice), Forwarding(to: [bob, "alice@elsewhere.example"], keepCopy: true))
        try await accounts.setForwarding(account: alice, to: [bob], keepCopy: false)
        await assertEqual(try await accounts.forwarding(account: alice), Forwarding(to: [bob], keepCopy: false))
        await assertEqual(try await accounts.forwarding(account: bob), nil)
        // No targets turns it off.
        try await accounts.setForwarding(account: alice, to: [], keepCopy: true)
        await assertEqual(try await accounts.forwarding(account: alice), nil)
        await assertThrows(AccountError.invalidName("bob")) { try await accounts.setForwarding(account: alice, to: ["bob"], keepCopy: false) }
        await assertThrows(AccountError.noSuchAccount(nobody)) { try await accounts.setForwarding(account: nobody, to: [bob], keepCopy: false) }
        await assertEqual(try await accounts.forwarding(account: alice), nil)
    }

    /// The auto-reply and its once-per-sender-per-period record (RFC 3834 §2).
    func checkVacation() async throws {
        let f = try await fixture(users: ["alice", "bob"])
        let accounts = f.accounts
        await assertEqual(try await accounts.vacation(account: alice), nil)
        let away = Vacation(subject: "Away", body: "Back on Monday.\nAnn", period: 3600, start: 1_700_000_000, end: 1_900_000_000)
        try await accounts.setVacation(account: alice, away)
        await assertEqual(try await accounts.vacation(account: alice), away)
        await assertEqual(try await accounts.vacation(account: bob), nil)

        let sender = "friend@example.net"
        await assertEqual(try await accounts.claimVacationReply(account: alice, sender: sender, period: 3600), true)
        await assertEqual(try await accounts.claimVacationReply(account: alice, sender: sender, period: 3600), false)
        // Senders compare without case; another sender, or another account, is a reply of its own.
        await assertEqual(try await accounts.claimVacationReply(account: alice, sender: "Friend@Example.NET", period: 3600), false)
        await assertEqual(try await accounts.claimVacationReply(account: alice, sender: "other@example.net", period: 3600), true)
        await assertEqual(try await accounts.claimVacationReply(account: bob, sender: sender, period: 3600), true)
        // A period of nothing: the last reply is always long enough ago.
        await assertEqual(try await accounts.claimVacationReply(account: alice, sender: sender, period: 0), true)
        // A new vacation message starts a new period for everyone.
        try await accounts.setVacation(account: alice, Vacation(subject: "Still away", body: "Really."))
        await assertEqual(try await accounts.claimVacationReply(account: alice, sender: sender, period: 3600), true)
        await assertEqual(try await accounts.claimVacationReply(account: nobody, sender: sender, period: 3600), false)

        try await accounts.setVacation(account: alice, nil)
        await assertEqual(try await accounts.vacation(account: alice), nil)
        await assertThrows(AccountError.noSuchAccount(nobody)) { try await accounts.setVacation(account: nobody, away) }
    }

    func checkPasswordsAndSuspension() async throws {
        let f = try await fixture(users: ["alice"])
        let backend = f.credentials, accounts = f.accounts
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alice"), .verified(user: alice))
        await assertEqual(try await backend.verifyPassword(user: "ALICE@Example.Org", password: "secret-alice"), .verified(user: alice))
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alicE"), .wrongPassword)
        await assertEqual(try await backend.verifyPassword(user: alice, password: ""), .wrongPassword)
        await assertEqual(try await backend.verifyPassword(user: nobody, password: "x"), .unknownUser)

        try await accounts.setEnabled(account: alice, enabled: false)
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alice"), .suspended(user: alice))
        // A wrong password says nothing about the account's state.
        await assertEqual(try await backend.verifyPassword(user: alice, password: "guess"), .wrongPassword)
        await assertEqual(try await backend.storedSecret(user: alice, scheme: "SCRAM-SHA-256"), .suspended(user: alice))
        try await accounts.setEnabled(account: alice, enabled: true)
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alice"), .verified(user: alice))

        try await accounts.setPassword(account: alice, password: "new pass phrase")
        await assertEqual(try await backend.verifyPassword(user: alice, password: "secret-alice"), .wrongPassword)
        await assertEqual(try await backend.verifyPassword(user: alice, password: "new pass phrase"), .verified(user: alice))
        await assertThrows(AccountError.invalidPassword(anyReason)) { try await accounts.setPassword(account: alice, password: "") }
        await assertEqual(try await backend.verifyPassword(user: alice, password: "new pass phrase"), .verified(user: alice))

        // Through the host's auth service, as a session asks.
        let auth = f.context.services.auth
        await assertEqual(await AuthService.ask(auth.backends, .password(user: alice, password: "new pass phrase")), .verified(user: alice))
        await assertEqual(await AuthService.ask(auth.backends, .password(user: "x@example.org", password: "y")), .unknownUser)
        await assertEqual(await AuthService.ask(auth.backends, .account(user: "Alice@example.org")), .verified(user: alice))
    }

    /// The SCRAM-SHA-256 keys (RFC 5802 §3) that SCRAM mechanisms ask for instead of a password.
    func checkStoredSCRAMSecret() async throws {
        let f = try await fixture(users: ["alice"])
        let backend = f.credentials
        guard case .secret(let user, let stored) = try await backend.storedSecret(user: "Alice@example.org", scheme: "SCRAM-SHA-256") else {
            return XCTFail("no SCRAM-SHA-256 secret")
        }
        XCTAssertEqual(user, alice)
        XCTAssertEqual(stored.scheme, "SCRAM-SHA-256")
        XCTAssertEqual(Set(stored.fields.keys), ["salt", "iterations", "stored-key", "server-key"])
        XCTAssertEqual(String(decoding: stored.fields["iterations"] ?? [], as: UTF8.self), "4096")
        let salt = try XCTUnwrap(stored.fields["salt"])
        XCTAssertEqual(salt.count, 16)
        let h = SCRAMSecret.Algorithm.sha256
        let salted = try h.saltedPassword(Array("secret-alice".utf8), salt: salt, iterations: 4096)
        XCTAssertEqual(stored.fields["stored-key"], h.hash(h.hmac(key: salted, Array("Client Key".utf8))))
        XCTAssertEqual(stored.fields["server-key"], h.hmac(key: salted, Array("Server Key".utf8)))

        // The scheme's name without case; no other scheme; nobody's secret.
        await assertEqual(try await backend.storedSecret(user: alice, scheme: "scram-sha-256"), .secret(user: alice, stored))
        guard case .unavailable = try await backend.storedSecret(user: alice, scheme: "SCRAM-SHA-1") else {
            return XCTFail("SCRAM-SHA-1 keys are kept only while a mechanism needing them is loaded")
        }
        await assertEqual(try await backend.storedSecret(user: nobody, scheme: "SCRAM-SHA-256"), .unknownUser)
        // A new password, a new salt.
        try await f.accounts.setPassword(account: alice, password: "other")
        guard case .secret(_, let again) = try await backend.storedSecret(user: alice, scheme: "SCRAM-SHA-256") else {
            return XCTFail("no secret after a new password")
        }
        XCTAssertNotEqual(again.fields["salt"], salt)
        let resalted = try h.saltedPassword(Array("other".utf8), salt: again.fields["salt"] ?? [], iterations: 4096)
        XCTAssertEqual(again.fields["stored-key"], h.hash(h.hmac(key: resalted, Array("Client Key".utf8))))
    }
}
