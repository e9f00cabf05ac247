import PluginAPI
@testable import PosternAuthKerberosCore
@testable import PosternSASLGSSAPICore
import XCTest

/// The pure parts of GSSAPI: RFC 4752's security-layer message, the principal map, and the
/// worker's relay state machine (fed authproxyd replies by hand; the real ones are in
/// KerberosLoginTests).
final class MechanismUnitTests: XCTestCase {
    func testSecurityLayerOfferAndChoice() {
        XCTAssertEqual(SecurityLayer.offer, [0x01, 0, 0, 0])
        XCTAssertEqual(try SecurityLayer.parseChoice([0x01, 0, 0, 0]).get(), .init(layer: 1, maximumSize: 0, authzid: nil))
        XCTAssertEqual(try SecurityLayer.parseChoice([0x01, 0x01, 0x00, 0x00] + Array("ann@example.org".utf8)).get(),
                       .init(layer: 1, maximumSize: 65536, authzid: "ann@example.org"))
        XCTAssertEqual(SecurityLayer.parseChoice([0x01, 0, 0]), .failure(.tooShort(3)))
        XCTAssertEqual(SecurityLayer.parseChoice([]), .failure(.tooShort(0)))
        // Integrity or confidentiality were not offered; several bits at once neither.
        XCTAssertEqual(SecurityLayer.parseChoice([0x02, 0, 0x10, 0]), .failure(.layerNotOffered(2)))
        XCTAssertEqual(SecurityLayer.parseChoice([0x04, 0, 0x10, 0]), .failure(.layerNotOffered(4)))
        XCTAssertEqual(SecurityLayer.parseChoice([0x07, 0, 0x10, 0]), .failure(.layerNotOffered(7)))
        XCTAssertEqual(SecurityLayer.parseChoice([0x01, 0, 0, 0, 0xff, 0xfe]), .failure(.authzidNotUTF8))
        XCTAssertEqual(SecurityLayer.parseChoice([0x01, 0, 0, 0, 0x61, 0x00]), .failure(.authzidNotUTF8))
        XCTAssertEqual(SecurityLayer.parseChoice([0x01, 0, 0, 0] + [UInt8](repeating: 0x61, count: 1025)), .failure(.authzidTooLong(1025)))
    }

    func testPrincipalMap() {
        let map = PrincipalMap(realms: ["POSTERN.TEST": "Example.ORG", "OTHER.TEST": "other.example"])
        XCTAssertEqual(map.account(forPrincipal: "ann@POSTERN.TEST"), "ann@example.org")
        XCTAssertEqual(map.account(forPrincipal: "Ann@POSTERN.TEST"), "ann@example.org")
        XCTAssertEqual(map.account(forPrincipal: "bob@OTHER.TEST"), "bob@other.example")
        XCTAssertNil(map.account(forPrincipal: "ann@postern.test"), "realms are case-sensitive")
        XCTAssertNil(map.account(forPrincipal: "ann@UNKNOWN.TEST"))
        XCTAssertNil(map.account(forPrincipal: "ann/admin@POSTERN.TEST"), "an instance is not a mail login")
        XCTAssertNil(map.account(forPrincipal: "imap/localhost@POSTERN.TEST"))
        XCTAssertNil(map.account(forPrincipal: "@POSTERN.TEST"))
        XCTAssertNil(map.account(forPrincipal: "ann"))
        XCTAssertNil(map.account(forPrincipal: "a@b@POSTERN.TEST"))
        XCTAssertEqual(map.principal(forUser: "ann@example.org"), "ann@POSTERN.TEST")
        XCTAssertEqual(map.principal(forUser: "ann@EXAMPLE.org"), "ann@POSTERN.TEST")
        XCTAssertNil(map.principal(forUser: "ann@elsewhere.example"))
        XCTAssertNil(map.principal(forUser: "ann"))
        XCTAssertNil(map.principal(forUser: "ann/admin@example.org"))
    }

    func testRelayWithoutInitialResponse() {
        var relay = GSSAPIRelay(service: "imap", hostname: "localhost")
        XCTAssertEqual(relay.start(initialResponse: nil), .step(.challenge([])))
        XCTAssertEqual(relay.respond([0x60, 1]), .ask(.gssStart(service: "imap", hostname: "localhost", token: [0x60, 1])))
        XCTAssertEqual(relay.reply(.success(.gssContinue(exchange: "e1", token: [0x6f]))), .step(.challenge([0x6f])))
        XCTAssertEqual(relay.respond([]), .ask(.gssStep(exchange: "e1", token: [])))
        XCTAssertEqual(relay.reply(.success(.gssContinue(exchange: "e1", token: [5, 4]))), .step(.challenge([5, 4])))
        XCTAssertEqual(relay.respond([9]), .ask(.gssStep(exchange: "e1", token: [9])))
        XCTAssertEqual(relay.reply(.success(.gssComplete(principal: "ann@R", user: "ann@example.org", authzid: nil))),
                       .checkAccount(user: "ann@example.org", principal: "ann@R", authzid: nil))
        XCTAssertEqual(relay.accountChecked(.exists("ann@example.org")), .success(SASLIdentity(user: "ann@example.org"), serverFinal: nil))
        XCTAssertEqual(relay.respond([1]), .step(.failure(.malformed("unexpected response"))))
    }

    func testRelayOutcomes() {
        func completed(authzid: String?, _ check: AccountCheck) -> SASLStep {
            var relay = GSSAPIRelay(service: "smtp", hostname: "localhost")
            _ = relay.start(initialResponse: [1])
            _ = relay.reply(.success(.gssComplete(principal: "ann@R", user: "ann@example.org", authzid: authzid)))
            return relay.accountChecked(check)
        }
        XCTAssertEqual(completed(authzid: "ann@example.org", .exists("ann@example.org")), .success(SASLIdentity(user: "ann@example.org"), serverFinal: nil))
        XCTAssertEqual(completed(authzid: "bob@example.org", .exists("ann@example.org")),
                       .success(SASLIdentity(user: "ann@example.org", authorizationIdentity: "bob@example.org"), serverFinal: nil))
        XCTAssertEqual(completed(authzid: nil, .absent), .failure(.authenticationFailed))
        XCTAssertEqual(completed(authzid: nil, .disabled), .failure(.accountDisabled))
        XCTAssertEqual(completed(authzid: nil, .unavailable("db")), .failure(.temporary("db")))

        func replied(_ r: Result<AuthProxyReply, AuthProxyClientError>) -> GSSAPIRelayAction {
            var relay = GSSAPIRelay(service: "imap", hostname: "localhost")
            _ = relay.start(initialResponse: [1])
            return relay.reply(r)
        }
        XCTAssertEqual(replied(.failure(.timeout)), .step(.failure(.temporary("authproxyd did not answer in time"))))
        XCTAssertEqual(replied(.failure(.closed)), .step(.failure(.temporary("authproxyd closed the connection before answering"))))
        XCTAssertEqual(replied(.success(.refused(.authenticationFailed, reason: "bad ticket"))), .step(.failure(.authenticationFailed)))
        XCTAssertEqual(replied(.success(.refused(.malformed, reason: "x"))), .step(.failure(.malformed("x"))))
        XCTAssertEqual(replied(.success(.refused(.temporary, reason: "kdc"))), .step(.failure(.temporary("authproxyd: kdc"))))
        XCTAssertEqual(replied(.success(.pong)), .step(.failure(.temporary("authproxyd answered a GSSAPI step with 133"))))
    }

    func testRelayRefusesOversizedAndOutOfOrderInput() {
        var relay = GSSAPIRelay(service: "imap", hostname: "localhost")
        XCTAssertEqual(relay.start(initialResponse: [UInt8](repeating: 1, count: GSSAPIRelay.maximumToken + 1)),
                       .step(.failure(.malformed("GSSAPI token too long"))))
        var empty = GSSAPIRelay(service: "imap", hostname: "localhost")
        _ = empty.start(initialResponse: nil)
        XCTAssertEqual(empty.respond([]), .step(.failure(.malformed("empty GSSAPI token"))))
        var twice = GSSAPIRelay(service: "imap", hostname: "localhost")
        _ = twice.start(initialResponse: [1])
        XCTAssertEqual(twice.start(initialResponse: [1]), .step(.failure(.malformed("exchange already started"))))
        var early = GSSAPIRelay(service: "imap", hostname: "localhost")
        XCTAssertEqual(early.reply(.success(.pong)), .step(.failure(.temporary("authproxyd reply without a request"))))
    }
}
