import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest
@testable import PosternSASLCyrusCore

/// The libsasl2 bridge through the real binary: sasldb2 users made by `saslpasswd2` log in with
/// Cyrus's own clients (`imtest`, `smtptest` from cyrus-clients) over CRAM-MD5, DIGEST-MD5 and
/// PLAIN; a wrong password, a sasldb2 user without a Postern account and a suspended account are
/// refused. One server for the class; every peer it needs must be installed (a missing one fails).
final class CyrusBridgeTests: XCTestCase {
    static let realm = "example.org"
    static let imtest = "/usr/lib/cyrus/bin/imtest"
    static let smtptest = "/usr/lib/cyrus/bin/smtptest"

    struct Fixture {
        let dir: TempDir
        let server: ServerProcess
        let imapPort: Int
        let smtpPort: Int

        func admin(_ args: [String]) -> (Int32, String) {
            Build.run(Build.postern, ["admin"] + args + ["-c", server.configFile], cwd: dir.path)
        }
    }

    nonisolated(unsafe) static var fixture: Fixture?
    nonisolated(unsafe) static var setUpError: String?

    override class func setUp() {
        super.setUp()
        do { fixture = try makeFixture() } catch { setUpError = "\(error)" }
    }

    override class func tearDown() {
        fixture?.server.stop()
        fixture = nil
        super.tearDown()
    }

    /// Adds a sasldb2 user as a site would: `saslpasswd2 -f FILE -p -c -u REALM user`.
    static func saslpasswd2(_ file: String, _ user: String, _ password: String) throws {
        let tool = try Build.tool("saslpasswd2")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-f", file, "-p", "-c", "-u", realm, user]
        let input = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        input.fileHandleForWriting.write(Data(password.utf8))
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw SystemError.message("saslpasswd2 \(user) exited \(process.terminationStatus)") }
    }

    static func makeFixture() throws -> Fixture {
        for tool in [imtest, smtptest] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw SystemError.message("\(tool) is missing: install cyrus-clients (scripts/install-deps.sh test)")
        }
        let dir = TempDir("sasl-cyrus")
        let sasldb = dir.path + "/sasldb2"
        try saslpasswd2(sasldb, "alice", "alice-sasl-pw")
        try saslpasswd2(sasldb, "bob", "bob-sasl-pw")
        try saslpasswd2(sasldb, "carol", "carol-sasl-pw")   // in sasldb2 but no Postern account
        // saslpasswd2 makes it root's, 0640; the workers run as an unprivileged user that must read it.
        guard chmod(sasldb, 0o644) == 0 else { throw SystemError.message("chmod \(sasldb): \(errno)") }
        let imapPort = freePort(), smtpPort = freePort()
        let server = try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.queue]
            min_backoff = "1h"
            max_backoff = "1h"
            [plugin.sasl-cyrus]
            mechanisms = ["CRAM-MD5", "DIGEST-MD5", "PLAIN"]
            sasldb_path = "\(sasldb)"
            realm = "\(realm)"
            server_fqdn = "localhost"
            [plugin.imap]
            [plugin.smtp]
            hostname = "localhost"
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(imapPort)
            protocol = "imap"
            [listener.options]
            allow_plaintext_on_loopback = true
            [[listener]]
            name = "submission"
            address = "127.0.0.1"
            port = \(smtpPort)
            protocol = "smtp"
            [listener.options]
            mode = "submission"
            allow_plaintext_auth_on_loopback = true
            """)
        let fixture = Fixture(dir: dir, server: server, imapPort: imapPort, smtpPort: smtpPort)
        for args in [["domain", "add", "example.org"],
                     // Postern passwords that are NOT the sasldb2 ones: only libsasl2 checks here.
                     ["user", "add", "alice@example.org", "--password", "not-the-sasl-one-1"],
                     ["user", "add", "bob@example.org", "--password", "not-the-sasl-one-2"],
                     ["user", "suspend", "bob@example.org"]] {
            let (code, output) = fixture.admin(args)
            guard code == 0 else { throw SystemError.message("postern admin \(args): \(output)") }
        }
        return fixture
    }

    func requireFixture() throws -> Fixture {
        guard let fixture = Self.fixture else { throw SystemError.message("set-up failed: \(Self.setUpError ?? "?")") }
        return fixture
    }

    /// Runs a Cyrus test client once: authenticate, then LOGOUT/QUIT from a file.
    func cyrusClient(_ tool: String, port: Int, mechanism: String, user: String, password: String, after: String) throws -> String {
        let f = try requireFixture()
        let script = f.dir.write("after-\(UUID().uuidString)", after)
        let (_, output) = Build.run("/usr/bin/timeout", ["30", tool, "-p", "\(port)", "-m", mechanism, "-a", user, "-w", password,
                                                         "-r", Self.realm, "-l", "0", "-f", script, "localhost"])
        return output
    }

    func imtest(_ mechanism: String, _ user: String, _ password: String) throws -> String {
        try cyrusClient(Self.imtest, port: try requireFixture().imapPort, mechanism: mechanism, user: user, password: password,
                        after: ". LOGOUT\r\n")
    }

    func smtptest(_ mechanism: String, _ user: String, _ password: String) throws -> String {
        try cyrusClient(Self.smtptest, port: try requireFixture().smtpPort, mechanism: mechanism, user: user, password: password,
                        after: "QUIT\r\n")
    }

    func testIMAPLoginsThroughLibsasl2() throws {
        for mechanism in ["CRAM-MD5", "DIGEST-MD5", "PLAIN"] {
            let ok = try imtest(mechanism, "alice", "alice-sasl-pw")
            XCTAssertTrue(ok.contains("Authenticated."), "\(mechanism): \(ok)")
            let wrong = try imtest(mechanism, "alice", "wrong-password")
            XCTAssertFalse(wrong.contains("Authenticated."), "\(mechanism) accepted a wrong password: \(wrong)")
            XCTAssertTrue(wrong.contains("NO"), "\(mechanism): \(wrong)")
            // Postern's own password is not what the bridge checks.
            let postern = try imtest(mechanism, "alice", "not-the-sasl-one-1")
            XCTAssertFalse(postern.contains("Authenticated."), "\(mechanism): \(postern)")
        }
    }

    func testSMTPLoginsThroughLibsasl2() throws {
        for mechanism in ["CRAM-MD5", "DIGEST-MD5", "PLAIN"] {
            let ok = try smtptest(mechanism, "alice", "alice-sasl-pw")
            XCTAssertTrue(ok.contains("Authenticated."), "\(mechanism): \(ok)")
            let wrong = try smtptest(mechanism, "alice", "wrong-password")
            XCTAssertFalse(wrong.contains("Authenticated."), "\(mechanism) accepted a wrong password: \(wrong)")
            XCTAssertTrue(wrong.contains("535"), "\(mechanism): \(wrong)")
        }
    }

    /// libsasl2 knows carol, Postern does not: refused like a wrong password. bob is suspended.
    func testAccountMustExistAndBeEnabled() throws {
        let carol = try imtest("CRAM-MD5", "carol", "carol-sasl-pw")
        XCTAssertFalse(carol.contains("Authenticated."), carol)
        let bob = try imtest("CRAM-MD5", "bob", "bob-sasl-pw")
        XCTAssertFalse(bob.contains("Authenticated."), bob)
        let log = try requireFixture().server.log
        XCTAssertTrue(log.contains("no Postern account"), log)
    }

    /// What the bridge offers: the three mechanisms in CAPABILITY/EHLO, as the config asks.
    func testMechanismsAreAdvertised() throws {
        let ok = try imtest("CRAM-MD5", "alice", "alice-sasl-pw")
        for name in ["AUTH=CRAM-MD5", "AUTH=DIGEST-MD5", "AUTH=PLAIN"] { XCTAssertTrue(ok.contains(name), "\(name): \(ok)") }
    }
}

/// The bridge's pure parts and the host's refusal of a mechanism offered twice.
final class CyrusBridgeConfigTests: XCTestCase {
    func testNamesMapToAccounts() {
        let s = CyrusSettings(realm: "EXAMPLE.ORG", domain: "example.org", serverFQDN: "", requireAccount: true, timeout: 10)
        XCTAssertEqual(s.accountName("alice"), "alice@example.org")
        XCTAssertEqual(s.accountName("alice@EXAMPLE.ORG"), "alice@example.org")
        XCTAssertEqual(s.accountName("alice@Other.Example"), "alice@other.example")
        let bare = CyrusSettings(realm: "", domain: "", serverFQDN: "", requireAccount: true, timeout: 10)
        XCTAssertEqual(bare.accountName("alice"), "alice")
    }

    func testLibsasl2ErrorsMapToFailures() {
        XCTAssertEqual(CyrusExchange.failure(-13), .authenticationFailed)   // SASL_BADAUTH
        XCTAssertEqual(CyrusExchange.failure(-20), .authenticationFailed)   // SASL_NOUSER
        XCTAssertEqual(CyrusExchange.failure(-19), .accountDisabled)        // SASL_DISABLED
        XCTAssertEqual(CyrusExchange.failure(-14), .authorizationFailed)    // SASL_NOAUTHZ
        XCTAssertEqual(CyrusExchange.failure(-4), .mechanismUnavailable)    // SASL_NOMECH
        XCTAssertEqual(CyrusExchange.failure(-24), .temporary("libsasl2 error -24"))   // SASL_UNAVAIL: saslauthd down
        if case .malformed = CyrusExchange.failure(-5) {} else { XCTFail("SASL_BADPROT is malformed input") }
    }

    /// sasl-plain and the bridge both offering PLAIN: the server refuses to start, naming both.
    func testTwoPluginsWithOneMechanismAreRefused() throws {
        let dir = TempDir("sasl-cyrus-clash")
        XCTAssertThrowsError(try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.sasl-plain]
            [plugin.sasl-cyrus]
            mechanisms = ["PLAIN"]
            sasldb_path = "\(dir.path)/sasldb2"
            [plugin.imap]
            login_failure_delay = "0s"
            max_login_failures_per_ip = 0
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "imap"
            """)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("SASL mechanism PLAIN is already provided by plugin"), text)
        }
    }

    /// A mechanism libsasl2 has no plug-in for is a config error at start, not a silent gap.
    func testUnknownMechanismIsRefused() throws {
        let dir = TempDir("sasl-cyrus-unknown")
        XCTAssertThrowsError(try ServerProcess.start(dir, """
            data_dir = "./var"
            workers = 1
            [plugin.store-sqlite]
            [plugin.sasl-cyrus]
            mechanisms = ["NO-SUCH-MECH"]
            [plugin.imap]
            login_failure_delay = "0s"
            max_login_failures_per_ip = 0
            [[listener]]
            name = "imap"
            address = "127.0.0.1"
            port = \(freePort())
            protocol = "imap"
            """)) { error in
            XCTAssertTrue("\(error)".contains("libsasl2 offers no mechanism NO-SUCH-MECH"), "\(error)")
        }
    }
}
