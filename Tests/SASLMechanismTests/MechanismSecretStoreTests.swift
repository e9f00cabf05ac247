import Foundation
import PluginAPI
import PosternHost
import PosternTestSupport
import XCTest

/// The store's per-mechanism secrets (store-sqlite's `mechanism_secret` table) through the host,
/// as `postern admin` and a worker open it: written only while a mechanism that needs them is
/// loaded — at account creation, password change, and the first plaintext login of an account
/// that lacks them — replaced with the password, dropped with the account.
final class MechanismSecretStoreTests: XCTestCase {
    static let mechanisms = """

        [plugin.sasl-plain]
        [plugin.sasl-scram]
        mechanisms = ["SCRAM-SHA-256", "SCRAM-SHA-1"]
        [plugin.sasl-cram-md5]
        [plugin.sasl-digest-md5]
        realm = "example.org"

        """

    /// The same store opened with a config that loads the given extra sections.
    func open(_ fixture: StoreFixture, with sections: String) throws -> AdminContext {
        let base = try String(contentsOfFile: fixture.configFile, encoding: .utf8)
        return try StoreFixture.open(source: base + sections, file: fixture.configFile)
    }

    func credentials(_ context: AdminContext) -> any CredentialBackend {
        context.services.credentialBackends.first { $0.name == "store-sqlite" }!.backend
    }

    func rows(_ fixture: StoreFixture) throws -> [String] {
        try fixture.index.rows("SELECT a.name || ' ' || s.scheme FROM mechanism_secret s JOIN account a ON a.id = s.account_id ORDER BY 1")
            .map { $0[0] ?? "" }
    }

    func testNothingIsWrittenWithoutAMechanismThatNeedsIt() async throws {
        let fixture = try StoreFixture("mech-secrets-none", pluginSettings: "\n[plugin.sasl-plain]\n[plugin.sasl-scram]\n")
        try await fixture.populate(users: ["ann"])
        try await fixture.accounts.setPassword(account: "ann@example.org", password: "new-pass")
        let answer = try await fixture.credentials.verifyPassword(user: "ann@example.org", password: "new-pass")
        XCTAssertEqual(answer, .verified(user: "ann@example.org"))
        XCTAssertEqual(try rows(fixture), [])
        // SCRAM-SHA-256 needs nothing extra: the account's own secret answers it.
        guard case .secret(_, let s) = try await fixture.credentials.storedSecret(user: "ann@example.org", scheme: "SCRAM-SHA-256") else {
            return XCTFail()
        }
        XCTAssertTrue(try SCRAMSecret(s).verify(password: "new-pass"))
        guard case .unavailable = try await fixture.credentials.storedSecret(user: "ann@example.org", scheme: "CRAM-MD5") else {
            return XCTFail("no CRAM-MD5 secret without the mechanism")
        }
    }

    func testCreationWritesTheSecretsOfLoadedMechanisms() async throws {
        let fixture = try StoreFixture("mech-secrets-create", pluginSettings: Self.mechanisms)
        try await fixture.populate(users: ["bob"])
        XCTAssertEqual(try rows(fixture), ["bob@example.org CRAM-MD5", "bob@example.org DIGEST-MD5", "bob@example.org SCRAM-SHA-1"])
        let backend = fixture.credentials
        guard case .secret(let user, let cram) = try await backend.storedSecret(user: "bob@example.org", scheme: "CRAM-MD5") else { return XCTFail() }
        XCTAssertEqual(user, "bob@example.org")
        XCTAssertEqual(cram.fields["inner"]?.count, 16)
        guard case .secret(_, let digest) = try await backend.storedSecret(user: "bob@example.org", scheme: "DIGEST-MD5") else { return XCTFail() }
        XCTAssertEqual(digest.fields["realm"], Array("example.org".utf8))
        XCTAssertEqual(digest.fields["hash"], Array(Insecure.MD5.hash(data: Array("bob@example.org:example.org:secret-bob".utf8))))
        guard case .secret(_, let sha1) = try await backend.storedSecret(user: "bob@example.org", scheme: "scram-sha-1") else { return XCTFail() }
        XCTAssertTrue(try SCRAMSecret(sha1).verify(password: "secret-bob"))
        XCTAssertEqual(try SCRAMSecret(sha1).algorithm, .sha1)
        // Suspended accounts get no secret out.
        try await fixture.accounts.setEnabled(account: "bob@example.org", enabled: false)
        let suspended = try await backend.storedSecret(user: "bob@example.org", scheme: "CRAM-MD5")
        XCTAssertEqual(suspended, .suspended(user: "bob@example.org"))
    }

    func testAPlaintextLoginFillsInWhatIsMissingAndAWrongPasswordDoesNot() async throws {
        let fixture = try StoreFixture("mech-secrets-login")
        try await fixture.populate(users: ["cat"])
        XCTAssertEqual(try rows(fixture), [])
        // The site enables the mechanisms: the next process opens the store with them.
        let enabled = try open(fixture, with: Self.mechanisms)
        let backend = credentials(enabled)
        let wrong = try await backend.verifyPassword(user: "cat@example.org", password: "guess")
        XCTAssertEqual(wrong, .wrongPassword)
        XCTAssertEqual(try rows(fixture), [])
        let right = try await backend.verifyPassword(user: "cat@example.org", password: "secret-cat")
        XCTAssertEqual(right, .verified(user: "cat@example.org"))
        XCTAssertEqual(try rows(fixture), ["cat@example.org CRAM-MD5", "cat@example.org DIGEST-MD5", "cat@example.org SCRAM-SHA-1"])
        let before = try fixture.index.rows("SELECT scheme, fields FROM mechanism_secret ORDER BY scheme")
        // A second login changes nothing (nothing is missing).
        _ = try await backend.verifyPassword(user: "cat@example.org", password: "secret-cat")
        XCTAssertEqual(try fixture.index.rows("SELECT scheme, fields FROM mechanism_secret ORDER BY scheme"), before)
        // Another realm makes the DIGEST-MD5 secret stale: replaced at the next login.
        let moved = try open(fixture, with: Self.mechanisms.replacingOccurrences(of: "realm = \"example.org\"", with: "realm = \"other.example\""))
        _ = try await credentials(moved).verifyPassword(user: "cat@example.org", password: "secret-cat")
        guard case .secret(_, let digest) = try await credentials(moved).storedSecret(user: "cat@example.org", scheme: "DIGEST-MD5") else {
            return XCTFail()
        }
        XCTAssertEqual(digest.fields["realm"], Array("other.example".utf8))
    }

    func testANewPasswordReplacesEverySecretAndDeletionDropsThem() async throws {
        let fixture = try StoreFixture("mech-secrets-passwd", pluginSettings: Self.mechanisms)
        try await fixture.populate(users: ["dan", "eve"])
        let before = try fixture.index.rows("SELECT scheme, fields FROM mechanism_secret s JOIN account a ON a.id = s.account_id WHERE a.name = 'dan@example.org' ORDER BY scheme")
        try await fixture.accounts.setPassword(account: "dan@example.org", password: "changed")
        let after = try fixture.index.rows("SELECT scheme, fields FROM mechanism_secret s JOIN account a ON a.id = s.account_id WHERE a.name = 'dan@example.org' ORDER BY scheme")
        XCTAssertEqual(after.map { $0[0] }, before.map { $0[0] })
        for (old, new) in zip(before, after) { XCTAssertNotEqual(old[1], new[1], "\(old[0] ?? "")") }
        // Changed by a process without the mechanisms: the old secrets must not survive.
        let base = try String(contentsOfFile: fixture.configFile, encoding: .utf8).replacingOccurrences(of: Self.mechanisms, with: "")
        let plain = try StoreFixture.open(source: base + "\n[plugin.sasl-plain]\n", file: fixture.configFile)
        try await plain.accounts().setPassword(account: "dan@example.org", password: "again")
        XCTAssertEqual(try rows(fixture), ["eve@example.org CRAM-MD5", "eve@example.org DIGEST-MD5", "eve@example.org SCRAM-SHA-1"])
        try await fixture.accounts.deleteAccount("eve@example.org")
        XCTAssertEqual(try rows(fixture), [])
    }

    func testTheMigrationIsItsOwn() throws {
        let fixture = try StoreFixture("mech-secrets-migration")
        let migrations = try fixture.index.rows("SELECT identifier FROM grdb_migrations ORDER BY rowid").map { $0[0] ?? "" }
        XCTAssertTrue(migrations.contains("auth-mech-v1: mechanism_secret"), "\(migrations)")
        XCTAssertTrue(migrations.contains("v8"))
    }
}
