import PosternTestSupport
import Foundation
import PluginAPI
import PosternHost
import XCTest
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore

/// The shipped files: `swift build` puts libPosternSASLPlain.so and libPosternSASLLogin.so beside
/// the test bundle, which is on the loader's search path. Loading them runs every check a worker
/// runs (ABI tag, no private copy of NIO, Crypto, ...), then the mechanisms they register are
/// driven through the auth service.
final class PluginFileTests: XCTestCase {
    struct NoTLS: TLSProvider {
        struct None: Error {}
        func serverContext(listener: String) -> NIOSSLContext? { nil }
        func clientContext() throws -> NIOSSLContext { throw None() }
    }

    private func mechanism(plugin name: String) throws -> (LoadedPlugin, any SASLMechanism) {
        let loader = PluginLoader(configuredPath: [])
        let file = try XCTUnwrap(loader.locate(name), "\(name) not built in \(loader.searchPath)")
        let loaded = try loader.load(file: file, expectedName: name).get()
        let context = PluginContext(pluginName: name, role: "all-in-one", logger: Logger(label: name), config: ConfigSection(),
                                    dataDirectory: NSTemporaryDirectory(), eventLoopGroup: EmbeddedEventLoop(),
                                    services: HostServices(tls: NoTLS()))
        let services = try loaded.registration.activate(context).services
        XCTAssertEqual(services.count, 1)
        guard case .saslMechanism(let m)? = services.first else { throw SystemError.message("\(name) registered no SASL mechanism") }
        return (loaded, m)
    }

    func testPlainPluginFile() async throws {
        let (loaded, plain) = try mechanism(plugin: "sasl-plain")
        XCTAssertTrue(loaded.file.hasSuffix("/libPosternSASLPlain.so"), loaded.file)
        XCTAssertEqual(loaded.manifest.kinds, [.saslMechanism])
        XCTAssertEqual(loaded.manifest.version, "1.0.0")
        XCTAssertEqual(plain.name, "PLAIN")
        XCTAssertTrue(plain.isPlaintext)
        let auth = AuthService(mechanisms: [plain], backends: [AuthRoundTripTests.backend])
        let x = try XCTUnwrap(auth.begin(mechanism: "PLAIN", context: context))
        let progress = await x.start(initialResponse: b("\0user@example.org\0pencil"))
        XCTAssertEqual(progress, .success(SASLIdentity(user: "user@example.org"), serverFinal: nil))
    }

    func testLoginPluginFile() async throws {
        let (loaded, login) = try mechanism(plugin: "sasl-login")
        XCTAssertTrue(loaded.file.hasSuffix("/libPosternSASLLogin.so"), loaded.file)
        XCTAssertEqual(loaded.manifest.kinds, [.saslMechanism])
        XCTAssertEqual(loaded.manifest.version, "1.0.0")
        XCTAssertEqual(login.name, "LOGIN")
        XCTAssertTrue(login.isPlaintext)
        let auth = AuthService(mechanisms: [login], backends: [AuthRoundTripTests.backend])
        let x = try XCTUnwrap(auth.begin(mechanism: "LOGIN", context: context))
        let first = await x.start(initialResponse: b("user@example.org"))
        XCTAssertEqual(first, .challenge(b("Password:")))
        let result = await x.respond(b("nope"))
        XCTAssertEqual(result, .failure(.authenticationFailed))
    }
}
