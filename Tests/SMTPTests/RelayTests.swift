import PosternTestSupport
import Foundation
import PluginAPI
import XCTest
@testable import PosternSMTPCore
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore
@testable import PosternTableFileCore

/// Relay control: address tricks refused before any lookup, who may relay, access tables, DNSBL
/// and reverse DNS.
final class SMTPRelayTests: XCTestCase {
    /// An MX session from an outside client with default options, in a transaction.
    func outsideTransaction(utf8: Bool = false) async -> SMTPHarness {
        var options = SMTPOptions(mode: .mx)
        options.maxErrors = 1000
        let h = SMTPHarness(options: options)
        await h.ready()
        _ = await h.send("MAIL FROM:<sender@remote.example>" + (utf8 ? " SMTPUTF8" : ""))
        return h
    }

    func testRelayTricksAreRefusedBeforeAnyLookup() async {
        let h = await outsideTransaction()
        let tricks: [(String, String)] = [
            ("<user%remote.example@example.org>", "553 5.7.1 percent-hack addresses are not accepted"),
            ("<user%remote.example%other.example@example.org>", "553 5.7.1 percent-hack addresses are not accepted"),
            ("<remote.example!user@example.org>", "553 5.7.1 bang-path addresses are not accepted"),
            ("<@example.org:user@remote.example>", "553 5.7.1 source-routed addresses are not accepted"),
            ("<@example.org,@mx.example.org:user@remote.example>", "553 5.7.1 source-routed addresses are not accepted"),
            ("<\"user@remote.example\"@example.org>", "553 5.7.1 quoted local parts containing @ are not accepted"),
            ("<\"user\\@remote.example\"@example.org>", "553 5.7.1 quoted local parts containing @ are not accepted"),
            ("<\"user%remote.example\"@example.org>", "553 5.7.1 percent-hack addresses are not accepted"),
            ("<\"remote.example!user\"@example.org>", "553 5.7.1 bang-path addresses are not accepted"),
            ("<user%remote.example@[192.0.2.25]>", "553 5.7.1 percent-hack addresses are not accepted"),
            ("<user@[192.0.2.1]>", "553 5.7.1 address literals are not accepted"),
            ("<user@[IPv6:2001:db8::1]>", "553 5.7.1 address literals are not accepted"),
            ("<user@[x-tag:anything]>", "553 5.7.1 address literals are not accepted"),
            ("<user@remote.example.>", "501 5.1.3 bad address syntax: invalidDomain(PluginAPI.DomainError.emptyLabel)"),
            ("<user@example.org.>", "501 5.1.3 bad address syntax: invalidDomain(PluginAPI.DomainError.emptyLabel)"),
            ("<user@>", "501 5.1.3 bad address syntax: invalidDomain(PluginAPI.DomainError.emptyLabel)"),
            ("<user>", "501 5.1.3 bad address syntax: missingDomain"),
            ("<\"user@remote.example\">", "501 5.1.3 bad address syntax: missingDomain"),
            ("<user@example.org@remote.example>", "501 5.1.3 bad address syntax: invalidDomain(PluginAPI.DomainError.invalidCharacter(\"org@remote\"))"),
            ("<user@münchen.example>", "553 5.6.7 non-ASCII recipient address needs SMTPUTF8"),
        ]
        for (address, expected) in tricks {
            let reply = await h.send("RCPT TO:\(address)")
            XCTAssertEqual(reply, expected + "\r\n", address)
        }
        XCTAssertEqual(h.router.asked, [], "no trick reached the router")
        XCTAssertGreaterThanOrEqual(tricks.count, 20)
    }

    func testForeignDomainsInEveryDisguiseAreRelayDenied() async {
        let h = await outsideTransaction(utf8: true)
        let foreign: [(String, String)] = [
            ("<user@remote.example>", "554 5.7.1 <user@remote.example>: relay access denied"),
            ("<user@REMOTE.EXAMPLE>", "554 5.7.1 <user@remote.example>: relay access denied"),
            ("<user@Remote.Example>", "554 5.7.1 <user@remote.example>: relay access denied"),
            ("<postmaster@remote.example>", "554 5.7.1 <postmaster@remote.example>: relay access denied"),
            ("<user@sub.example.org>", "554 5.7.1 <user@sub.example.org>: relay access denied"),
            ("<user@example.org.remote.example>", "554 5.7.1 <user@example.org.remote.example>: relay access denied"),
            ("<user@münchen.example>", "554 5.7.1 <user@xn--mnchen-3ya.example>: relay access denied"),
            ("<user@MÜNCHEN.example>", "554 5.7.1 <user@xn--mnchen-3ya.example>: relay access denied"),
            ("<user@XN--MNCHEN-3YA.example>", "554 5.7.1 <user@xn--mnchen-3ya.example>: relay access denied"),
            ("<\"user name\"@remote.example>", "554 5.7.1 <\"user name\"@remote.example>: relay access denied"),
        ]
        for (address, expected) in foreign {
            let reply = await h.send("RCPT TO:\(address)")
            XCTAssertEqual(reply, expected + "\r\n", address)
        }
        // Local and relay domains, in any case, and this host by its own address or as <postmaster>.
        let accepted = await h.each(["RCPT TO:<ALICE@Example.ORG>", "RCPT TO:<anyone@RELAY.example>", "RCPT TO:<postmaster>",
                                     "RCPT TO:<Postmaster>", "RCPT TO:<postmaster@[192.0.2.25]>", "RCPT TO:<someone@[192.0.2.25]>"])
        XCTAssertEqual(accepted, ["250 2.1.5 recipient ok", "250 2.1.5 recipient ok", "250 2.1.5 recipient ok", "250 2.1.5 recipient ok",
                                  "250 2.1.5 recipient ok", "550 5.1.1 <someone@mx.example.org>: no such user here"])
    }

    func testWhoMayRelay() async {
        func relay(_ options: SMTPOptions, client: SMTPClient = SMTPHarness.outside, login: Bool = false,
                   tables: [(name: String, table: any LookupTable)] = []) async -> String {
            let h = SMTPHarness(options: options, client: client)
            h.client.isSecure = login
            h.tables = tables
            await h.ready()
            if login { _ = await h.login() }
            _ = await h.send("MAIL FROM:<alice@example.org>")
            return await h.send("RCPT TO:<friend@remote.example>").trimmedLastLine
        }
        let denied = "554 5.7.1 <friend@remote.example>: relay access denied"
        let ok = "250 2.1.5 recipient ok"
        let mx = SMTPOptions(mode: .mx)
        // An MX listener with default options relays for nobody: not even loopback.
        let fromOutside = await relay(mx)
        XCTAssertEqual(fromOutside, denied)
        let fromLoopback = await relay(mx, client: SMTPHarness.loopback)
        XCTAssertEqual(fromLoopback, denied)
        // Authenticated users relay (relay_authenticated, default true), on MX and submission.
        let authenticated = await relay(mx, login: true)
        XCTAssertEqual(authenticated, ok)
        let submission = await relay(SMTPOptions(mode: .submission), login: true)
        XCTAssertEqual(submission, ok)
        var noAuthRelay = mx
        noAuthRelay.relayAuthenticated = false
        let notTrusted = await relay(noAuthRelay, login: true)
        XCTAssertEqual(notTrusted, denied)
        // mynetworks, and trust_loopback through the option parser.
        var networks = mx
        networks.mynetworks = [IPNetwork("203.0.113.0/24")!]
        let inNetwork = await relay(networks)
        XCTAssertEqual(inNetwork, ok)
        networks.mynetworks = [IPNetwork("203.0.114.0/24")!]
        let outOfNetwork = await relay(networks)
        XCTAssertEqual(outOfNetwork, denied)
        let loopbackTrusted = try! SMTPOptions(ConfigSection(SMTPOptions.schema.applyingDefaults(to: ["trust_loopback": .boolean(true)])))
        let trusted = await relay(loopbackTrusted, client: SMTPHarness.loopback)
        XCTAssertEqual(trusted, ok)
        // An access table: RELAY for the client, or for the recipient domain.
        var access = mx
        access.accessTables = ["access"]
        let clientRelay = await relay(access, tables: [("access", TestTable(entries: ["client:203.0.113.0/24": "RELAY"]))])
        XCTAssertEqual(clientRelay, ok)
        let domainRelay = await relay(access, tables: [("access", TestTable(entries: ["to:remote.example": "RELAY"]))])
        XCTAssertEqual(domainRelay, ok)
        let senderRelayIsNotRelay = await relay(access, tables: [("access", TestTable(entries: ["from:alice@example.org": "RELAY"]))])
        XCTAssertEqual(senderRelayIsNotRelay, denied)
    }

    func testSenderMustBeFullyQualifiedFromOutside() async {
        let h = SMTPHarness()
        await h.ready()
        let replies = await h.each(["MAIL FROM:<user@localhost>", "MAIL FROM:<postmaster>", "MAIL FROM:<user@[192.0.2.1]>", "RSET",
                                    "MAIL FROM:<>", "RSET", "MAIL FROM:<@relay.example:user@remote.example>"])
        XCTAssertEqual(replies, [
            "504 5.5.2 <user@localhost>: sender address must be fully qualified",
            "504 5.5.2 <postmaster>: sender address must be fully qualified",
            "250 2.1.0 sender ok",
            "250 2.0.0 ok",
            "250 2.1.0 sender ok",
            "250 2.0.0 ok",
            "250 2.1.0 sender ok",
        ])
        // The source route of a reverse path is dropped (RFC 5321 §3.3).
        _ = await h.send("RCPT TO:<alice@example.org>", "DATA")
        _ = await h.send("x", ".")
        XCTAssertEqual(h.queue.entries.first?.envelope.sender, "user@remote.example")
        // From a trusted network an unqualified sender passes.
        var options = SMTPOptions(mode: .mx)
        options.mynetworks = [IPNetwork("203.0.113.9")!]
        let trusted = SMTPHarness(options: options)
        await trusted.ready()
        let local = await trusted.send("MAIL FROM:<user@localhost>")
        XCTAssertEqual(local, "250 2.1.0 sender ok\r\n")
    }

    func testAccessTable() async {
        var options = SMTPOptions(mode: .mx)
        options.accessTables = ["first", "second"]
        func session(_ entries: [String: String], client: SMTPClient = SMTPHarness.outside) async -> SMTPHarness {
            let h = SMTPHarness(options: options, client: client)
            h.tables = [("first", TestTable(entries: entries)), ("second", TestTable(entries: ["from:second.example": "REJECT from the second table"]))]
            return h
        }
        // Client keys: address, network, verified host name.
        for key in ["client:203.0.113.9", "client:203.0.113.0/24", "client:203.0.0.0/16"] {
            let h = await session([key: "REJECT go away"])
            let greeting = await h.start()
            XCTAssertEqual(greeting, "554 5.7.1 go away\r\n", key)
            let replies = await h.each(["EHLO x.example", "MAIL FROM:<a@remote.example>", "NOOP", "QUIT"])
            XCTAssertEqual(replies, ["503 5.7.1 no service here: go away", "503 5.7.1 no service here: go away", "250 2.0.0 ok", "<CLOSE>"])
        }
        let named = await session(["client:.example.net": "REJECT"])
        named.dns = TestDNS(a: ["mail.example.net": ["203.0.113.9"]], ptrs: ["203.0.113.9": ["mail.example.net."]])
        let byName = await named.start()
        XCTAssertEqual(byName, "554 5.7.1 access denied\r\n")
        let busy = await session(["client:203.0.113.9": "TEMPFAIL busy"])
        let tempfail = await busy.start()
        XCTAssertEqual(tempfail, "421 4.7.0 mx.example.org busy\r\n<CLOSE>\r\n")

        // HELO, sender and recipient keys, with parent domains and local parts.
        let h = await session(["helo:.bad.example": "REJECT no such host", "helo:slow.example": "TEMPFAIL",
                               "from:spammer@example.com": "REJECT you again", "from:.spam.example": "REJECT",
                               "from:<>": "TEMPFAIL no bounces now", "from:abuse@": "REJECT",
                               "to:bob@example.org": "REJECT bob left", "to:.example.org": "DUNNO", "to:alice@": "TEMPFAIL",
                               "from:ok.example": "OK", "helo:weird": "FROBNICATE"])
        await h.start()
        let replies = await h.each([
            "EHLO host.bad.example", "EHLO slow.example", "EHLO weird", "EHLO good.example",
            "MAIL FROM:<spammer@example.com>", "MAIL FROM:<x@mail.spam.example>", "MAIL FROM:<>", "MAIL FROM:<abuse@anywhere.example>",
            "MAIL FROM:<x@second.example>", "MAIL FROM:<x@ok.example>",
            "RCPT TO:<bob@example.org>", "RCPT TO:<alice@example.org>", "RCPT TO:<postmaster@example.org>",
        ])
        XCTAssertEqual(replies, [
            "550 5.7.1 no such host",
            "450 4.7.1 try again later",
            "450 4.7.1 access table misconfigured",
            "250 STARTTLS",
            "550 5.7.1 <spammer@example.com>: you again",
            "550 5.7.1 <x@mail.spam.example>: sender address rejected",
            "450 4.7.1 <>: no bounces now",
            "550 5.7.1 <abuse@anywhere.example>: sender address rejected",
            "550 5.7.1 <x@second.example>: from the second table",
            "250 2.1.0 sender ok",
            "550 5.7.1 <bob@example.org>: bob left",
            "450 4.7.1 <alice@example.org>: try again later",
            "250 2.1.5 recipient ok",
        ])

        // DISCARD: 250 to everything, nothing queued.
        let d = await session(["to:alice@example.org": "DISCARD"])
        await d.ready()
        _ = await d.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
        let end = await d.send("x", ".")
        XCTAssertEqual(end, "250 2.0.0 ok: discarded\r\n")
        XCTAssertTrue(d.queue.entries.isEmpty)
        XCTAssertEqual(d.spoolFiles, [])

        // A client OK skips the later checks (DNSBL, sender keys).
        let whitelisted = await session(["client:203.0.113.9": "OK", "from:spammer@example.com": "REJECT"])
        whitelisted.options.dnsbl = ["zen.example"]
        whitelisted.dns = TestDNS(a: ["9.113.0.203.zen.example": ["127.0.0.2"]])
        let greeting = await whitelisted.start()
        XCTAssertEqual(greeting, "220 mx.example.org ESMTP Postern\r\n")
        _ = await whitelisted.send("EHLO x.example")
        let sender = await whitelisted.send("MAIL FROM:<spammer@example.com>")
        XCTAssertEqual(sender, "250 2.1.0 sender ok\r\n")
    }

    func testDNSBL() async {
        var options = SMTPOptions(mode: .mx)
        options.dnsbl = ["clean.example", "zen.example"]
        let listed = SMTPHarness(options: options)
        listed.dns = TestDNS(a: ["9.113.0.203.zen.example": ["127.0.0.4"]])
        let refused = await listed.start()
        XCTAssertEqual(refused, "554 5.7.1 service unavailable; client [203.0.113.9] blocked using zen.example\r\n")
        // A DNS failure does not block mail; an answer outside 127/8 is not a listing.
        let failing = SMTPHarness(options: options)
        failing.dns = TestDNS(a: ["9.113.0.203.clean.example": ["192.0.2.1"]], failing: ["9.113.0.203.zen.example"])
        let greeting = await failing.start()
        XCTAssertEqual(greeting, "220 mx.example.org ESMTP Postern\r\n")
        // Without a DNS resolver the checks are skipped; trusted networks are never checked.
        let noDNS = SMTPHarness(options: options)
        let skipped = await noDNS.start()
        XCTAssertEqual(skipped, "220 mx.example.org ESMTP Postern\r\n")
        var trustedOptions = options
        trustedOptions.mynetworks = [IPNetwork("203.0.113.0/24")!]
        let trusted = SMTPHarness(options: trustedOptions)
        trusted.dns = listed.dns
        let trustedGreeting = await trusted.start()
        XCTAssertEqual(trustedGreeting, "220 mx.example.org ESMTP Postern\r\n")
    }

    func testReverseDNS() async throws {
        var options = SMTPOptions(mode: .mx)
        options.requireReverseDNS = true
        let none = SMTPHarness(options: options)
        none.dns = TestDNS()
        let missing = await none.start()
        XCTAssertEqual(missing, "554 5.7.25 reverse DNS of [203.0.113.9] is missing or does not match\r\n")
        let forged = SMTPHarness(options: options)
        forged.dns = TestDNS(a: ["mail.example.net": ["198.51.100.1"]], ptrs: ["203.0.113.9": ["mail.example.net."]])
        let mismatch = await forged.start()
        XCTAssertEqual(mismatch, "554 5.7.25 reverse DNS of [203.0.113.9] is missing or does not match\r\n")
        let broken = SMTPHarness(options: options)
        broken.dns = TestDNS(failing: ["203.0.113.9"])
        let temporary = await broken.start()
        XCTAssertEqual(temporary, "421 4.7.25 mx.example.org cannot verify the reverse DNS of [203.0.113.9], try again later\r\n<CLOSE>\r\n")
        // A confirmed name passes and appears in Received:.
        let good = SMTPHarness(options: options)
        good.dns = TestDNS(a: ["Mail.Example.NET": ["203.0.113.9"]], ptrs: ["203.0.113.9": ["Mail.Example.NET."]])
        let greeting = await good.start()
        XCTAssertEqual(greeting, "220 mx.example.org ESMTP Postern\r\n")
        _ = await good.send("EHLO mail.example.net")
        _ = await good.each(["MAIL FROM:<a@remote.example>", "RCPT TO:<alice@example.org>", "DATA"])
        _ = await good.send("x", ".")
        let text = try XCTUnwrap(good.queue.entries.first?.text)
        XCTAssertTrue(text.hasPrefix("Received: from mail.example.net (mail.example.net [203.0.113.9])\r\n"))
    }
}
