import PluginAPI
import XCTest

/// `LegacyPasswordHash` against hashes made by the real tools, committed here as byte fixtures:
/// `doveadm pw -s SCHEME -p PASSWORD` (Dovecot 2.3, Debian 12), `openssl passwd -1/-5/-6` and
/// Python's `crypt.crypt` over libxcrypt (yescrypt, `$2b$`, `rounds=`). Each fixture must verify its
/// password and refuse a wrong one, a one-character change and the empty password.
final class LegacyHashTests: XCTestCase {
    static let password = "Tr0ub4dor&3"
    static let utf8Password = "pässwörd ü"

    /// (stored text, canonical scheme, password)
    static let fixtures: [(String, LegacyPasswordHash.Scheme, String)] = [
        ("{PLAIN}Tr0ub4dor&3", .plain, password),
        ("{CLEAR}Tr0ub4dor&3", .plain, password),
        ("{PLAIN-MD5}4ece57a61323b52ccffdbef021956754", .plainMD5, password),
        ("{PLAIN-MD5}a0f7b289f21392d7801b26f617c460f5", .plainMD5, utf8Password),
        ("{MD5}$1$jgBSFHU5$ZPt/q1k9HUrTOPp812lev0", .md5Crypt, password),
        ("{MD5-CRYPT}$1$1304Lzb9$WwWj4udaTR/sPIi1tGoRD.", .md5Crypt, password),
        ("{SHA}h0Vy56WuaklGamrFeLmK26eMaqY=", .sha1, password),
        ("{SHA1}h0Vy56WuaklGamrFeLmK26eMaqY=", .sha1, password),
        ("{SSHA}dr5oHegMjqzXG3MMM9XmkKovDc7U75C6", .ssha1, password),
        ("{SSHA}lbnYpPun0w6b73Ko5rn35Rod1NDofXg3", .ssha1, utf8Password),
        ("{SHA256}SEhuFRToQjRv9AWx5F9EBZroJhnyMG+Z0JQNyzhukfc=", .sha256, password),
        ("{SHA256}Z8yvX2vU7X4MVvfpjwzOn+GkwdfeL7fmw1VpVnUZLtg=", .sha256, utf8Password),
        ("{SSHA256}3lutePtlo3KyOw6F2VIibHRbCUUF2Wdza4KttIwQIQH8kidd", .ssha256, password),
        ("{SSHA256}TpJIGEwPt8vjQicLLCsZZ/tcCCtBOQvJo71V+VDt0YyGSUn4", .ssha256, utf8Password),
        ("{SHA512}xyu2IccEDPS2R0BjqaeXJpDiUvNa2+fPr/Wx7iMW7+c4LnI9QeATor+8M8MAfFDFhH0hqInM6DhTbqxyeAjeQA==", .sha512, password),
        ("{SSHA512}ylsdMxL6juBmStY0/X8L26RNHzbMDZID9Aq8kJxfVCgi+WNMY0rfBe2OS/ObnFjzT3FUcK7MnNRIKnOyP4VKGyxVKiM=", .ssha512, password),
        ("{SSHA512}+3r5LVSXBUvS9pruk4oSkSKYwH5wm57U5FEj7JHO0B9CFwhH7gqMSy6GVvOwDZ/gGNzjSPPptIjf5urjompCQdQ+dCs=", .ssha512, utf8Password),
        ("{SHA256-CRYPT}$5$QczdotG4QlRl5//w$pghy6rkk9JWWJ2doEK3rgxToSIdyVZuqEOkWVeRkht1", .sha256Crypt, password),
        ("{SHA512-CRYPT}$6$v5mCIspu67RoPkko$AcXKtasR3eu7HhCgEacKzP/Mf3YInvJ4RHMGkv6D3oftLOqBGiFGFi54fST6oXaqhkJJvD35Taih20OHj89Xx0", .sha512Crypt, password),
        ("{SHA512-CRYPT}$6$1achCHJ0ymUy5YbV$Tgen78J9wEEySrViPUqQ7ku2eJITcI7VPMivdoauY/NW2re/R/gJ38dHWRJO2WfXoIEzZF7qdyZk/YihYUN51.", .sha512Crypt, utf8Password),
        ("{BLF-CRYPT}$2y$05$j2pEYrIfEXpCUXGL6LKlw.zXwKRi5ZnHYNrjUaIdQ9CJrVauC8wCy", .blowfishCrypt, password),
        ("{BLF-CRYPT}$2y$05$xqeXAAebmitxNz2P/q7OHO6fDAKJ6hR2N1WNo/MuWbVMNQT/NP45i", .blowfishCrypt, utf8Password),
        ("{CRYPT}$2y$05$g6SYPkmW76zZbnsN.8k7b.EtxocsKeKWMxPWiebNnFnPtcmiOP7K2", .blowfishCrypt, password),
        ("{CRAM-MD5}c0a49b541c47c13e0fed75e90df0510e8e19d265316dbafce5048e1f92c94232", .cramMD5, password),
        ("{CRAM-MD5}b0af0537b4a0c18868b9526c9f9fff9b576dd46d9fccfd51784921b816b952b9", .cramMD5, utf8Password),
        // A key longer than the 64-byte HMAC block is hashed first (RFC 2104).
        ("{CRAM-MD5}52197db948d0932512a61b183e7d05b04e94d60a3bb0d00f92d3df52a5d275ca", .cramMD5, String(repeating: "x", count: 100)),
        // Bare crypt(3) strings: openssl passwd, Python crypt over libxcrypt.
        ("$1$abcdefgh$FErPkDeIHv781e9EexumS.", .md5Crypt, password),
        ("$5$abcdefgh$5trO9qTaLlR3B5F0SFWD25qek6wuypUgQsCdjQ8/IcC", .sha256Crypt, password),
        ("$5$rounds=10000$saltsaltsalt$lcbqXk5SOA6XVze1m4R3e0e3jL.pH6URknHHwO9TAe8", .sha256Crypt, password),
        ("$6$abcdefgh$4U6jebhBw.wRMvkXtOStfkrjBM/.iDeiWvfh4qpnUke7UGqEpD4aifufCgop0XRNXWgsGN1Da9is/9zY7KCTl.", .sha512Crypt, password),
        ("$6$x$w8N132CJplCchjOniV8ZNpPIo0MFMbSsUpk0r7NFwEyWgPFJoeie1bajqScfCrwG2Yqy3692T8lMwEuJdt9pv1", .sha512Crypt, utf8Password),
        ("$2b$04$abcdefghijklmnopqrstuu5UWyuxawIwQzpnlr0Mft5nu6B9cYh/C", .blowfishCrypt, password),
        ("$y$j9T$F5Jx5fExrKuPp53xLKQ..1$n.pFdveumVbvkIvhVT2m7V3vCOvHL9dASsBq3JUoRgC", .yescrypt, password),
        ("$y$j9T$abcdefghijklmnopqrstu.$lpg9GySkdtMsm8HBMlt.QQYmdAXlSU2ml1WF8CmBfM9", .yescrypt, utf8Password),
        ("abWL7Sj501Z46", .desCrypt, password),
    ]

    func testEveryFixtureVerifiesItsPasswordOnly() throws {
        for (text, scheme, password) in Self.fixtures {
            let hash = try LegacyPasswordHash(parsing: text)
            XCTAssertEqual(hash.scheme, scheme, text)
            XCTAssertTrue(hash.verify(password: password), "\(text) should verify its password")
            // DES crypt reads 8 characters only: a longer password with the same 8 matches (the
            // reason it is a legacy scheme); every other scheme sees the whole password.
            if scheme != .desCrypt { XCTAssertFalse(hash.verify(password: password + "x"), "\(text) verified a longer password") }
            if scheme != .desCrypt { XCTAssertFalse(hash.verify(password: String(password.dropLast())), "\(text) verified a shorter password") }
            XCTAssertFalse(hash.verify(password: password.uppercased() == password ? password.lowercased() : password.uppercased()), text)
            XCTAssertFalse(hash.verify(password: ""), "\(text) verified the empty password")
            XCTAssertFalse(hash.verify(password: password + "\u{0}"), "\(text) verified a password with NUL")
            // The canonical form parses back to the same hash.
            XCTAssertEqual(try LegacyPasswordHash(parsing: hash.encoded), hash, text)
            XCTAssertFalse(hash.description.contains(String(text.suffix(8))), "the description shows the hash")
        }
    }

    func testSchemeNamesAreCaseInsensitiveAndCanonicalised() throws {
        XCTAssertEqual(try LegacyPasswordHash(parsing: "{clear}abc").encoded, "{PLAIN}abc")
        XCTAssertEqual(try LegacyPasswordHash(parsing: "{sha1}h0Vy56WuaklGamrFeLmK26eMaqY=").encoded, "{SHA}h0Vy56WuaklGamrFeLmK26eMaqY=")
        XCTAssertEqual(try LegacyPasswordHash(parsing: "{MD5}$1$abcdefgh$FErPkDeIHv781e9EexumS.").encoded, "{MD5-CRYPT}$1$abcdefgh$FErPkDeIHv781e9EexumS.")
        XCTAssertEqual(try LegacyPasswordHash(parsing: "$6$abcdefgh$4U6jebhBw.wRMvkXtOStfkrjBM/.iDeiWvfh4qpnUke7UGqEpD4aifufCgop0XRNXWgsGN1Da9is/9zY7KCTl.").scheme, .sha512Crypt)
    }

    func testHexDigestsAreAcceptedAsDovecotDoes() throws {
        // {SHA} of "abc" in hex rather than base64.
        let hash = try LegacyPasswordHash(parsing: "{SHA}a9993e364706816aba3e25717850c26c9cd0d89d")
        XCTAssertTrue(hash.verify(password: "abc"))
        XCTAssertFalse(hash.verify(password: "abd"))
    }

    /// Malformed hashes are refused when parsed (at import), never stored to lock an account out.
    func testMalformedHashesAreRefused() {
        let malformed = [
            "", "{}", "{PLAIN}", "{NOPE}abc", "{SHA512-CRYPT", "plaintext-without-scheme",
            "{PLAIN-MD5}4ece57a61323b52ccffdbef02195675",        // 31 hex digits
            "{PLAIN-MD5}zzce57a61323b52ccffdbef021956754",       // not hex
            "{SHA}h0Vy56WuaklGamrFeLmK26eMa==",                  // 18 bytes
            "{SHA}!!!!",                                          // not base64
            "{SSHA}h0Vy56WuaklGamrFeLmK26eMaqY=",                 // a digest with no salt
            "{SHA256}h0Vy56WuaklGamrFeLmK26eMaqY=",               // a SHA-1 length
            "{SSHA512}AAAA",
            "{CRAM-MD5}c0a49b541c47c13e0fed75e90df0510e",         // 32 hex digits, not 64
            "{CRAM-MD5}g0a49b541c47c13e0fed75e90df0510e8e19d265316dbafce5048e1f92c94232",
            "{SHA512-CRYPT}$5$QczdotG4QlRl5//w$pghy6rkk9JWWJ2doEK3rgxToSIdyVZuqEOkWVeRkht1",  // prefix of another scheme
            "{MD5-CRYPT}$1$abc$short",
            "$6$abcdefgh$tooshort",
            "$6$rounds=99999999$abcdefgh$4U6jebhBw.wRMvkXtOStfkrjBM/.iDeiWvfh4qpnUke7UGqEpD4aifufCgop0XRNXWgsGN1Da9is/9zY7KCTl.",
            "$2y$31$j2pEYrIfEXpCUXGL6LKlw.zXwKRi5ZnHYNrjUaIdQ9CJrVauC8wCy",   // cost 2^31: refused, not run
            "$2y$5$j2pEYrIfEXpCUXGL6LKlw.zXwKRi5ZnHYNrjUaIdQ9CJrVauC8wCy",
            "$7$whatever$xyz", "$y$j9T$onlysalt", "abWL7Sj501Z4", "ab:L7Sj501Z46", "$1$ab c$FErPkDeIHv781e9EexumS.",
            "{SHA256-CRYPT}$5$QczdotG4QlRl5//w$pghy6rkk9JWWJ2doEK3rgxToSIdyVZuqEOkWVeRkht1\u{0}",
        ]
        for text in malformed {
            XCTAssertThrowsError(try LegacyPasswordHash(parsing: text), "accepted \(text.debugDescription)")
        }
    }

    /// A hash whose crypt string is well formed but which libxcrypt cannot compute verifies
    /// nothing rather than crashing.
    func testUncomputableCryptNeverVerifies() throws {
        let hash = try LegacyPasswordHash(parsing: "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$n.pFdveumVbvkIvhVT2m7V3vCOvHL9dASsBq3JUoRgD")
        XCTAssertFalse(hash.verify(password: Self.password))
        let odd = try LegacyPasswordHash(parsing: "$y$zzz$abc$n.pFdveumVbvkIvhVT2m7V3vCOvHL9dASsBq3JUoRgC")
        XCTAssertFalse(odd.verify(password: Self.password))
    }
}
