import Foundation
import PluginAPI
import PluginCredentials
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// Postern's signer and verifier against dkimpy (python3-dkim) and OpenDKIM, both ways. Keys
/// Postern verifies with come from a throw-away unbound through the built DNS plugin
/// (libPosternDNS.so); dkimpy reads the record from its `dnsfunc`, OpenDKIM from `TestPublicKeys`.
final class DKIMInteropTests: XCTestCase {
    nonisolated(unsafe) static var work: TempDir!
    nonisolated(unsafe) static var zone: DKIMKeyZone?
    nonisolated(unsafe) static var setupError: Error?
    /// Private keys (PEM files) and their records, by selector; all in domain interop.test.
    nonisolated(unsafe) static var records: [String: String] = [:]

    static let domain = "interop.test"
    /// From in the signing domain: OpenDKIM signs only mail from a domain it signs for.
    static let message = Array(String(decoding: DKIMFixtures.message(
        body: "Hello from the interop test.  \r\nA second line\twith a tab. \r\n\r\n\r\n",
        extraHeaders: ["List-Id: <team.interop.test>", "Cc: carol@example.net"]), as: UTF8.self)
        .replacingOccurrences(of: "alice@example.org", with: "alice@interop.test").utf8)

    override class func setUp() {
        super.setUp()
        work = TempDir("dkim-interop")
        do {
            // Postern's keys, a dkimpy key (openssl, PKCS#8) and OpenDKIM's (opendkim-genkey).
            records["prsa"] = DKIMFixtures.rsaKey.keyRecord
            records["ped"] = DKIMFixtures.ed25519Key.keyRecord
            let pyKey = try Shell.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
            work.write("py.pem", pyKey)
            records["py"] = try DKIMSigningKey(pem: String(decoding: pyKey, as: UTF8.self)).keyRecord
            let pyEd = try Shell.openssl(["genpkey", "-algorithm", "ed25519"])
            let pyEdKey = try DKIMSigningKey(pem: String(decoding: pyEd, as: UTF8.self))
            // dkimpy takes an Ed25519 private key as the base64 of its 32-octet seed.
            guard case .ed25519(let raw) = pyEdKey.storage else { throw Shell.Failure(description: "not an Ed25519 key") }
            work.write("pyed.seed", raw.rawRepresentation.base64EncodedString())
            records["pyed"] = pyEdKey.keyRecord
            try Shell.run("/usr/sbin/opendkim-genkey", ["-b", "2048", "-d", domain, "-s", "od", "-D", work.path])
            let zoneText = try String(contentsOfFile: work.path + "/od.txt", encoding: .utf8)
            records["od"] = zoneText.components(separatedBy: "\"").enumerated().filter { $0.offset % 2 == 1 }.map(\.element).joined()

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

    func dns() throws -> any DNSResolver {
        if let error = Self.setupError { throw error }
        return try XCTUnwrap(Self.zone).resolver
    }

    /// dkimpy's verdict on `message`, keys from `records`.
    func dkimpyVerify(_ message: [UInt8]) throws -> String {
        let recordsFile = try XCTUnwrap(Self.zone).recordsFile(in: Self.work)
        let script = DKIMKeyZone.dkimpyDNS + """

            import dkim
            message = sys.stdin.buffer.read()
            results = []
            d = dkim.DKIM(message)
            for index in range(len([h for h in d.headers if h[0].lower() == b"dkim-signature"])):
                try:
                    results.append("pass" if d.verify(idx=index, dnsfunc=dns) else "fail")
                except dkim.ValidationError as error:
                    results.append("fail")
            print(" ".join(results))
            """
        let output = try Shell.python(script, [recordsFile], input: message)
        return String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// OpenDKIM's verdict lines on `message` (`opendkim -t` in verify mode, keys from TestPublicKeys).
    func openDKIMVerify(_ message: [UInt8]) throws -> String {
        let tag = UUID().uuidString.prefix(6)
        let keys = Self.work.write("keys-\(tag)", Self.records.map { "\($0.key)._domainkey.\(Self.domain) \($0.value)" }.joined(separator: "\n") + "\n")
        let conf = Self.work.write("verify-\(tag).conf", """
            Mode v
            TestPublicKeys \(keys)
            RequireSafeKeys false
            Syslog no

            """)
        let file = Self.work.write("message-\(tag).eml", message)
        let output = try Shell.run("/usr/sbin/opendkim", ["-x", conf, "-t", file])
        return String(decoding: output, as: UTF8.self)
    }

    func testPosternSignaturesVerifyWithDkimpy() throws {
        _ = try dns()
        for (selector, key) in [("prsa", DKIMFixtures.rsaKey), ("ped", DKIMFixtures.ed25519Key)] {
            for canonicalization in [DKIMCanonicalization.simple, .relaxed] {
                let signer = DKIMSigner(domain: Self.domain, selector: selector, key: key,
                                        headerCanonicalization: canonicalization, bodyCanonicalization: canonicalization,
                                        expiry: 86400 * 365 * 20)
                let signed = try DKIMFixtures.signed(Self.message, by: signer, now: Date())
                XCTAssertEqual(try dkimpyVerify(signed), "pass", "\(selector) \(canonicalization)")
                var tampered = signed
                tampered[tampered.count - 10] ^= 0x20
                XCTAssertEqual(try dkimpyVerify(tampered), "fail", "\(selector) \(canonicalization), tampered")
            }
        }
    }

    func testPosternSignaturesVerifyWithOpenDKIM() throws {
        _ = try dns()
        for (selector, key) in [("prsa", DKIMFixtures.rsaKey), ("ped", DKIMFixtures.ed25519Key)] {
            for canonicalization in [DKIMCanonicalization.simple, .relaxed] {
                let signer = DKIMSigner(domain: Self.domain, selector: selector, key: key,
                                        headerCanonicalization: canonicalization, bodyCanonicalization: .relaxed)
                let signed = try DKIMFixtures.signed(Self.message, by: signer, now: Date())
                let verdict = try openDKIMVerify(signed)
                XCTAssertTrue(verdict.contains("verification (s=\(selector), d=\(Self.domain)") && verdict.contains("succeeded"),
                              "\(selector) \(canonicalization): \(verdict)")
                let tampered = Array(String(decoding: signed, as: UTF8.self).replacingOccurrences(of: "Hello from", with: "Hullo from").utf8)
                XCTAssertTrue(try openDKIMVerify(tampered).contains("failed"), "\(selector) \(canonicalization), tampered")
            }
        }
    }

    func testDkimpySignaturesVerifyInPosternThroughUnbound() async throws {
        let resolver = try dns()
        let script = """
            import sys, base64, dkim
            key, algorithm, canonicalization = sys.argv[1], sys.argv[2], sys.argv[3].encode().split(b"/")
            message = sys.stdin.buffer.read()
            selector = b"py" if algorithm == "rsa-sha256" else b"pyed"
            sys.stdout.buffer.write(dkim.sign(message, selector, b"interop.test", open(key, "rb").read(),
                                              canonicalize=tuple(canonicalization), signature_algorithm=algorithm.encode(),
                                              include_headers=[b"from", b"to", b"subject", b"date", b"list-id"]))
            """
        for (algorithm, keyFile) in [("rsa-sha256", "py.pem"), ("ed25519-sha256", "pyed.seed")] {
            for canonicalization in ["simple/simple", "relaxed/relaxed", "relaxed/simple"] {
                let field = try Shell.python(script, [Self.work.path + "/" + keyFile, algorithm, canonicalization], input: Self.message)
                let signed = Array(String(decoding: field, as: UTF8.self).replacingOccurrences(of: "\r\n", with: "\n")
                    .replacingOccurrences(of: "\n", with: "\r\n").utf8) + Self.message
                let outcomes = await DKIMVerifier(resolver: resolver).verify(signed, now: Date())
                XCTAssertEqual(outcomes.map(\.result), [.pass], "\(algorithm) \(canonicalization): \(outcomes)")
                XCTAssertEqual(outcomes.first?.algorithm, algorithm)
                let tampered = Array(String(decoding: signed, as: UTF8.self).replacingOccurrences(of: "Subject: The quarterly", with: "Subject: A quarterly").utf8)
                let tamperedOutcomes = await DKIMVerifier(resolver: resolver).verify(tampered, now: Date())
                XCTAssertEqual(tamperedOutcomes.map(\.result), [.fail])
            }
        }
    }

    func testOpenDKIMSignaturesVerifyInPosternThroughUnbound() async throws {
        let resolver = try dns()
        for canonicalization in ["simple/simple", "relaxed/relaxed", "relaxed/simple"] {
            let tag = UUID().uuidString.prefix(6)
            let conf = Self.work.write("sign-\(tag).conf", """
                Mode s
                Domain \(Self.domain)
                Selector od
                KeyFile \(Self.work.path)/od.private
                SignatureAlgorithm rsa-sha256
                Canonicalization \(canonicalization)
                RequireSafeKeys false
                Syslog no

                """)
            let file = Self.work.write("unsigned-\(tag).eml", Self.message)
            // `opendkim -t` prints "opendkim: FILE:" and then the field it would insert, LF-folded.
            let output = String(decoding: try Shell.run("/usr/sbin/opendkim", ["-x", conf, "-t", file]), as: UTF8.self)
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
            let field = lines.drop { !$0.hasPrefix("DKIM-Signature:") }.filter { !$0.isEmpty }.joined(separator: "\r\n")
            XCTAssertTrue(field.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256"), output)
            let signed = Array((field + "\r\n").utf8) + Self.message
            let outcomes = await DKIMVerifier(resolver: resolver).verify(signed, now: Date())
            XCTAssertEqual(outcomes.map(\.result), [.pass], "\(canonicalization): \(outcomes)")
            XCTAssertEqual(outcomes.first?.selector, "od")
            let tampered = signed.dropLast(8) + Array("changed\r\n".utf8)
            let tamperedOutcomes = await DKIMVerifier(resolver: resolver).verify(Array(tampered), now: Date())
            XCTAssertEqual(tamperedOutcomes.map(\.result), [.fail])
            XCTAssertEqual(tamperedOutcomes.first?.reason, "body hash did not verify")
        }
    }

    func testMissingAndTemporaryKeysThroughTheDNSPlugin() async throws {
        let resolver = try dns()
        let signer = DKIMSigner(domain: Self.domain, selector: "nosuch", key: DKIMFixtures.ed25519Key)
        let signed = try DKIMFixtures.signed(Self.message, by: signer, now: Date())
        let outcomes = await DKIMVerifier(resolver: resolver).verify(signed, now: Date())
        XCTAssertEqual(outcomes.map(\.result), [.permerror])
        XCTAssertEqual(outcomes.first?.reason, "no key for signature")
        // A server that answers nothing: temperror.
        let dead = try DNSPluginFile.resolver(DNSPluginFile.config(nameservers: ["127.0.0.1:\(freePort())"], timeout: "300ms", attempts: 1))
        let deadOutcomes = await DKIMVerifier(resolver: dead).verify(try DKIMFixtures.signed(Self.message, by: DKIMSigner(
            domain: Self.domain, selector: "ped", key: DKIMFixtures.ed25519Key), now: Date()), now: Date())
        XCTAssertEqual(deadOutcomes.map(\.result), [.temperror], "\(deadOutcomes)")
    }
}
