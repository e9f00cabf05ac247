import Foundation
import PluginAPI
import PluginCredentials
import PosternTestSupport
import XCTest
@testable import PosternSenderAuthCore

/// Key files: PEM forms from openssl, the records they publish, and `postern admin dkim keygen`
/// through the built binary; the signer's field layout and default field list.
final class DKIMKeyTests: XCTestCase {
    func testLoadsPEMFormsFromOpenSSL() throws {
        let dir = TempDir("dkim-keys")
        let pkcs8 = try Shell.openssl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])
        let pkcs1 = try Shell.openssl(["rsa", "-traditional"], input: pkcs8)
        XCTAssertTrue(String(decoding: pkcs1, as: UTF8.self).contains("BEGIN RSA PRIVATE KEY"))
        let spki = try Shell.openssl(["pkey", "-pubout", "-outform", "DER"], input: pkcs8)
        for pem in [pkcs8, pkcs1] {
            let key = try DKIMSigningKey.load(path: dir.write("key-\(UUID().uuidString.prefix(4)).pem", pem))
            XCTAssertEqual(key.algorithm, .rsaSHA256)
            XCTAssertEqual(key.keyRecord, "v=DKIM1; k=rsa; p=" + Data(spki).base64EncodedString())
        }
        let ed = try Shell.openssl(["genpkey", "-algorithm", "ed25519"])
        let edRaw = try Shell.openssl(["pkey", "-pubout", "-outform", "DER"], input: ed).suffix(32)
        let edKey = try DKIMSigningKey.load(path: dir.write("ed.pem", ed))
        XCTAssertEqual(edKey.algorithm, .ed25519SHA256)
        XCTAssertEqual(edKey.keyRecord, "v=DKIM1; k=ed25519; p=" + Data(edRaw).base64EncodedString())
        // What it writes back reads again as the same key.
        XCTAssertEqual(try DKIMSigningKey(pem: edKey.pemRepresentation).keyRecord, edKey.keyRecord)

        let encrypted = try Shell.openssl(["pkey", "-aes128", "-passout", "pass:x"], input: pkcs8)
        XCTAssertThrowsError(try DKIMSigningKey.load(path: dir.write("enc.pem", encrypted))) {
            XCTAssertTrue("\($0)".contains("encrypted"), "\($0)")
        }
        let ec = try Shell.openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
        XCTAssertThrowsError(try DKIMSigningKey.load(path: dir.write("ec.pem", ec))) {
            XCTAssertTrue("\($0)".contains("neither RSA nor Ed25519"), "\($0)")
        }
        XCTAssertThrowsError(try DKIMSigningKey.load(path: dir.write("junk.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")))
        XCTAssertThrowsError(try DKIMSigningKey.load(path: dir.path + "/missing.pem")) {
            XCTAssertTrue("\($0)".contains("cannot read the DKIM key"), "\($0)")
        }
    }

    func testSignatureFieldLayout() throws {
        let signer = DKIMSigner(domain: "Example.ORG", selector: "s2024", key: DKIMFixtures.rsaKey, identity: "alice@example.org", expiry: 600)
        let field = try signer.signatureField(for: DKIMFixtures.message(), now: DKIMFixtures.now)
        XCTAssertTrue(field.hasPrefix("DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=s2024;"), field)
        XCTAssertTrue(field.hasSuffix("\r\n"))
        XCTAssertTrue(field.contains("t=1704189600; x=1704190200; i=alice@example.org;"), field)
        let lines = field.dropLast(2).components(separatedBy: "\r\n")
        XCTAssertTrue(lines.allSatisfy { $0.utf8.count <= 78 }, field)
        XCTAssertTrue(lines.dropFirst().allSatisfy { $0.hasPrefix("\t") }, field)
        let parsed = try DKIMSignature.parse(Array(DKIMMessage(Array((field + "\r\n").utf8)).fields[0].value))
        XCTAssertEqual(parsed.signedHeaders, ["from", "from", "subject", "subject", "date", "date", "to", "message-id",
                                              "mime-version", "content-type"])
        XCTAssertEqual(parsed.signature.count, 256)
    }

    func testDefaultSignedHeaders() {
        let message = DKIMMessage(Array(("From: a@example.org\r\nTo: b@example.net\r\nTo: c@example.net\r\nCc: d@example.net\r\n"
            + "Received: x\r\nList-Id: <l.example.org>\r\nList-Unsubscribe: <mailto:u@example.org>\r\nX-Mailer: m\r\n\r\n").utf8))
        XCTAssertEqual(DKIMSigner.defaultSignedHeaders(for: message),
                       ["from", "from", "subject", "date", "to", "to", "cc", "list-id", "list-unsubscribe"])
    }

    func testSignerRefusesWhatCannotBeSigned() {
        let key = DKIMFixtures.ed25519Key
        XCTAssertThrowsError(try DKIMSigner(domain: "example.org", selector: "s", key: key)
            .signatureField(for: Array("To: b@example.net\r\n\r\nbody\r\n".utf8), now: DKIMFixtures.now))
        XCTAssertThrowsError(try DKIMSigner(domain: "bad domain", selector: "s", key: key)
            .signatureField(for: DKIMFixtures.message(), now: DKIMFixtures.now))
        XCTAssertThrowsError(try DKIMSigner(domain: "example.org", selector: "s", key: key, signedHeaders: ["to"])
            .signatureField(for: DKIMFixtures.message(), now: DKIMFixtures.now))
        XCTAssertThrowsError(try DKIMSigner(domain: "example.org", selector: "s", key: key, identity: "a@example.com")
            .signatureField(for: DKIMFixtures.message(), now: DKIMFixtures.now))
    }

    func testKeygenCommandWritesKeyAndPrintsRecord() throws {
        let dir = TempDir("dkim-keygen")
        let config = dir.write("postern.toml", "data_dir = \"\(dir.path)/data\"\nuser = \"root\"\n")
        let out = dir.path + "/keys"
        let rsa = Build.run(Build.postern, ["admin", "dkim", "keygen", "example.org", "mail2024", "--out", out, "-c", config])
        XCTAssertEqual(rsa.status, 0, rsa.output)
        let keyFile = out + "/example.org.mail2024.key"
        XCTAssertTrue(rsa.output.contains("wrote \(keyFile)"), rsa.output)
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        let key = try DKIMSigningKey.load(path: keyFile)
        XCTAssertEqual(key.algorithm, .rsaSHA256)
        let zoneLine = try XCTUnwrap(rsa.output.split(separator: "\n").first { $0.hasPrefix("mail2024._domainkey.example.org. IN TXT \"") })
        let strings = zoneLine.components(separatedBy: "\"").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        XCTAssertGreaterThan(strings.count, 1, "a 2048-bit key's record needs two strings")
        XCTAssertTrue(strings.allSatisfy { $0.utf8.count <= 255 })
        XCTAssertEqual(strings.joined(), key.keyRecord)

        // A second run never replaces the key.
        let again = Build.run(Build.postern, ["admin", "dkim", "keygen", "example.org", "mail2024", "--out", out, "-c", config])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertEqual(try DKIMSigningKey.load(path: keyFile).keyRecord, key.keyRecord)

        // Ed25519 into the data directory's dkim/, as JSON.
        let ed = Build.run(Build.postern, ["admin", "dkim", "keygen", "example.org", "ed", "--algorithm", "ed25519", "--json", "-c", config])
        XCTAssertEqual(ed.status, 0, ed.output)
        let line = try XCTUnwrap(ed.output.split(separator: "\n").first { $0.hasPrefix("{") })
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(json["key_file"] as? String, dir.path + "/data/dkim/example.org.ed.key")
        let edKey = try DKIMSigningKey.load(path: dir.path + "/data/dkim/example.org.ed.key")
        XCTAssertEqual(json["record"] as? String, edKey.keyRecord)
        XCTAssertEqual(json["zone_line"] as? String, "ed._domainkey.example.org. IN TXT \"\(edKey.keyRecord)\"")

        for bad in [["--algorithm", "dsa"], ["--bits", "1024"]] {
            let refused = Build.run(Build.postern, ["admin", "dkim", "keygen", "example.org", "x"] + bad + ["--out", out, "-c", config])
            XCTAssertNotEqual(refused.status, 0, bad.joined(separator: " "))
        }
        let badName = Build.run(Build.postern, ["admin", "dkim", "keygen", "../etc", "x", "--out", out, "-c", config])
        XCTAssertNotEqual(badName.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.path + "/etc.x.key"))
    }
}
