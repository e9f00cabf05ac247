import PosternTestSupport
import PluginAPI
import XCTest
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore

/// SCRAMSecret: the RFC vectors, password checks, and both storage forms.
final class SecretTests: XCTestCase {
    // RFC 7677 §3: user "user", password "pencil", i=4096.
    static let rfc7677Salt = "W22ZaJ0SNY7soEsUEjb6gQ=="
    static let rfc7677StoredKey = "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
    static let rfc7677ServerKey = "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
    // RFC 5802 §5: the same user and password, SHA-1.
    static let rfc5802Salt = "QSXCR+Q6sek8bf92"
    static let rfc5802StoredKey = "6dlGYMOdZcOPutkcNY8U2g7vK9Y="
    static let rfc5802ServerKey = "D+CSWLOshSulAsxiupA+qs2/fTE="

    static func rfc7677() throws -> SCRAMSecret {
        try SCRAMSecret.derive(password: "pencil", algorithm: .sha256, iterations: 4096, salt: base64(rfc7677Salt))
    }

    func testRFC7677KeysExactly() throws {
        let secret = try Self.rfc7677()
        XCTAssertEqual(base64(secret.storedKey), Self.rfc7677StoredKey)
        XCTAssertEqual(base64(secret.serverKey), Self.rfc7677ServerKey)
        XCTAssertEqual(secret.iterations, 4096)
        XCTAssertEqual(secret.algorithm, .sha256)
    }

    func testRFC5802SHA1KeysExactly() throws {
        let secret = try SCRAMSecret.derive(password: "pencil", algorithm: .sha1, iterations: 4096, salt: base64(Self.rfc5802Salt))
        XCTAssertEqual(base64(secret.storedKey), Self.rfc5802StoredKey)
        XCTAssertEqual(base64(secret.serverKey), Self.rfc5802ServerKey)
    }

    /// What a SCRAM server will do with these keys, on the RFCs' own exchanges: recover ClientKey
    /// from the client's proof, check H(ClientKey) = StoredKey, and sign with ServerKey. So the
    /// stored form really serves SCRAM, not only PLAIN.
    func testKeysCheckTheRFCProofsAndGiveTheRFCServerSignatures() throws {
        let vectors: [(SCRAMSecret.Algorithm, String, String, String, String, String)] = [
            (.sha1, Self.rfc5802Salt, "fyko+d2lbbFgONRv9qkxdawL", "3rfcNHYJY1ZVvWVs7j",
             "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=", "rmF9pqV8S7suAoZWja4dJRkFsKQ="),
            (.sha256, Self.rfc7677Salt, "rOprNGfwEbeRWgbNEkqO", "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
             "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
        ]
        for (algorithm, salt, clientNonce, serverNonce, proof, signature) in vectors {
            let secret = try SCRAMSecret.derive(password: "pencil", algorithm: algorithm, salt: base64(salt))
            let authMessage = "n=user,r=\(clientNonce),r=\(clientNonce)\(serverNonce),s=\(salt),i=4096,c=biws,r=\(clientNonce)\(serverNonce)"
            let clientSignature = algorithm.hmac(key: secret.storedKey, b(authMessage))
            let clientKey = zip(base64(proof), clientSignature).map { $0 ^ $1 }
            XCTAssertEqual(algorithm.hash(clientKey), secret.storedKey, "\(algorithm)")
            XCTAssertEqual(base64(algorithm.hmac(key: secret.serverKey, b(authMessage))), signature, "\(algorithm)")
        }
    }

    func testVerifyRunsThePasswordThroughPBKDF2() throws {
        let secret = try Self.rfc7677()
        XCTAssertTrue(secret.verify(password: "pencil"))
        for wrong in ["Pencil", "pencil ", " pencil", "pencil\0", "", "pencil2", "pencilpencil"] {
            XCTAssertFalse(secret.verify(password: wrong), wrong.debugDescription)
        }
        let sha1 = try SCRAMSecret.derive(password: "pencil", algorithm: .sha1, salt: base64(Self.rfc5802Salt))
        XCTAssertTrue(sha1.verify(password: "pencil"))
        XCTAssertFalse(sha1.verify(password: "pencil!"))
    }

    func testDefaultsAndFreshSalts() throws {
        let a = try SCRAMSecret.derive(password: "pencil")
        let b = try SCRAMSecret.derive(password: "pencil")
        XCTAssertEqual(a.algorithm, .sha256)
        XCTAssertEqual(a.iterations, SCRAMSecret.defaultIterations)
        XCTAssertEqual(SCRAMSecret.defaultIterations, 4096)
        XCTAssertEqual(a.salt.count, 16)
        XCTAssertNotEqual(a.salt, b.salt, "each secret draws its own salt")
        XCTAssertNotEqual(a.storedKey, b.storedKey)
        XCTAssertTrue(a.verify(password: "pencil") && b.verify(password: "pencil"))
    }

    func testCallerChosenIterationsChangeTheKeys() throws {
        let salt = base64(Self.rfc7677Salt)
        let fewer = try SCRAMSecret.derive(password: "pencil", iterations: 1, salt: salt)
        XCTAssertEqual(fewer.iterations, 1)
        XCTAssertNotEqual(fewer.storedKey, try Self.rfc7677().storedKey)
        XCTAssertTrue(fewer.verify(password: "pencil"))
        XCTAssertTrue(fewer.encoded.hasPrefix("SCRAM-SHA-256$1:"))
    }

    func testPasswordPreparationRejectsNULAndKeepsUTF8AsIs() throws {
        XCTAssertThrowsError(try SCRAMSecret.derive(password: "pen\0cil")) {
            XCTAssertEqual($0 as? SCRAMSecret.SecretError, .prohibitedCharacter)
        }
        XCTAssertNil(SCRAMSecret.prepare(password: "\0"))
        XCTAssertEqual(SCRAMSecret.prepare(password: "p\u{E4}ss"), hex("70 c3 a4 73 73"))
        // No normalisation: the decomposed form (a + U+0308) is another password.
        let secret = try SCRAMSecret.derive(password: "p\u{E4}ss", iterations: 16)
        XCTAssertTrue(secret.verify(password: "p\u{E4}ss"))
        XCTAssertFalse(secret.verify(password: "pa\u{308}ss"))
        // Nor any mapping of non-ASCII spaces.
        let spaced = try SCRAMSecret.derive(password: "a\u{A0}b", iterations: 16)
        XCTAssertFalse(spaced.verify(password: "a b"))
        XCTAssertTrue(spaced.verify(password: "a\u{A0}b"))
    }

    func testBadParametersAreRefused() {
        XCTAssertThrowsError(try SCRAMSecret.derive(password: "p", iterations: 0)) {
            XCTAssertEqual($0 as? SCRAMSecret.SecretError, .invalidIterations(0))
        }
        XCTAssertThrowsError(try SCRAMSecret.derive(password: "p", iterations: SCRAMSecret.maximumIterations + 1))
        XCTAssertThrowsError(try SCRAMSecret.derive(password: "p", salt: [])) {
            XCTAssertEqual($0 as? SCRAMSecret.SecretError, .emptySalt)
        }
        XCTAssertThrowsError(try SCRAMSecret(algorithm: .sha256, salt: [1], iterations: 4096, storedKey: [UInt8](repeating: 0, count: 20),
                                             serverKey: [UInt8](repeating: 0, count: 32)), "SHA-1-sized key for SHA-256")
    }

    func testStorageStringIsPostgreSQLsForm() throws {
        let secret = try Self.rfc7677()
        let expected = "SCRAM-SHA-256$4096:\(Self.rfc7677Salt)$\(Self.rfc7677StoredKey):\(Self.rfc7677ServerKey)"
        XCTAssertEqual(secret.encoded, expected)
        let decoded = try SCRAMSecret(encoded: expected)
        XCTAssertEqual(decoded, secret)
        XCTAssertTrue(decoded.verify(password: "pencil"))

        let sha1 = try SCRAMSecret.derive(password: "pencil", algorithm: .sha1, salt: base64(Self.rfc5802Salt))
        XCTAssertEqual(sha1.encoded, "SCRAM-SHA-1$4096:\(Self.rfc5802Salt)$\(Self.rfc5802StoredKey):\(Self.rfc5802ServerKey)")
        XCTAssertEqual(try SCRAMSecret(encoded: sha1.encoded), sha1)
    }

    func testStorageStringParsingIsStrict() throws {
        let good = try Self.rfc7677().encoded
        let salt = Self.rfc7677Salt, stored = Self.rfc7677StoredKey, server = Self.rfc7677ServerKey
        let bad: [(String, SCRAMSecret.SecretError)] = [
            ("", .malformed("expected SCHEME$ITERATIONS:SALT$STOREDKEY:SERVERKEY")),
            ("md5abcdef", .malformed("expected SCHEME$ITERATIONS:SALT$STOREDKEY:SERVERKEY")),
            (good + "$", .malformed("expected SCHEME$ITERATIONS:SALT$STOREDKEY:SERVERKEY")),
            ("SCRAM-SHA-512$4096:\(salt)$\(stored):\(server)", .unsupportedScheme("SCRAM-SHA-512")),
            ("scram-sha-256$4096:\(salt)$\(stored):\(server)", .unsupportedScheme("scram-sha-256")),
            ("SCRAM-SHA-256$4096$\(stored):\(server)", .malformed("expected ITERATIONS:SALT and STOREDKEY:SERVERKEY")),
            ("SCRAM-SHA-256$4096:\(salt)$\(stored)", .malformed("expected ITERATIONS:SALT and STOREDKEY:SERVERKEY")),
            ("SCRAM-SHA-256$4096:\(salt):x$\(stored):\(server)", .malformed("expected ITERATIONS:SALT and STOREDKEY:SERVERKEY")),
            ("SCRAM-SHA-256$+4096:\(salt)$\(stored):\(server)", .malformed("iterations \"+4096\" is not a decimal count")),
            ("SCRAM-SHA-256$ 4096:\(salt)$\(stored):\(server)", .malformed("iterations \" 4096\" is not a decimal count")),
            ("SCRAM-SHA-256$:\(salt)$\(stored):\(server)", .malformed("iterations \"\" is not a decimal count")),
            ("SCRAM-SHA-256$0:\(salt)$\(stored):\(server)", .invalidIterations(0)),
            ("SCRAM-SHA-256$99999999:\(salt)$\(stored):\(server)", .invalidIterations(99_999_999)),
            ("SCRAM-SHA-256$4096:$\(stored):\(server)", .emptySalt),
            ("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ$\(stored):\(server)", .malformed("salt is not base64")),
            ("SCRAM-SHA-256$4096:W22Z aJ0SNY7soEsUEjb6gQ==$\(stored):\(server)", .malformed("salt is not base64")),
            ("SCRAM-SHA-256$4096:\(salt)$\(stored.dropLast(4))AAA*:\(server)", .malformed("stored key is not base64")),
            ("SCRAM-SHA-256$4096:\(salt)$\(stored):\(Self.rfc5802ServerKey)", .malformed("SCRAM-SHA-256 keys are 32 bytes, found 32 and 20")),
        ]
        for (text, error) in bad {
            XCTAssertThrowsError(try SCRAMSecret(encoded: text), text) {
                XCTAssertEqual($0 as? SCRAMSecret.SecretError, error, text)
            }
        }
    }

    func testStoredSecretFieldsAndRoundTrip() throws {
        let secret = try Self.rfc7677()
        let stored = secret.storedSecret
        XCTAssertEqual(stored.scheme, "SCRAM-SHA-256")
        XCTAssertEqual(Set(stored.fields.keys), ["salt", "iterations", "stored-key", "server-key"])
        XCTAssertEqual(stored.fields["salt"], base64(Self.rfc7677Salt))
        XCTAssertEqual(stored.fields["iterations"], b("4096"))
        XCTAssertEqual(stored.fields["stored-key"], base64(Self.rfc7677StoredKey))
        XCTAssertEqual(stored.fields["server-key"], base64(Self.rfc7677ServerKey))
        XCTAssertEqual(try SCRAMSecret(stored), secret)

        let sha1 = try SCRAMSecret.derive(password: "pencil", algorithm: .sha1, salt: base64(Self.rfc5802Salt))
        XCTAssertEqual(sha1.storedSecret.scheme, "SCRAM-SHA-1")
        XCTAssertEqual(try SCRAMSecret(sha1.storedSecret), sha1)
    }

    func testStoredSecretParsingIsStrict() throws {
        let good = try Self.rfc7677().storedSecret
        func with(_ change: (inout StoredSecret) -> Void) -> StoredSecret { var s = good; change(&s); return s }
        let bad: [(StoredSecret, SCRAMSecret.SecretError)] = [
            (with { $0.scheme = "PLAIN" }, .unsupportedScheme("PLAIN")),
            (with { $0.fields["salt"] = nil }, .malformed("missing field salt")),
            (with { $0.fields["server-key"] = nil }, .malformed("missing field server-key")),
            (with { $0.fields["iterations"] = [0x00, 0x00, 0x10, 0x00] }, .malformed("iterations \"\0\0\u{10}\0\" is not a decimal count")),
            (with { $0.fields["iterations"] = [0xff] }, .malformed("iterations is not ASCII")),
            (with { $0.fields["iterations"] = b("0") }, .invalidIterations(0)),
            (with { $0.fields["stored-key"] = [1, 2, 3] }, .malformed("SCRAM-SHA-256 keys are 32 bytes, found 3 and 32")),
        ]
        for (secret, error) in bad {
            XCTAssertThrowsError(try SCRAMSecret(secret)) { XCTAssertEqual($0 as? SCRAMSecret.SecretError, error) }
        }
    }

    func testDescriptionKeepsKeysOutOfLogs() throws {
        let secret = try Self.rfc7677()
        let text = "\(secret)"
        XCTAssertEqual(text, "SCRAMSecret(SCRAM-SHA-256, iterations: 4096, salt: 16 bytes, keys redacted)")
        XCTAssertFalse(text.contains(Self.rfc7677StoredKey))
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(SCRAMSecret.constantTimeEqual([], []))
        XCTAssertTrue(SCRAMSecret.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(SCRAMSecret.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(SCRAMSecret.constantTimeEqual([0, 2, 3], [1, 2, 3]))
        XCTAssertFalse(SCRAMSecret.constantTimeEqual([1, 2], [1, 2, 3]))
    }
}
