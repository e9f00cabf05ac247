import Foundation
import PluginAPI
@testable import PosternIMAPCore
import PosternTestSupport
import XCTest

/// A store behind an access proxy: the master user acts for an account (SASL PLAIN's
/// authorization identity) and the proxy names its client (ID x-originating-ip), both from
/// proxy_networks only.
final class ProxyLoginTests: XCTestCase {
    func plain(_ authzid: String, _ authcid: String, _ password: String) -> String {
        Data((authzid + "\u{0}" + authcid + "\u{0}" + password).utf8).base64EncodedString()
    }

    func testMasterLoginAndClientAddressFromProxyNetworksOnly() throws {
        let throttle = LoginThrottle(failureDelay: 0, maxFailures: 1, window: 60)
        let store = try SessionStore(users: ["alice@example.org", "proxy@example.org"], throttle: throttle, plugins: "[plugin.sasl-plain]")
        var settings = SessionClient.defaultSettings
        settings.masterUsers = ["proxy@example.org"]
        settings.proxyNetworks = [IPNetwork("127.0.0.0/8")!]

        // From the proxy network: the named client is the one a failure counts against.
        let failing = SessionClient(store, settings: settings)
        _ = failing.greeting()
        XCTAssertTrue(failing.command("i1 ID (\"x-originating-ip\" \"203.0.113.9\")").last?.hasPrefix("i1 OK") == true)
        XCTAssertTrue(failing.command("l1 LOGIN alice@example.org wrong").last?.hasPrefix("l1 NO") == true)
        XCTAssertFalse(try runBlocking { await throttle.allows("203.0.113.9") }, "the failure counted for the proxy's client")
        XCTAssertTrue(try runBlocking { await throttle.allows("127.0.0.1") }, "not for the proxy")

        let master = SessionClient(store, settings: settings)
        _ = master.greeting()
        let refused = master.command("a1 AUTHENTICATE PLAIN \(plain("proxy@example.org", "alice@example.org", "secret-alice"))")
        XCTAssertTrue(refused.last?.hasPrefix("a1 NO [AUTHORIZATIONFAILED]") == true, "alice is no master user: \(refused)")
        let nobody = master.command("a2 AUTHENTICATE PLAIN \(plain("nobody@example.org", "proxy@example.org", "secret-proxy"))")
        XCTAssertTrue(nobody.last?.hasPrefix("a2 NO [AUTHORIZATIONFAILED]") == true, "only for an account that exists: \(nobody)")
        let ok = master.command("a3 AUTHENTICATE PLAIN \(plain("alice@example.org", "proxy@example.org", "secret-proxy"))")
        XCTAssertTrue(ok.last?.hasPrefix("a3 OK") == true, "\(ok)")
        let namespace = master.command("n1 NAMESPACE")
        XCTAssertTrue(namespace.last?.hasPrefix("n1 OK") == true)

        // Outside the proxy networks: no master login, and ID names nobody.
        settings.proxyNetworks = [IPNetwork("192.0.2.0/24")!]
        let outside = SessionClient(store, settings: settings)
        _ = outside.greeting()
        let r = outside.command("a1 AUTHENTICATE PLAIN \(plain("alice@example.org", "proxy@example.org", "secret-proxy"))")
        XCTAssertTrue(r.last?.hasPrefix("a1 NO [AUTHORIZATIONFAILED]") == true, "\(r)")
    }
}
