@testable import PosternLDAPCore
import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The plugin's core against a real slapd (SlapdFixture): the three password modes, the alias,
/// group and transport tables, the white pages, the injection table, StartTLS and ldaps with
/// certificate checks, failover, and a directory that dies or hangs.
final class LDAPDirectoryTests: XCTestCase {
    nonisolated(unsafe) static var slapd: SlapdFixture!

    override class func setUp() {
        super.setUp()
        // libldap writes to sockets whose server died; the worker ignores SIGPIPE (the master
        // does, and workers inherit it), and so must this test process.
        signal(SIGPIPE, SIG_IGN)
        do { slapd = try SlapdFixture("ldap-directory") } catch { slapd = nil; print("slapd fixture: \(error)") }
    }

    override class func tearDown() {
        slapd?.stop()
        slapd = nil
        super.tearDown()
    }

    override func setUpWithError() throws {
        // A missing peer is a failure, never a skip.
        guard let slapd = Self.slapd else { throw SystemError.message("slapd could not be started (packages slapd, ldap-utils); see the fixture line above") }
        if slapd.process == nil { try slapd.start() }
    }

    var slapd: SlapdFixture { Self.slapd }

    /// The plugin's parts over `settings` (config keys as in README.md).
    func makeDirectory(_ extra: [String: ConfigValue] = [:], servers: [String]? = nil) throws -> (LDAPDirectory, LDAPCredentialBackend) {
        var values: [String: ConfigValue] = [
            "servers": .array((servers ?? [slapd.uri]).map { .string($0) }),
            "base_dn": .string(SlapdFixture.baseDN),
            "bind_dn": .string(SlapdFixture.serviceDN),
            "bind_password": .string(SlapdFixture.servicePassword),
            "quota_attribute": .string("posternMailQuota"),
            "suspended_attribute": .string("posternAccountStatus"),
            "suspended_value": .string("suspended"),
            "cache_ttl": .integer(0),
            "timeout": .integer(2),
            "connect_timeout": .integer(2),
        ]
        values.merge(extra) { $1 }
        let settings = try LDAPSettings(ConfigSection(LDAPSettings.schema.applyingDefaults(to: values)), dataDirectory: slapd.dir.path)
        let logger = Logger(label: "ldap-test")
        let pool = LDAPPool(servers: settings.servers, serviceDN: settings.bindDN, servicePassword: settings.bindPassword,
                            size: settings.poolSize, logger: logger)
        addTeardownBlock { pool.shutdown() }
        let directory = LDAPDirectory(settings: settings, pool: pool, logger: logger)
        let provisioner = LDAPProvisioner(services: nil, enabled: false, logger: logger, done: TTLCache(ttl: 1))
        return (directory, LDAPCredentialBackend(directory: directory, provisioner: provisioner))
    }

    func testSearchThenBindChecksPasswords() async throws {
        let (_, backend) = try makeDirectory()
        await assertEqual(try await backend.verifyPassword(user: "alice@example.org", password: "alice-pw"), .verified(user: "alice@example.org"))
        // By uid too, answered with the canonical (mail) name; {SSHA} and cleartext passwords alike.
        await assertEqual(try await backend.verifyPassword(user: "alice", password: "alice-pw"), .verified(user: "alice@example.org"))
        await assertEqual(try await backend.verifyPassword(user: "erin", password: "erin-pw"), .verified(user: "erin@example.org"))
        await assertEqual(try await backend.verifyPassword(user: "alice@example.org", password: "wrong"), .wrongPassword)
        await assertEqual(try await backend.verifyPassword(user: "nobody@example.org", password: "x"), .unknownUser)
        await assertEqual(try await backend.verifyPassword(user: "dave@example.org", password: "dave-pw"), .suspended(user: "dave@example.org"))
        // An empty password would be an unauthenticated bind, which the server accepts.
        await assertEqual(try await backend.verifyPassword(user: "alice@example.org", password: ""), .wrongPassword)
        await assertEqual(try await backend.storedSecret(user: "alice@example.org", scheme: "SCRAM-SHA-256"), .unknownUser)
        let record = try await backend.lookupUser("bob")
        XCTAssertEqual(record, UserRecord(name: "bob@example.org", enabled: true, mailHost: "mail2.example.net"))
        await assertEqual(try await backend.lookupUser("dave")?.enabled, false)
        await assertEqual(try await backend.lookupUser("nobody"), nil)
    }

    func testBindModeAndCompareMode() async throws {
        let (_, bind) = try makeDirectory(["auth_mode": .string("bind"),
                                           "bind_dn_template": .string("uid=%n,ou=people,dc=example,dc=org")])
        await assertEqual(try await bind.verifyPassword(user: "alice@example.org", password: "alice-pw"), .verified(user: "alice@example.org"))
        await assertEqual(try await bind.verifyPassword(user: "alice@example.org", password: "nope"), .wrongPassword)
        await assertEqual(try await bind.verifyPassword(user: "dave", password: "dave-pw"), .suspended(user: "dave@example.org"))
        // A DN-injection attempt binds as a DN that does not exist: refused.
        await assertEqual(try await bind.verifyPassword(user: "x,ou=services", password: SlapdFixture.servicePassword), .wrongPassword)

        let (_, compare) = try makeDirectory(["auth_mode": .string("compare")])
        await assertEqual(try await compare.verifyPassword(user: "erin", password: "erin-pw"), .verified(user: "erin@example.org"))
        await assertEqual(try await compare.verifyPassword(user: "erin", password: "erin-PW"), .wrongPassword)
        // slapd's compare matches stored values octet by octet: alice's {SSHA} value never
        // equals her password, which is why the `password` mode exists.
        await assertEqual(try await compare.verifyPassword(user: "alice", password: "alice-pw"), .wrongPassword)

        let (_, fetched) = try makeDirectory(["auth_mode": .string("password")])
        await assertEqual(try await fetched.verifyPassword(user: "alice", password: "alice-pw"), .verified(user: "alice@example.org"),
                          "the {SSHA} value read and verified by Postern")
        await assertEqual(try await fetched.verifyPassword(user: "alice", password: "alice-PW"), .wrongPassword)
        await assertEqual(try await fetched.verifyPassword(user: "erin", password: "erin-pw"), .verified(user: "erin@example.org"),
                          "a cleartext value")
        await assertEqual(try await fetched.verifyPassword(user: "dave", password: "dave-pw"), .suspended(user: "dave@example.org"))
        await assertEqual(try await fetched.verifyPassword(user: "nobody", password: "x"), .unknownUser)
    }

    func testInjectionTableIsRefused() async throws {
        let (directory, backend) = try makeDirectory()
        for (name, _) in LDAPInjection.names {
            // With alice's (and then every user's) password: never verified, never a server error.
            for password in SlapdFixture.passwords.values {
                let answer = try await backend.verifyPassword(user: name, password: password)
                XCTAssertEqual(answer, .unknownUser, "login \(name.debugDescription)")
            }
            let recipient = try await directory.recipient(name + "@example.org")
            XCTAssertNil(recipient, "recipient \(name.debugDescription)")
            await assertEqual(try await directory.whitePages(name, limit: 50), [], "white pages \(name.debugDescription)")
        }
        // The unescaped filter would have matched everybody: the escaping is what refused it.
        XCTAssertTrue(slapd.search("(uid=*)", ["uid"]).contains("uid: alice"))
    }

    func testAliasGroupAndTransportTables() async throws {
        let (directory, _) = try makeDirectory()
        let provisioner = LDAPProvisioner(services: nil, enabled: false, logger: directory.logger, done: TTLCache(ttl: 1))
        let aliases = LDAPAliasTable(directory: directory, provisioner: provisioner)
        let transports = LDAPTransportTable(directory: directory)
        await assertEqual(try await aliases.lookup("alice@example.org"), nil, "the account itself: the store takes it")
        await assertEqual(try await aliases.lookup("ali@example.org"), ["alice@example.org"], "mailLocalAddress")
        await assertEqual(try await aliases.lookup("carol@example.org"), ["carol@elsewhere.example"], "mailRoutingAddress")
        await assertEqual(try await aliases.lookup("dave@example.org"), [], "suspended")
        await assertEqual(try await aliases.lookup("bob@example.org"), ["bob@example.org"], "on another mailHost: final")
        await assertEqual(try await aliases.lookup("nobody@example.org"), nil)
        // staff: alice, erin and the admins group (dave suspended and left out, bob, staff again: a cycle).
        await assertEqual(try await aliases.lookup("staff@example.org").map { Set($0) }, ["alice@example.org", "erin@example.org", "bob@example.org"])
        await assertEqual(try await aliases.lookup("admins@example.org").map { Set($0) }, ["alice@example.org", "erin@example.org", "bob@example.org"])
        await assertEqual(try await transports.lookup("bob@example.org"), ["smtp:[mail2.example.net]"])
        await assertEqual(try await transports.lookup("alice@example.org"), nil)
        await assertEqual(try await transports.lookup("staff@example.org"), nil)
        // The proxy's route table: the mailHost as written, for any user that has one.
        let hosts = LDAPMailHostTable(directory: directory)
        await assertEqual(try await hosts.lookup("bob@example.org"), ["mail2.example.net"])
        await assertEqual(try await hosts.lookup("alice@example.org"), nil, "no mailHost")
        await assertEqual(try await hosts.lookup("staff@example.org"), nil, "a group")
        await assertEqual(try await hosts.lookup("nobody@example.org"), nil)
    }

    func testWhitePages() async throws {
        let (directory, _) = try makeDirectory()
        let pages = LDAPWhitePages(directory: directory)
        await assertEqual(try await pages.search("smith", limit: 10), [DirectoryEntry(name: "Erin Smith", address: "erin@example.org", phone: "+1 555 0104")])
        await assertEqual(try await pages.search("555 01", limit: 10).map(\.address), ["alice@example.org", "bob@example.org", "erin@example.org"])
        await assertEqual(try await pages.search("alice@", limit: 10).map(\.name), ["Alice Liddell"])
        await assertEqual(try await pages.search("555", limit: 2).count, 2, "the limit is the server's size limit")
        await assertEqual(try await pages.search("  ", limit: 10), [])
        await assertEqual(try await pages.search("*", limit: 10), [], "a star is a character, not a wildcard")
    }

    func testStartTLSAndLDAPSVerifyTheServerCertificate() async throws {
        let (_, startTLS) = try makeDirectory(["start_tls": .boolean(true), "ca_file": .string(slapd.caFile)])
        await assertEqual(try await startTLS.verifyPassword(user: "alice", password: "alice-pw"), .verified(user: "alice@example.org"))
        let (_, ldaps) = try makeDirectory(["ca_file": .string(slapd.caFile)], servers: [slapd.ldapsURI])
        await assertEqual(try await ldaps.verifyPassword(user: "alice", password: "alice-pw"), .verified(user: "alice@example.org"))
        // A CA that did not sign the server's certificate: no connection, a temporary failure.
        let other = slapd.dir.path + "/other-ca.crt"
        let (_, untrusted) = try makeDirectory(["start_tls": .boolean(true), "ca_file": .string(other)])
        guard case .unavailable = try await untrusted.verifyPassword(user: "alice", password: "alice-pw") else {
            return XCTFail("StartTLS with an untrusted certificate must not authenticate")
        }
        let (_, untrustedLDAPS) = try makeDirectory(["ca_file": .string(other)], servers: [slapd.ldapsURI])
        guard case .unavailable = try await untrustedLDAPS.verifyPassword(user: "alice", password: "alice-pw") else {
            return XCTFail("ldaps with an untrusted certificate must not authenticate")
        }
        // Checks turned off explicitly: the same untrusted server is accepted.
        let (_, unchecked) = try makeDirectory(["start_tls": .boolean(true), "ca_file": .string(other), "verify_certificates": .boolean(false)])
        await assertEqual(try await unchecked.verifyPassword(user: "alice", password: "alice-pw"), .verified(user: "alice@example.org"))
    }

    func testFailoverToTheSecondServer() async throws {
        let dead = "ldap://127.0.0.1:\(freePort())"
        let (directory, backend) = try makeDirectory(servers: [dead, slapd.uri])
        let started = Date()
        await assertEqual(try await backend.verifyPassword(user: "alice", password: "alice-pw"), .verified(user: "alice@example.org"))
        await assertEqual(try await directory.whitePages("smith", limit: 5).count, 1)
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }

    func testDirectoryDownIsTemporaryAndRecovers() async throws {
        let (directory, backend) = try makeDirectory(["cache_ttl": .integer(60)])
        await assertEqual(try await backend.verifyPassword(user: "alice", password: "alice-pw"), .verified(user: "alice@example.org"))
        slapd.kill()
        // Pooled connections are dead now: the answer is "try later", not "wrong password".
        await assertEqual(try await backend.verifyPassword(user: "erin", password: "erin-pw"), .unavailable(reason: "directory unavailable"))
        do {
            _ = try await LDAPAliasTable(directory: directory, provisioner: LDAPProvisioner(services: nil, enabled: false, logger: directory.logger,
                                                                                           done: TTLCache(ttl: 1))).lookup("erin@example.org")
            XCTFail("a recipient lookup with the directory down must throw (451 at RCPT)")
        } catch let error as LDAPError {
            guard case .unavailable = error else { return XCTFail("\(error)") }
        }
        try slapd.start()
        // Failed servers are retried after retryAfter (10 s) unless no other server is left,
        // which is the case here: the next question reconnects.
        await assertEqual(try await backend.verifyPassword(user: "erin", password: "erin-pw"), .verified(user: "erin@example.org"))
    }

    func testHungDirectoryAnswersWithinTheTimeout() async throws {
        let (_, backend) = try makeDirectory(["timeout": .integer(1), "pool_size": .integer(2)])
        await assertEqual(try await backend.verifyPassword(user: "alice", password: "alice-pw"), .verified(user: "alice@example.org"))
        slapd.pause()
        defer { slapd.resume() }
        let started = Date()
        async let a = backend.verifyPassword(user: "alice", password: "alice-pw")
        async let b = backend.verifyPassword(user: "erin", password: "erin-pw")
        let answers = try await [a, b]
        let elapsed = Date().timeIntervalSince(started)
        for answer in answers { XCTAssertEqual(answer, .unavailable(reason: "directory unavailable")) }
        // One timeout per attempt, and one retry on a fresh connection (which also times out).
        XCTAssertLessThan(elapsed, 8, "answered in \(elapsed) s")
        print("hung slapd: two logins answered 'unavailable' in \(String(format: "%.1f", elapsed)) s with a 1 s timeout")
    }

    func testConcurrentLoginsShareThePool() async throws {
        let (_, backend) = try makeDirectory(["pool_size": .integer(3)])
        let started = Date()
        let answers = try await withThrowingTaskGroup(of: CredentialAnswer.self) { group in
            for i in 0..<60 {
                let (user, password) = i % 3 == 0 ? ("alice", "alice-pw") : i % 3 == 1 ? ("erin", "erin-pw") : ("erin", "bad")
                group.addTask { try await backend.verifyPassword(user: user, password: password) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(answers.filter { $0 == .wrongPassword }.count, 20)
        XCTAssertEqual(answers.filter { if case .verified = $0 { return true } else { return false } }.count, 40)
        print("60 logins (search + bind each) through 3 pooled connections: \(String(format: "%.2f", Date().timeIntervalSince(started))) s")
    }
}

/// User names carrying LDAP filter metacharacters (shared with the binary's tests).
enum LDAPInjection {
    static let names: [(String, String)] = [
        ("*", "a star matches every value"),
        ("al*", "a prefix wildcard"),
        ("alice)(uid=*", "closes the value and adds a clause"),
        ("*)(|(objectClass=*", "an OR of everything"),
        ("alice\\", "a trailing backslash"),
        ("alice\u{0}", "NUL"),
        ("al\u{E9}", "non-ASCII"),
        ("\\2a", "an escape sequence typed in"),
    ]
}
