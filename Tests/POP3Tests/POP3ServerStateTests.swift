import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternPOP3Core
@testable import PosternSASLPlainCore

/// The POP3 session without sockets: bytes in, outputs out, on the real store (opened as
/// `postern admin` opens it). The NIO driver is covered by the interop tests (poplib, fetchmail).
final class POP3ServerStateTests: XCTestCase {
    final class Pauses: @unchecked Sendable {  // written by the state machine's calls, one at a time
        var seconds: [Double] = []
    }

    struct Harness {
        let fixture: StoreFixture
        let state: POP3ServerState
        let pauses: Pauses

        init(_ name: String, secure: Bool = false, loopbackPlaintext: Bool = false, offersTLS: Bool = true,
             maxErrors: Int = 20, store: Bool = true, failureDelay: Double = 2, peer: String = "192.0.2.7",
             masterUsers: Set<String> = [], proxyNetworks: [String] = [], mechanisms: [any SASLMechanism] = []) throws {
            fixture = try StoreFixture(name)
            let pauses = Pauses()
            self.pauses = pauses
            var options = POP3Options(maxLineLength: 255, maxErrors: maxErrors, allowPlaintextOnLoopback: loopbackPlaintext)
            options.masterUsers = masterUsers
            options.proxyNetworks = proxyNetworks.compactMap(IPNetwork.init)
            var env = POP3Environment(
                hostname: "pop.example.org",
                options: options,
                auth: AuthService(mechanisms: mechanisms, backends: [fixture.credentials]),
                store: store ? fixture.store : nil,
                throttle: LoginThrottle(failureDelay: failureDelay, maxFailures: 100, window: 60),
                locks: try MaildropLocks(directory: fixture.dir.path + "/locks"),
                peerAddress: peer, isLoopback: loopbackPlaintext, offersTLS: offersTLS,
                logger: Logger(label: "pop3-test"), failedLogins: Counter(label: "pop3_test_failures"))
            env.pause = { seconds in pauses.seconds.append(seconds) }
            state = POP3ServerState(env: env, isSecure: secure)
        }

        /// The outputs of one batch of input, with the sent bytes as text.
        func send(_ text: String) async -> [String] {
            await state.receive(Array(text.utf8)).map {
                switch $0 {
                case .send(let bytes): return String(decoding: bytes, as: UTF8.self)
                case .startTLS: return "<starttls>"
                case .close: return "<close>"
                }
            }
        }
    }

    func testGreetingAndCapabilitiesFollowTLS() async throws {
        let h = try Harness("pop3-capa")
        XCTAssertEqual(h.state.greeting(), [.send(Array("+OK pop.example.org POP3 Postern ready\r\n".utf8))])
        let plain = await h.send("CAPA\r\n").joined()
        XCTAssertTrue(plain.contains("STLS\r\n"), plain)
        XCTAssertFalse(plain.contains("USER\r\n"), "no plaintext login offered without TLS off loopback: \(plain)")
        // STLS, with a command pipelined behind it in plaintext: that command is dropped.
        await assertEqual(await h.send("STLS\r\nCAPA\r\n"), ["+OK begin TLS negotiation\r\n", "<starttls>"])
        h.state.tlsStarted()
        let secure = await h.send("CAPA\r\n").joined()
        XCTAssertTrue(secure.contains("USER\r\n") && !secure.contains("STLS\r\n"), secure)
    }

    func testPlaintextRefusalsBadCommandsAndLimits() async throws {
        let h = try Harness("pop3-errors", maxErrors: 3)
        await assertEqual(await h.send("USER ann\r\n"), ["-ERR [AUTH] plaintext authentication disallowed without TLS\r\n"])
        await assertEqual(await h.send("STAT\r\n"), ["-ERR command not valid in this state\r\n"])
        // Split across batches, a line is read whole; the third error closes.
        await assertEqual(await h.send("XYZ"), [])
        await assertEqual(await h.send("ZY\r\n"), ["-ERR unknown command XYZZY\r\n", "-ERR too many errors\r\n", "<close>"])
        await assertEqual(await h.send("NOOP\r\n"), [], "nothing is read after the close")
        let long = try Harness("pop3-long")
        await assertEqual(await long.send(String(repeating: "A", count: 300)), ["-ERR line too long\r\n"])
    }

    /// An access proxy's login: XCLIENT names the client, the master user acts for an account;
    /// neither is taken from elsewhere, and no one else may act for another.
    func testMasterLoginAndXCLIENTFromProxyNetworksOnly() async throws {
        func plain(_ authzid: String, _ authcid: String, _ password: String) -> String {
            Data((authzid + "\u{0}" + authcid + "\u{0}" + password).utf8).base64EncodedString()
        }
        let proxied = try Harness("pop3-master", secure: true, failureDelay: 0, peer: "192.0.2.7", masterUsers: ["proxy@example.org"],
                                  proxyNetworks: ["192.0.2.0/24"], mechanisms: [PlainMechanism()])
        try await proxied.fixture.populate(users: ["ann", "proxy"])
        await assertEqual(await proxied.send("XCLIENT ADDR=203.0.113.9 PORT=4242\r\n"), ["+OK\r\n"])
        await assertEqual(await proxied.send("XCLIENT ADDR=198.51.100.1\r\n"), ["+OK\r\n"],
                          "judged on the connection's address, not the one XCLIENT named")
        await assertEqual(await proxied.send("AUTH PLAIN \(plain("nobody@example.org", "proxy@example.org", "secret-proxy"))\r\n"),
                          ["-ERR [AUTH] authorization failed\r\n"], "only for an account that exists")
        await assertEqual(await proxied.send("AUTH PLAIN \(plain("proxy@example.org", "ann@example.org", "secret-ann"))\r\n"),
                          ["-ERR [AUTH] authorization failed\r\n"], "ann is no master user")
        await assertEqual(await proxied.send("AUTH PLAIN \(plain("ann@example.org", "proxy@example.org", "secret-proxy"))\r\n"),
                          ["+OK logged in, 0 messages\r\n"])

        let elsewhere = try Harness("pop3-master-elsewhere", secure: true, failureDelay: 0, peer: "198.51.100.1", masterUsers: ["proxy@example.org"],
                                    proxyNetworks: ["192.0.2.0/24"], mechanisms: [PlainMechanism()])
        try await elsewhere.fixture.populate(users: ["ann", "proxy"])
        await assertEqual(await elsewhere.send("XCLIENT ADDR=203.0.113.9\r\n"), ["-ERR XCLIENT is for access proxies\r\n"])
        await assertEqual(await elsewhere.send("AUTH PLAIN \(plain("ann@example.org", "proxy@example.org", "secret-proxy"))\r\n"),
                          ["-ERR [AUTH] authorization failed\r\n"], "a master login from outside the proxy networks")
    }

    func testWrongPasswordWaitsAndNamesNothing() async throws {
        let h = try Harness("pop3-wrong", secure: true)
        try await h.fixture.populate(users: ["ann"])
        await assertEqual(await h.send("USER ann@example.org\r\nPASS nope\r\n"), ["+OK\r\n", "-ERR [AUTH] authentication failed\r\n"])
        XCTAssertEqual(h.pauses.seconds, [2], "the reply waited for the failure delay")
        // An unknown user gets the same answer.
        await assertEqual(await h.send("USER bob@example.org\r\nPASS x\r\n"), ["+OK\r\n", "-ERR [AUTH] authentication failed\r\n"])
    }

    func testTransactionAndUpdateOnTheStore() async throws {
        let h = try Harness("pop3-flow", secure: true, failureDelay: 0)
        try await h.fixture.populate(users: ["ann"])
        let ann = "ann@example.org"
        for subject in ["one", "two", "three"] {
            _ = try await h.fixture.store.append(user: ann, mailbox: "INBOX", message: message(subject, body: "Hi\r\n.dot line\r\n"),
                                                 flags: [], internalDate: nil)
        }
        let login = await h.send("USER \(ann)\r\nPASS secret-ann\r\n")
        XCTAssertEqual(login, ["+OK\r\n", "+OK logged in, 3 messages\r\n"])
        let stat = await h.send("STAT\r\n")
        XCTAssertTrue(stat.first?.hasPrefix("+OK 3 ") == true, "\(stat)")
        let uidl = await h.send("UIDL 2\r\n")
        guard case .transaction(_, let validity, _, _) = h.state.phase else { return XCTFail("not in TRANSACTION") }
        XCTAssertEqual(uidl, ["+OK 2 \(POP3ServerState.uidl(2, validity))\r\n"])
        // RETR dot-stuffs the line that starts with a dot and ends with the terminator.
        let retr = await h.send("RETR 1\r\n").joined()
        XCTAssertTrue(retr.hasPrefix("+OK message follows\r\n") && retr.contains("\r\n..dot line\r\n") && retr.hasSuffix("\r\n.\r\n"), retr)
        await assertEqual(await h.send("DELE 2\r\nDELE 2\r\nLIST\r\n"),
                          ["+OK message 2 deleted\r\n", "-ERR no such message\r\n", "+OK 2 messages\r\n",
                           "1 \(try await h.fixture.store.messages(user: ann, mailbox: "INBOX", uids: 1...1)[0].size)\r\n",
                           "3 \(try await h.fixture.store.messages(user: ann, mailbox: "INBOX", uids: 3...3)[0].size)\r\n", ".\r\n"])
        // A second session for the same maildrop is refused while this one holds it.
        let other = POP3ServerState(env: POP3Environment(
            hostname: "pop.example.org", options: POP3Options(), auth: AuthService(mechanisms: [], backends: [h.fixture.credentials]),
            store: h.fixture.store, throttle: LoginThrottle(failureDelay: 0), locks: try MaildropLocks(directory: h.fixture.dir.path + "/locks"),
            peerAddress: "192.0.2.8", isLoopback: false, offersTLS: false, logger: Logger(label: "pop3-test"),
            failedLogins: Counter(label: "pop3_test_failures")), isSecure: true)
        let refused = await other.receive(Array("USER \(ann)\r\nPASS secret-ann\r\n".utf8))
        XCTAssertEqual(refused.last, .send(Array("-ERR [IN-USE] the maildrop is in use by another POP3 session\r\n".utf8)))
        // QUIT: message 2 expunged, message 1 (retrieved) marked \Seen.
        await assertEqual(await h.send("QUIT\r\n"), ["+OK pop.example.org POP3 bye (1 messages deleted)\r\n", "<close>"])
        let left = try await h.fixture.store.messages(user: ann, mailbox: "INBOX", uids: 1...UInt32.max)
        XCTAssertEqual(left.map(\.uid), [1, 3])
        XCTAssertEqual(left.first?.flags, ["\\Seen"])
    }

    func testDrainAndLostConnectionLeaveWithoutUpdate() async throws {
        let h = try Harness("pop3-drain", secure: true, failureDelay: 0)
        try await h.fixture.populate(users: ["ann"])
        _ = try await h.fixture.store.append(user: "ann@example.org", mailbox: "INBOX", message: message("x"), flags: [], internalDate: nil)
        _ = await h.send("USER ann@example.org\r\nPASS secret-ann\r\nDELE 1\r\n")
        XCTAssertEqual(h.state.drain(), [.send(Array("-ERR [SYS/TEMP] server shutting down, try again\r\n".utf8)), .close])
        XCTAssertEqual(h.state.drain(), [], "one goodbye")
        await assertEqual(try await h.fixture.store.messages(user: "ann@example.org", mailbox: "INBOX", uids: 1...UInt32.max).count, 1,
                          "no UPDATE without QUIT")
        // The maildrop lock went with the session.
        XCTAssertNotNil(try MaildropLocks(directory: h.fixture.dir.path + "/locks").lock("ann@example.org"))
    }

    func testNoStoreIsATemporaryFailure() async throws {
        let h = try Harness("pop3-nostore", secure: true, store: false, failureDelay: 0)
        try await h.fixture.populate(users: ["ann"])
        await assertEqual(await h.send("USER ann@example.org\r\nPASS secret-ann\r\n"),
                          ["+OK\r\n", "-ERR [SYS/TEMP] no message store\r\n", "<close>"])
    }
}
