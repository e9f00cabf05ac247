import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// Postern's ARC sealer and verifier against dkimpy's (python3-dkim, `dkim.arc_sign` and
/// `dkim.arc_verify`), both ways and in mixed chains. Postern reads keys from a throw-away
/// unbound through the built DNS plugin, dkimpy from its `dnsfunc`.
///
/// dkimpy 1.1.4 does ARC with RSA only: `arc_sign` forces rsa-sha256, and `arc_verify` answers
/// "unknown signature algorithm" for an ed25519-sha256 set (its DKIM does Ed25519, its ARC not).
/// So dkimpy's seals are all RSA, Postern's Ed25519 seals are checked by Postern alone, and the
/// tests pin dkimpy's refusal so that they say when dkimpy learns Ed25519 ARC.
final class ARCInteropTests: XCTestCase {
    nonisolated(unsafe) static var work: TempDir!
    nonisolated(unsafe) static var zone: DKIMKeyZone?
    nonisolated(unsafe) static var setupError: Error?

    static let domain = ARCFixtures.domain

    override class func setUp() {
        super.setUp()
        work = TempDir("arc-interop")
        do {
            // dkimpy's own RSA key (openssl writes PKCS#8 PEM, which dkimpy reads).
            let pyKey = try Shell.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
            work.write("py.pem", pyKey)
            var records = ARCFixtures.records
            records["py"] = try DKIMSigningKey(pem: String(decoding: pyKey, as: UTF8.self)).keyRecord
            zone = try DKIMKeyZone(domain: domain, records: records)
        } catch {
            setupError = error
        }
    }

    override class func tearDown() {
        zone?.stop()
        zone = nil
        work = nil
        super.tearDown()
    }

    func zone() throws -> DKIMKeyZone {
        if let error = Self.setupError { throw error }
        return try XCTUnwrap(Self.zone)
    }

    /// Postern's verdict, keys through unbound.
    func posternVerify(_ message: [UInt8]) async throws -> ARCOutcome {
        await ARCVerifier(keys: DKIMVerifier(resolver: try zone().resolver)).verify(message, now: Date())
    }

    /// dkimpy's verdict: its chain validation status and reason, as "cv: reason".
    func dkimpyVerify(_ message: [UInt8]) throws -> String {
        let script = DKIMKeyZone.dkimpyDNS + """

            import dkim
            cv, results, reason = dkim.arc_verify(sys.stdin.buffer.read(), dnsfunc=dns)
            print("%s: %s" % (cv.decode() if cv else "terminated", reason))
            """
        let output = try Shell.python(script, [try zone().recordsFile(in: Self.work)], input: message)
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// What dkimpy says of a chain: pass for RSA seals, its refusal when `sealer` is Ed25519.
    func dkimpyExpectation(_ sealer: ARCSealer) -> String {
        sealer.key.algorithm == .ed25519SHA256 ? "fail: unknown signature algorithm: b'ed25519-sha256'" : "pass: success"
    }

    /// `message` after a dkimpy hop with authserv-id `authservID`: its Authentication-Results
    /// (`arc=` as found) on top, then dkimpy's set (selector `py`) above that.
    func dkimpySealed(_ message: [UInt8], authservID: String, arc: String) throws -> [UInt8] {
        let arrived = ARCFixtures.withResults(message, authservID: authservID, arc: arc)
        let script = """
            import sys, dkim
            key, domain, authserv_id = sys.argv[1:4]
            fields = dkim.arc_sign(sys.stdin.buffer.read(), b"py", domain.encode(), open(key, "rb").read(), authserv_id.encode())
            sys.stdout.buffer.write(b"".join(fields))
            """
        _ = try zone()
        let fields = try Shell.python(script, [Self.work.path + "/py.pem", Self.domain, authservID], input: arrived)
        let text = String(decoding: fields, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("ARC-Seal: i="), "dkimpy did not seal: \(text)")
        XCTAssertTrue(text.hasSuffix("\r\n"))
        return Array(fields) + arrived
    }

    func testDkimpyChainsVerifyInPostern() async throws {
        let first = try dkimpySealed(ARCFixtures.message, authservID: "first.arc.test", arc: "none")
        XCTAssertTrue(String(decoding: first, as: UTF8.self).contains("cv=none"))
        XCTAssertEqual(try dkimpyVerify(first), "pass: success")
        let firstOutcome = try await posternVerify(first)
        XCTAssertEqual(firstOutcome, ARCOutcome(result: .pass, instances: 1))

        let second = try dkimpySealed(first, authservID: "second.arc.test", arc: "pass")
        XCTAssertTrue(String(decoding: second, as: UTF8.self).contains("i=2; cv=pass"))
        XCTAssertEqual(try dkimpyVerify(second), "pass: success")
        let secondOutcome = try await posternVerify(second)
        XCTAssertEqual(secondOutcome, ARCOutcome(result: .pass, instances: 2))

        // Broken after dkimpy sealed it: both say fail.
        let changed = ARCFixtures.replacing("the report is attached", with: "the report is lost", in: second)
        XCTAssertTrue(try dkimpyVerify(changed).hasPrefix("fail"))
        let changedOutcome = try await posternVerify(changed)
        XCTAssertEqual(changedOutcome.result, .fail)
        XCTAssertEqual(changedOutcome.reason, "ARC-Message-Signature i=2: body hash did not verify")
    }

    func testPosternSealsVerifyWithDkimpy() async throws {
        for sealer in [ARCFixtures.rsaSealer, ARCFixtures.ed25519Sealer] {
            let first = try ARCFixtures.sealed(ARCFixtures.message, by: sealer)
            XCTAssertEqual(try dkimpyVerify(first), dkimpyExpectation(sealer), sealer.selector)
            let firstOutcome = try await posternVerify(first)
            XCTAssertEqual(firstOutcome, ARCOutcome(result: .pass, instances: 1), sealer.selector)

            let second = try ARCFixtures.sealed(first, by: sealer, arc: "pass")
            XCTAssertEqual(try dkimpyVerify(second), dkimpyExpectation(sealer), sealer.selector)
            let secondOutcome = try await posternVerify(second)
            XCTAssertEqual(secondOutcome, ARCOutcome(result: .pass, instances: 2), sealer.selector)

            let changed = ARCFixtures.replacing("Subject: The quarterly", with: "Subject: A quarterly", in: second)
            XCTAssertTrue(try dkimpyVerify(changed).hasPrefix("fail"), sealer.selector)
            let changedOutcome = try await posternVerify(changed)
            XCTAssertEqual(changedOutcome.result, .fail, sealer.selector)
        }
    }

    /// Postern seals on top of dkimpy's i=1, and dkimpy on top of Postern's: a chain of three
    /// from two implementations, checked by both after each hop.
    func testMixedChains() async throws {
        for sealer in [ARCFixtures.rsaSealer, ARCFixtures.ed25519Sealer] {
            let first = try dkimpySealed(ARCFixtures.message, authservID: "first.arc.test", arc: "none")
            let second = try ARCFixtures.sealed(first, by: sealer, arc: "pass")
            XCTAssertTrue(String(decoding: second, as: UTF8.self).contains("ARC-Seal: i=2; a=\(sealer.key.algorithm.rawValue);"))
            XCTAssertEqual(try dkimpyVerify(second), dkimpyExpectation(sealer), sealer.selector)
            let secondOutcome = try await posternVerify(second)
            XCTAssertEqual(secondOutcome, ARCOutcome(result: .pass, instances: 2), sealer.selector)

            let third = try dkimpySealed(second, authservID: "third.arc.test", arc: "pass")
            XCTAssertEqual(try dkimpyVerify(third), dkimpyExpectation(sealer), sealer.selector)
            let thirdOutcome = try await posternVerify(third)
            XCTAssertEqual(thirdOutcome, ARCOutcome(result: .pass, instances: 3), sealer.selector)
        }
    }

    func testKeyMissingInDNS() async throws {
        let sealer = ARCSealer(domain: Self.domain, selector: "nosuch", key: DKIMFixtures.ed25519Key)
        let sealed = try ARCFixtures.sealed(ARCFixtures.message, by: sealer)
        let outcome = try await posternVerify(sealed)
        XCTAssertEqual(outcome.result, .fail)
        XCTAssertTrue(outcome.reason?.hasPrefix("nosuch._domainkey.arc.test: ") == true, "\(outcome)")
        XCTAssertTrue(try dkimpyVerify(sealed).hasPrefix("fail"))
    }
}
