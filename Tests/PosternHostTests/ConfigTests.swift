import PluginAPI
import PosternHost
import XCTest

final class ConfigTests: XCTestCase {
    func parse(_ text: String) -> Result<HostConfig, ConfigDiagnostics> {
        HostConfig.parse(source: text, file: "test.toml")
    }

    func errors(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        switch parse(text) {
        case .success: XCTFail("expected errors", file: file, line: line); return []
        case .failure(let d): return d.all.map(\.description)
        }
    }

    let listener = """
        [[listener]]
        name = "smtp"
        address = "127.0.0.1"
        port = 2525
        protocol = "greeter"
        """

    func testValidConfigWithDefaults() throws {
        let config = try parse("role = \"gateway\"\n" + listener).get()
        XCTAssertEqual(config.role, "gateway")
        XCTAssertEqual(config.workers, 1)
        XCTAssertEqual(config.drainTimeout, 30)
        XCTAssertEqual(config.listeners.first?.tls, TLSMode.none)
        XCTAssertEqual(config.listeners.first?.backlog, 511)
        XCTAssertEqual(config.requestedPlugins, ["greeter"])
        XCTAssertTrue(config.controlSocket.hasSuffix("/var/run/postern.sock"))
    }

    func testSyntaxErrorNamesLine() {
        XCTAssertEqual(errors("role = \"gateway\"\nworkers = = 2\n").first?.hasPrefix("test.toml:2: TOML syntax error"), true)
    }

    func testUnknownKeyNamesLineAndKnownKeys() {
        let e = errors("role = \"store\"\n\n[log]\nlevell = \"debug\"\n")
        XCTAssertEqual(e.count, 1)
        XCTAssertTrue(e[0].hasPrefix("test.toml:4: log.levell: unknown key 'levell' (known keys: level)"), e[0])
    }

    func testWrongTypeInArrayOfTables() {
        let e = errors(listener + "\n\n[[listener]]\nname = \"b\"\naddress = \"127.0.0.1\"\nport = \"25\"\nprotocol = \"greeter\"\n")
        XCTAssertEqual(e, ["test.toml:10: listener[1].port: expected integer in 1...65535, found string \"25\""])
    }

    func testOutOfRangeAndEnum() {
        let e = errors("workers = 0\nrole = \"toaster\"\n")
        XCTAssertTrue(e.contains("test.toml:2: role: expected one of \"all-in-one\", \"gateway\", \"relay\", \"store\", \"proxy\", \"webmail\", \"admin\", found string \"toaster\""), "\(e)")
        XCTAssertTrue(e.contains("test.toml:1: workers: expected integer in 1...64, found integer 0"), "\(e)")
    }

    func testMissingRequiredKey() {
        let e = errors("[[listener]]\nname = \"x\"\naddress = \"127.0.0.1\"\nprotocol = \"greeter\"\n")
        XCTAssertEqual(e, ["test.toml:1: listener[0].port: a listener needs 'address' and 'port', or 'path' for a Unix socket"])
        let e2 = errors("[[listener]]\nname = \"x\"\nprotocol = \"greeter\"\n")
        XCTAssertEqual(e2, ["test.toml:1: listener[0].address: a listener needs 'address' and 'port', or 'path' for a Unix socket"])
        let e3 = errors("[[listener]]\nname = \"x\"\nport = 25\npath = \"/tmp/x.sock\"\nprotocol = \"lmtp\"\n")
        XCTAssertEqual(e3, ["test.toml:4: listener[0].path: a listener has either 'path' or 'address' and 'port', not both"])
        let e4 = errors("[[listener]]\nname = \"x\"\nprotocol = \"p\"\n[[listener]]\nname = \"y\"\nprotocol = \"p\"\npath = \"/tmp/y.sock\"\n")
        XCTAssertEqual(e4.count, 1, "a Unix listener needs no address: \(e4)")
    }

    /// `protocol = "lmtp"` keeps meaning LMTP now that the smtp plugin serves it: the listener gets
    /// that plugin and its `lmtp` service, `[plugins] load` maps the same way, and a `[plugin.lmtp]`
    /// section is refused with where its settings went.
    func testProtocolServedByAnotherPlugin() throws {
        let config = try parse("[plugins]\nload = [\"lmtp\"]\n[[listener]]\nname = \"lmtp\"\naddress = \"127.0.0.1\"\nport = 2424\nprotocol = \"lmtp\"\n").get()
        XCTAssertEqual(config.listeners.first?.plugin, "smtp")
        XCTAssertEqual(config.listeners.first?.service, "lmtp")
        XCTAssertEqual(config.requestedPlugins, ["smtp"])
        // A service named explicitly wins, as for any listener.
        let named = try parse("[[listener]]\nname = \"l\"\naddress = \"127.0.0.1\"\nport = 2424\nprotocol = \"lmtp\"\nservice = \"x\"\n").get()
        XCTAssertEqual(named.listeners.first?.service, "x")
        XCTAssertEqual(errors("[plugin.lmtp]\nhostname = \"a\"\n"),
                       ["test.toml:1: plugin.lmtp: 'lmtp' is a protocol service of the plugin 'smtp', not a plugin: its settings are in [plugin.smtp]"])
    }

    func testDuplicateListenerAndEndpoint() {
        let e = errors(listener + "\n" + listener)
        XCTAssertEqual(e, ["test.toml:7: listener[1].name: listener name 'smtp' is already used by listener[0]",
                           "test.toml:9: listener[1].port: 127.0.0.1:2525 is already used by listener[0]"])
    }

    func testTLSNeedsCertificateAndUnreadableCertificate() {
        let e = errors(listener + "\ntls = \"implicit\"\ncertificate = \"/nonexistent/cert.pem\"\n")
        XCTAssertEqual(e, ["test.toml:6: listener[0].tls: tls = \"implicit\" needs both 'certificate' and 'key' (or neither: a self-signed certificate is made at first start)",
                           "test.toml:7: listener[0].certificate: cannot read certificate file /nonexistent/cert.pem"])
    }

    func testBadAddressUserAndDuration() {
        let e = errors("user = \"no-such-user-xyz\"\ndrain_timeout = \"soon\"\n" + listener.replacingOccurrences(of: "127.0.0.1", with: "localhost"))
        XCTAssertTrue(e.contains("test.toml:2: drain_timeout: expected duration (seconds, or a string like \"30s\"), found string \"soon\""), "\(e)")
        // Type errors stop before semantic checks, so fix the duration and look again.
        let e2 = errors("user = \"no-such-user-xyz\"\n" + listener.replacingOccurrences(of: "127.0.0.1", with: "localhost"))
        XCTAssertEqual(e2, ["test.toml:4: listener[0].address: expected an IPv4 or IPv6 address, found \"localhost\"",
                            "test.toml:1: user: no such user 'no-such-user-xyz'"])
    }

    func testMetricsListenAndPluginName() {
        let e = errors("[metrics]\nlisten = \"nowhere\"\n[plugin.Bad_Name]\nx = 1\n")
        XCTAssertEqual(e, ["test.toml:2: metrics.listen: expected HOST:PORT (e.g. \"127.0.0.1:9465\"), found \"nowhere\"",
                           "test.toml:3: plugin.Bad_Name: 'Bad_Name' is not a plugin name (lower case letters, digits and '-')"])
    }

    func testKeyLocatorFollowsTablesArraysAndMultilineValues() {
        let source = """
            # comment
            role = "store"
            text = \"\"\"
            not = a key
            \"\"\"
            list = [
              "a = b",
            ]
            [plugin.greeter]
            suffix = "x"
            [[listener]]
            name = "a"
            [listener.options]
            max_line = 5
            [[listener]]
            name = "b"
            [[listener.sni]]
            domain = "example.org"
            "quoted.key" = 1
            """
        let locator = KeyLocator(source: source)
        XCTAssertEqual(locator.line(of: ["role"]), 2)
        XCTAssertEqual(locator.line(of: ["not"]), nil)
        XCTAssertEqual(locator.line(of: ["plugin", "greeter", "suffix"]), 10)
        XCTAssertEqual(locator.line(of: ["listener", "0", "options", "max_line"]), 14)
        XCTAssertEqual(locator.line(of: ["listener", "1", "name"]), 16)
        XCTAssertEqual(locator.line(of: ["listener", "1", "sni", "0", "domain"]), 18)
        XCTAssertEqual(locator.line(of: ["listener", "1", "sni", "0", "quoted.key"]), 19)
        XCTAssertEqual(locator.line(of: ["listener", "1", "missing"]), 15, "falls back to the table header")
    }

    func testSchemaSizesDurationsAndDefaults() {
        let schema = ConfigSchema([
            ConfigField("max_size", .size, default: .string("10M")),
            ConfigField("timeout", .duration, default: .integer(300)),
            ConfigField("names", .array(.string)),
            ConfigField("nested", .table(ConfigSchema([ConfigField("depth", .integer(1...3), default: .integer(2))]))),
        ])
        XCTAssertEqual(schema.validate(["max_size": .string("1G"), "timeout": .string("250ms")]), [])
        XCTAssertEqual(schema.validate(["names": .array([.string("a"), .integer(1)])]).map(\.description),
                       ["names.1: expected string, found integer 1"])
        XCTAssertEqual(schema.validate(["nested": .table(["depth": .integer(9)])]).map(\.description),
                       ["nested.depth: expected integer in 1...3, found integer 9"])
        let section = ConfigSection(schema.applyingDefaults(to: [:]))
        XCTAssertEqual(section.size("max_size"), 10 << 20)
        XCTAssertEqual(section.duration("timeout"), 300)
        XCTAssertEqual(section.section("nested")?.int("depth"), 2)
        XCTAssertEqual(ConfigSection.parseSize("64K"), 65536)
        XCTAssertNil(ConfigSection.parseSize("-1"))
        XCTAssertNil(ConfigSection.parseSize("99999999999T"))
        XCTAssertEqual(ConfigSection.parseDuration("2h"), 7200)
        XCTAssertNil(ConfigSection.parseDuration("h"))
    }
}
