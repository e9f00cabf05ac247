import PluginAPI
import XCTest
@testable import PosternHelloCore

// A plugin's core is tested directly: here the manifest and its config schema, as the host will
// validate `[plugin.hello]` and the listener options.
final class HelloTests: XCTestCase {
    func testManifestDeclaresTheServiceAndItsConfig() {
        let manifest = HelloRegistration.registration.manifest
        XCTAssertEqual(manifest.name, "hello")
        XCTAssertEqual(manifest.kinds, [.protocolService])
        XCTAssertEqual(manifest.config.applyingDefaults(to: [:])["greeting"], .string("hello from a third-party plugin"))
        XCTAssertEqual(manifest.config.validate(["greting": .string("x")]).count, 1, "unknown keys are refused")
        XCTAssertEqual(manifest.protocols["hello"]?.validate(["max_line": .integer(8)]).count, 1, "max_line below 16 is refused")
    }
}
