import Foundation
import PluginAPI
@testable import PosternAccessProxyCore
import XCTest

/// The proxy's command reader byte by byte (literals, SASL-IR, responses, malformed input, what
/// stays unread after a login) and its router.
final class ProxyPartsTests: XCTestCase {
    typealias R = ProxyCommandReader

    func feed(_ text: String, _ reader: inout R) -> [R.Event] { reader.feed(Array(text.utf8)) }

    func testCommandsBeforeLogin() {
        var r = R()
        XCTAssertEqual(feed("a CAPABILITY\r\nb noop\r\nc ID (\"name\" \"x\")\r\nd LOGOUT\r\n", &r),
                       [.command(.capability("a")), .command(.noop("b")), .command(.id("c")), .command(.logout("d"))])
        XCTAssertEqual(feed("e SELECT INBOX\r\nf FROB\r\n", &r), [.command(.needsLogin("e", "SELECT")), .command(.bad("f", "Unknown command."))])
        XCTAssertEqual(feed("\r\n", &r), [.command(.bad(nil, "Error in IMAP command received by server."))])
        XCTAssertEqual(feed("g\r\n", &r), [.command(.bad("g", "Error in IMAP command received by server."))])
        XCTAssertEqual(feed("h CAPABILITY extra\r\n", &r), [.command(.bad("h", "CAPABILITY takes no arguments."))])
    }

    func testLoginWithQuotedStringsAndLiterals() {
        var r = R()
        XCTAssertEqual(feed("a LOGIN \"al ice\" \"p\\\"w\\\\d\"\r\n", &r), [.command(.login("a", user: "al ice", password: "p\"w\\d"))])
        _ = r.feed([])
        // A synchronizing literal: the client waits for "+" before sending it.
        XCTAssertEqual(feed("b LOGIN {5}\r\n", &r), [.continueLiteral])
        XCTAssertEqual(feed("alice {3}\r\n", &r), [.continueLiteral])
        XCTAssertEqual(feed("p w\r\n", &r), [.command(.login("b", user: "alice", password: "p w"))])
        _ = r.feed([])
        // LITERAL+ sends it at once, split anywhere.
        var events: [R.Event] = []
        for byte in Array("c LOGIN {5+}\r\nalice {2+}\r\npw\r\n".utf8) { events += r.feed([byte]) }
        XCTAssertEqual(events, [.command(.login("c", user: "alice", password: "pw"))])
        XCTAssertEqual(feed("d LOGIN alice\r\n", &r), [.command(.bad("d", "LOGIN needs a user name and a password."))])
        XCTAssertEqual(feed("e LOGIN {99999}\r\n", &r), [.command(.bad("e", "Literal too big."))])
    }

    func testWhatFollowsALoginStaysForTheBackEnd() {
        var r = R()
        XCTAssertEqual(feed("a LOGIN alice pw\r\nb SELECT INBOX\r\nc FETCH 1 (FLAGS)\r\n", &r),
                       [.command(.login("a", user: "alice", password: "pw"))])
        XCTAssertEqual(String(decoding: r.takeBuffered(), as: UTF8.self), "b SELECT INBOX\r\nc FETCH 1 (FLAGS)\r\n")
        XCTAssertEqual(r.feed([]), [], "nothing left")
    }

    func testAuthenticateWithInitialResponseAndExchange() {
        var r = R()
        let plain = Data("\u{0}alice\u{0}pw".utf8).base64EncodedString()
        XCTAssertEqual(feed("a AUTHENTICATE plain \(plain)\r\n", &r),
                       [.command(.authenticate("a", mechanism: "PLAIN", initial: Array("\u{0}alice\u{0}pw".utf8)))])
        XCTAssertEqual(feed("b AUTHENTICATE PLAIN =\r\n", &r), [.command(.authenticate("b", mechanism: "PLAIN", initial: []))])
        XCTAssertEqual(feed("c AUTHENTICATE PLAIN\r\n", &r), [.command(.authenticate("c", mechanism: "PLAIN", initial: nil))])
        r.expectingAuthenticationResponse = true
        XCTAssertEqual(feed("\(plain)\r\n", &r), [.authenticationResponse(Array("\u{0}alice\u{0}pw".utf8))])
        r.expectingAuthenticationResponse = true
        XCTAssertEqual(feed("*\r\n", &r), [.authenticationResponse(nil)])
        r.expectingAuthenticationResponse = true
        XCTAssertEqual(feed("not base64!\r\n", &r), [.badAuthenticationResponse])
        XCTAssertEqual(feed("d AUTHENTICATE PLAIN ***\r\n", &r), [.command(.bad("d", "Invalid base64 in the initial response."))])
    }

    func testOverlongInputIsRefusedAndForgotten() {
        var r = R()
        XCTAssertEqual(r.feed(Array(repeating: 0x41, count: 9000)), [.command(.bad(nil, "Line too long."))])
        XCTAssertEqual(feed("a NOOP\r\n", &r), [.command(.noop("a"))], "the reader goes on after a refusal")
    }

    func testRoutes() async throws {
        let s1 = Backend(name: "s1", host: "10.0.0.1", port: 143, tls: .none, verifyCertificate: true)
        let s2 = Backend(name: "s2", host: "10.0.0.2", port: 993, tls: .implicit, verifyCertificate: true)
        let router = BackendRouter(backends: [s1, s2], entries: ["alice@a.example": "s2", "@b.example": "s1"], tables: [], hashUnlisted: true)
        let none = Directory(tables: [])
        let alice = try await router.route("Alice@A.example", directory: none)
        let bob = try await router.route("bob@b.example", directory: none)
        XCTAssertEqual(alice, .backend(s2))
        XCTAssertEqual(bob, .backend(s1))
        XCTAssertEqual(router.resolve("10.0.0.2:993"), .backend(s2))
        XCTAssertEqual(router.resolve("nowhere"), .unknown("nowhere"))
        // Hashing spreads users and keeps each where it was.
        var counts: [String: Int] = [:]
        for i in 0..<1000 {
            guard case .backend(let b) = try await router.route("user\(i)@c.example", directory: none) else { return XCTFail() }
            counts[b.name, default: 0] += 1
            let again = try await router.route("user\(i)@c.example", directory: none)
            XCTAssertEqual(again, .backend(b))
        }
        XCTAssertGreaterThan(counts["s1"] ?? 0, 400)
        XCTAssertGreaterThan(counts["s2"] ?? 0, 400)
        // A third back end takes only users from the others, about a third of them.
        let s3 = Backend(name: "s3", host: "10.0.0.3", port: 143, tls: .none, verifyCertificate: true)
        var moved = 0
        for i in 0..<1000 {
            let before = BackendRouter.rendezvous("user\(i)@c.example", [s1, s2])!, after = BackendRouter.rendezvous("user\(i)@c.example", [s1, s2, s3])!
            if before != after { moved += 1; XCTAssertEqual(after, s3) }
        }
        XCTAssertTrue((200...450).contains(moved), "\(moved)")
        // A store added with `hashed = false` takes nobody unlisted; a user routed there by name goes there.
        var joining = s3
        joining.hashed = false
        let grown = BackendRouter(backends: [s1, s2, joining], entries: ["new@c.example": "s3"], tables: [], hashUnlisted: true)
        for i in 0..<1000 {
            let route = try await grown.route("user\(i)@c.example", directory: none)
            XCTAssertEqual(route, .backend(BackendRouter.rendezvous("user\(i)@c.example", [s1, s2])!), "user\(i) stays where it was")
        }
        let newcomer = try await grown.route("new@c.example", directory: none)
        XCTAssertEqual(newcomer, .backend(joining))
        let strict = BackendRouter(backends: [s1], entries: [:], tables: [], hashUnlisted: false)
        let unlisted = try await strict.route("x@y.example", directory: none)
        XCTAssertEqual(unlisted, .none)
    }

    /// Back ends of one group serve the same accounts: a route may name the group, and a login
    /// goes on to the group's other members, in an order stable per user.
    func testGroupsAndTheirCandidates() async throws {
        var n1 = Backend(name: "n1", host: "10.0.1.1", port: 143, tls: .none, verifyCertificate: true)
        var n2 = Backend(name: "n2", host: "10.0.1.2", port: 143, tls: .none, verifyCertificate: true)
        let solo = Backend(name: "solo", host: "10.0.2.1", port: 143, tls: .none, verifyCertificate: true)
        n1.group = "pg1"
        n2.group = "pg1"
        let router = BackendRouter(backends: [n1, n2, solo], entries: ["@a.example": "pg1", "bob@b.example": "n2"], tables: [], hashUnlisted: false)
        let none = Directory(tables: [])
        var firsts = Set<String>()
        for i in 0..<200 {
            guard case .backend(let primary) = try await router.route("user\(i)@a.example", directory: none) else { return XCTFail() }
            XCTAssertEqual(primary.group, "pg1")
            firsts.insert(primary.name)
            let candidates = router.candidates(primary, user: "user\(i)@a.example")
            XCTAssertEqual(Set(candidates.map(\.name)), ["n1", "n2"])
            XCTAssertEqual(candidates, router.candidates(primary, user: "USER\(i)@a.example"), "the same order whatever the case")
        }
        XCTAssertEqual(firsts, ["n1", "n2"], "the group's accounts are spread over its nodes")
        let bob = try await router.route("bob@b.example", directory: none)
        XCTAssertEqual(bob, .backend(n2))
        XCTAssertEqual(router.candidates(n2, user: "bob@b.example").map(\.name), ["n2", "n1"], "named: that node first")
        XCTAssertEqual(router.candidates(solo, user: "x@y.example"), [solo], "no group: no other")
    }

    /// Down back ends go last: a login tries the ones up first, and still the others after.
    func testBackendHealth() {
        let a = Backend(name: "a", host: "10.0.0.1", port: 143, tls: .none, verifyCertificate: true)
        let b = Backend(name: "b", host: "10.0.0.2", port: 143, tls: .none, verifyCertificate: true)
        let health = BackendHealth()
        XCTAssertEqual(health.order([a, b]), [a, b])
        health.failed("a")
        XCTAssertTrue(health.isDown("a"))
        XCTAssertEqual(health.order([a, b]), [b, a], "the one up first")
        health.failed("b")
        XCTAssertEqual(health.order([a, b]), [a, b], "both down: both tried, in the route's order")
        health.succeeded("b")
        XCTAssertFalse(health.isDown("b"))
        XCTAssertEqual(health.order([a, b]), [b, a])
    }

    func testTheIMAPLoginAtTheBackEnd() {
        let master = BackendLogin.Credential(user: "proxy@p.example", password: "pw")
        let plain = Data("alice@a.example\u{0}proxy@p.example\u{0}pw".utf8).base64EncodedString()
        let script = IMAPLoginScript(user: "alice@a.example", master: master, client: ("203.0.113.9", 4242), wantsTLS: true)
        XCTAssertEqual(script.handle("* OK ready"), [.send("P0 STARTTLS")])
        XCTAssertEqual(script.handle("P0 OK go"), [.startTLS, .send("P1 ID (\"x-originating-ip\" \"203.0.113.9\" \"x-originating-port\" \"4242\" \"x-proxy\" \"postern\")")])
        XCTAssertEqual(script.handle("* ID NIL"), [])
        XCTAssertEqual(script.handle("P1 OK"), [.send("P2 AUTHENTICATE PLAIN \(plain)")])
        XCTAssertEqual(script.handle("P2 OK [CAPABILITY IMAP4rev1 MOVE] Logged in"), [.succeed("IMAP4rev1 MOVE")])
        // No capabilities in the OK: asked for.
        let asks = IMAPLoginScript(user: "a", master: master, client: ("::1", 1), wantsTLS: false)
        _ = asks.handle("* OK ready")
        _ = asks.handle("P1 OK")
        XCTAssertEqual(asks.handle("P2 OK done"), [.send("P3 CAPABILITY")])
        XCTAssertEqual(asks.handle("* CAPABILITY IMAP4rev1 IDLE"), [])
        XCTAssertEqual(asks.handle("P3 OK"), [.succeed("IMAP4rev1 IDLE")])
        // Refusals.
        let refused = IMAPLoginScript(user: "a", master: master, client: ("::1", 1), wantsTLS: false)
        _ = refused.handle("* OK ready")
        _ = refused.handle("P1 OK")
        XCTAssertEqual(refused.handle("P2 NO [AUTHORIZATIONFAILED] no"), [.fail(.refused("P2 NO [AUTHORIZATIONFAILED] no"))])
        XCTAssertEqual(IMAPLoginScript(user: "a", master: master, client: ("::1", 1), wantsTLS: false).handle("* BYE busy"),
                       [.fail(.unavailable("the back end said: * BYE busy"))])
        XCTAssertEqual(IMAPLoginScript(user: "a", master: master, client: ("::1", 1), wantsTLS: false).handle("* PREAUTH hi"),
                       [.fail(.unavailable("unexpected greeting: * PREAUTH hi"))])
    }

    func testThePOP3LoginAtTheBackEnd() {
        let master = BackendLogin.Credential(user: "proxy@p.example", password: "pw")
        let plain = Data("bob@b.example\u{0}proxy@p.example\u{0}pw".utf8).base64EncodedString()
        let script = POP3LoginScript(user: "bob@b.example", master: master, client: ("203.0.113.9", 4242), wantsTLS: true)
        XCTAssertEqual(script.handle("+OK ready"), [.send("STLS")])
        XCTAssertEqual(script.handle("+OK go"), [.startTLS, .send("XCLIENT ADDR=203.0.113.9 PORT=4242")])
        XCTAssertEqual(script.handle("-ERR not for you"), [.send("AUTH PLAIN \(plain)")], "a back end without XCLIENT still takes the login")
        XCTAssertEqual(script.handle("+OK logged in"), [.succeed("")])
        let refused = POP3LoginScript(user: "bob@b.example", master: master, client: ("::1", 1), wantsTLS: false)
        XCTAssertEqual(refused.handle("+OK ready"), [.send("XCLIENT ADDR=::1 PORT=1")])
        _ = refused.handle("+OK")
        XCTAssertEqual(refused.handle("-ERR [AUTH] authorization failed"), [.fail(.refused("-ERR [AUTH] authorization failed"))])
    }
}
