import Foundation
import PluginAPI
@testable import PosternFilterRulesCore
import XCTest

/// Messages as bytes (CRLF line ends, as the filter gets them), rule sets from TOML text, and a
/// DNS resolver with fixed answers, for the unit tests.
enum Fixture {
    /// `text` with LF turned into CRLF.
    static func bytes(_ text: String) -> [UInt8] { Array(text.replacingOccurrences(of: "\n", with: "\r\n").utf8) }

    static func connection(peer: String = "192.0.2.10", hostname: String? = "client.example.net", helo: String? = "client.example.net",
                           direction: FilterDirection = .inbound, user: String? = nil) -> FilterConnection {
        var c = FilterConnection(peerAddress: peer, peerHostname: hostname, listener: "mx", direction: direction, isSecure: false,
                                 authenticatedUser: user)
        c.heloName = helo
        return c
    }

    static func message(_ text: String, sender: String = "someone@example.net", recipients: [String] = ["user@example.org"],
                        connection: FilterConnection = connection()) -> FilterMessage {
        var m = FilterMessage(bytes: bytes(text), sender: sender, recipients: recipients, connection: connection)
        m.helo = connection.heloName
        return m
    }

    static func facts(_ message: FilterMessage, trusted: [String] = ["127.0.0.0/8"], maxScanBytes: Int = 1 << 20) -> MessageFacts {
        MessageFacts(message, trustedNetworks: trusted.compactMap(IPNetwork.init), maxScanBytes: maxScanBytes, maxURIHosts: 20)
    }

    /// One rule from the TOML lines of its table (name and score are added).
    static func rule(_ lines: String, name: String = "T") throws -> Rule {
        let sets = try RuleFile.sets(text: "[[sets]]\nname = \"s\"\ntag = 5.0\n[[sets.rules]]\nname = \"\(name)\"\nscore = 1.0\n\(lines)\n",
                                     origin: "test", defaults: [])
        return try XCTUnwrap(sets.first?.rules.first)
    }

    /// Whether the rule of `lines` hits `message`.
    static func hits(_ lines: String, _ message: FilterMessage, listed: Set<String> = [], trusted: [String] = ["127.0.0.0/8"]) throws -> Bool {
        let rule = try rule(lines)
        return !RuleEvaluator.hits([rule], facts: facts(message, trusted: trusted), listed: listed).isEmpty
    }

    static let plain = """
        Received: from client.example.net ([192.0.2.10]) by mx.example.org
        Date: Tue, 1 Jul 2003 10:52:37 +0200
        Message-ID: <1234@client.example.net>
        From: Sender <someone@example.net>
        To: user@example.org
        Subject: Lunch on Friday

        Shall we meet at noon?

        """
}

/// A resolver that answers A questions from a table, counts questions and the most in flight at
/// once, and waits `delay` before each answer.
final class FixedResolver: DNSResolver, @unchecked Sendable {
    let answers: [String: [String]]
    let failing: Set<String>
    let delay: UInt64
    private let lock = NSLock()
    private var inFlight = 0
    private(set) var maxInFlight = 0
    private(set) var asked: [String] = []

    init(_ answers: [String: [String]], failing: Set<String> = [], delayMilliseconds: UInt64 = 0) {
        self.answers = answers
        self.failing = failing
        self.delay = delayMilliseconds * 1_000_000
    }

    func addresses(_ host: String) async throws -> [String] {
        lock.withLock {
            asked.append(host)
            inFlight += 1
            maxInFlight = max(maxInFlight, inFlight)
        }
        if delay > 0 { try? await Task.sleep(nanoseconds: delay) }
        lock.withLock { inFlight -= 1 }
        if failing.contains(host) { throw DNSError.temporary("SERVFAIL from the test") }
        guard let a = answers[host] else { throw DNSError.notFound }
        return a
    }

    func mx(_ domain: String) async throws -> [MXRecord] { [] }
    func txt(_ name: String) async throws -> [String] { [] }
    func ptr(_ address: String) async throws -> [String] { [] }
}
