// crypt(3) through libxcrypt's re-entrant crypt_r; internal so PluginAPI's clients never see it.
internal import CLibCrypt
import Foundation

/// A password hash imported from an older system, in Dovecot's `{SCHEME}hash` form or as a bare
/// crypt(3) string. It verifies a cleartext password once, at the account's first login, after
/// which the store replaces it with SCRAM keys (`SCRAMSecret`). It never serves SCRAM or any
/// mechanism that does not see the password, which is why these accounts answer SCRAM with
/// "no secret" until they have logged in once with PLAIN or LOGIN.
///
/// Parsing is strict (known scheme, payload of the scheme's length and alphabet), so a typo in an
/// import file is refused at import rather than leaving an account nobody can log in to.
/// Verification compares in constant time, and bounds the work factors that a hash may ask for.
public struct LegacyPasswordHash: Sendable, Equatable, CustomStringConvertible {
    /// The schemes Postern verifies. The raw value is the canonical name used in storage and in
    /// `postern admin auth report`; Dovecot's aliases map onto these (`CLEAR` is `PLAIN`, `SHA1`
    /// is `SHA`, `MD5` is `MD5-CRYPT`, `CRYPT` and bare crypt strings by their prefix).
    public enum Scheme: String, Sendable, CaseIterable {
        case plain = "PLAIN"
        case plainMD5 = "PLAIN-MD5"
        case sha1 = "SHA"
        case ssha1 = "SSHA"
        case sha256 = "SHA256"
        case ssha256 = "SSHA256"
        case sha512 = "SHA512"
        case ssha512 = "SSHA512"
        case cramMD5 = "CRAM-MD5"
        case md5Crypt = "MD5-CRYPT"
        case sha256Crypt = "SHA256-CRYPT"
        case sha512Crypt = "SHA512-CRYPT"
        case blowfishCrypt = "BLF-CRYPT"
        case yescrypt = "YESCRYPT"
        case desCrypt = "DES-CRYPT"

        /// Whether the hash is computed by crypt(3).
        var isCrypt: Bool {
            switch self {
            case .md5Crypt, .sha256Crypt, .sha512Crypt, .blowfishCrypt, .yescrypt, .desCrypt: return true
            default: return false
            }
        }

        /// The digest length of the SHA family and PLAIN-MD5, nil for the others.
        var digestLength: Int? {
            switch self {
            case .plainMD5: return 16
            case .sha1, .ssha1: return 20
            case .sha256, .ssha256: return 32
            case .sha512, .ssha512: return 64
            default: return nil
            }
        }

        var isSalted: Bool { self == .ssha1 || self == .ssha256 || self == .ssha512 }
    }

    public enum ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        case unknownScheme(String)
        /// The payload does not fit the scheme; the text says how (never the hash itself).
        case malformed(scheme: String, String)

        public var description: String {
            switch self {
            case .unknownScheme(let s): return "unknown password scheme '\(s)'"
            case .malformed(let s, let why): return "malformed \(s) hash: \(why)"
            }
        }
    }

    /// Upper bounds on the work a stored hash may ask for, so that a hostile or corrupt import
    /// cannot make each login spin: bcrypt cost 2^16, SHA-crypt one million rounds.
    public static let maximumBlowfishCost = 16
    public static let maximumSHACryptRounds = 1_000_000

    public let scheme: Scheme
    /// What follows `{SCHEME}`: the cleartext for PLAIN, the crypt string, hex or base64.
    let payload: String
    /// The decoded digest (and salt after it) for the SHA family, the 32 context bytes for
    /// CRAM-MD5, the 16 digest bytes for PLAIN-MD5.
    let bytes: [UInt8]

    /// Parses `{SCHEME}payload` or a bare crypt string (`$6$...`, `$2y$...`, 13-character DES).
    public init(parsing text: String) throws {
        if text.hasPrefix("{") {
            guard let close = text.firstIndex(of: "}") else { throw ParseError.malformed(scheme: "?", "no closing brace after the scheme") }
            let name = text[text.index(after: text.startIndex)..<close].uppercased()
            let payload = String(text[text.index(after: close)...])
            let scheme: Scheme
            switch name {
            case "PLAIN", "CLEAR", "CLEARTEXT": scheme = .plain
            case "PLAIN-MD5": scheme = .plainMD5
            case "SHA", "SHA1": scheme = .sha1
            case "MD5", "MD5-CRYPT": scheme = .md5Crypt
            case "CRYPT": scheme = try Self.cryptScheme(payload, label: name)
            default:
                // Postern's own names for the crypt schemes Dovecot calls CRYPT (YESCRYPT,
                // DES-CRYPT) are accepted too, so that `encoded` always parses back.
                guard let s = Scheme(rawValue: name) else { throw ParseError.unknownScheme(name) }
                scheme = s
            }
            try self.init(scheme: scheme, payload: payload, label: name)
        } else if text.hasPrefix("$") || text.utf8.count == 13 {
            try self.init(scheme: try Self.cryptScheme(text, label: "CRYPT"), payload: text, label: "CRYPT")
        } else {
            throw ParseError.unknownScheme(String(text.prefix(while: { $0 != "$" && $0 != "}" }).prefix(16)))
        }
    }

    private init(scheme: Scheme, payload: String, label: String) throws {
        func bad(_ why: String) -> ParseError { .malformed(scheme: label, why) }
        self.scheme = scheme
        self.payload = payload
        switch scheme {
        case .plain:
            guard !payload.isEmpty, !payload.utf8.contains(0) else { throw bad("empty password or NUL in it") }
            bytes = []
        case .cramMD5:
            guard payload.utf8.count == 64, let decoded = Self.hex(payload) else { throw bad("expected 64 hex digits") }
            bytes = decoded
        case .plainMD5, .sha1, .ssha1, .sha256, .ssha256, .sha512, .ssha512:
            let length = scheme.digestLength!
            // Dovecot writes base64 and also reads hex of the digest's length.
            if !scheme.isSalted, payload.utf8.count == 2 * length, let decoded = Self.hex(payload) {
                bytes = decoded
            } else if let decoded = Self.base64(payload) {
                guard scheme.isSalted ? decoded.count > length : decoded.count == length else {
                    throw bad(scheme.isSalted ? "expected a \(length)-byte digest and a salt" : "expected a \(length)-byte digest")
                }
                bytes = decoded
            } else {
                throw bad("expected base64 (or hex) of the digest")
            }
        case .md5Crypt, .sha256Crypt, .sha512Crypt, .blowfishCrypt, .yescrypt, .desCrypt:
            guard try Self.cryptScheme(payload, label: label) == scheme else { throw bad("the crypt prefix does not match the scheme") }
            bytes = []
        }
    }

    /// The scheme of a crypt(3) string, by its prefix, after checking its shape and work factor.
    static func cryptScheme(_ text: String, label: String) throws -> Scheme {
        func bad(_ why: String) -> ParseError { .malformed(scheme: label, why) }
        let alphabet = Set("./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz$=,".utf8)
        guard !text.isEmpty, text.utf8.count <= 256, text.utf8.allSatisfy({ alphabet.contains($0) }) else {
            throw bad("not a crypt(3) string")
        }
        let fields = text.split(separator: "$", omittingEmptySubsequences: false)
        if !text.hasPrefix("$") {
            guard text.utf8.count == 13, !text.contains("$") else { throw bad("a DES crypt string has 13 characters") }
            return .desCrypt
        }
        switch fields.count > 1 ? fields[1] : "" {
        case "1":
            guard fields.count == 4, fields[3].utf8.count == 22 else { throw bad("expected $1$salt$22 characters") }
            return .md5Crypt
        case "5", "6":
            let scheme: Scheme = fields[1] == "5" ? .sha256Crypt : .sha512Crypt
            let digest = scheme == .sha256Crypt ? 43 : 86
            var rest = fields.dropFirst(2)
            if let first = rest.first, first.hasPrefix("rounds=") {
                guard let rounds = Int(first.dropFirst(7)), rounds >= 1, rounds <= maximumSHACryptRounds else {
                    throw bad("rounds outside 1...\(maximumSHACryptRounds)")
                }
                rest = rest.dropFirst()
            }
            guard rest.count == 2, rest.last!.utf8.count == digest else { throw bad("expected $\(fields[1])$[rounds=N$]salt$\(digest) characters") }
            return scheme
        case "2a", "2b", "2y":
            guard fields.count == 4, let cost = Int(fields[2]), fields[2].utf8.count == 2, (4...maximumBlowfishCost).contains(cost),
                  fields[3].utf8.count == 53 else {
                throw bad("expected $2y$NN$ and 53 characters, cost 04...\(maximumBlowfishCost)")
            }
            return .blowfishCrypt
        case "y":
            guard fields.count == 5, !fields[2].isEmpty, !fields[3].isEmpty, fields[4].utf8.count == 43 else {
                throw bad("expected $y$params$salt$43 characters")
            }
            return .yescrypt
        default:
            throw bad("unknown crypt prefix")
        }
    }

    /// `{SCHEME}payload` with the canonical scheme name: what the store keeps.
    public var encoded: String { "{\(scheme.rawValue)}\(payload)" }

    /// The scheme only: the hash stays out of logs.
    public var description: String { "LegacyPasswordHash(\(scheme.rawValue), redacted)" }

    /// Whether `password` is the one this hash was made from. Every comparison is constant-time
    /// in the compared bytes; NUL in a password never matches (as in `SCRAMSecret.prepare`).
    public func verify(password: String) -> Bool {
        let candidate = Array(password.utf8)
        guard !candidate.isEmpty, !candidate.contains(0) else { return false }
        let equal = SCRAMSecret.constantTimeEqual
        switch scheme {
        case .plain:
            return equal(candidate, Array(payload.utf8))
        case .plainMD5:
            return equal(Array(Insecure.MD5.hash(data: candidate)), bytes)
        case .sha1, .sha256, .sha512:
            return equal(Self.digest(scheme, candidate), bytes)
        case .ssha1, .ssha256, .ssha512:
            let length = scheme.digestLength!
            let salt = Array(bytes[length...])
            return equal(Self.digest(scheme, candidate + salt), Array(bytes[..<length]))
        case .cramMD5:
            return equal(CRAMMD5Context.contexts(password: candidate), bytes)
        case .md5Crypt, .sha256Crypt, .sha512Crypt, .blowfishCrypt, .yescrypt, .desCrypt:
            guard let computed = Self.crypt(candidate, setting: payload) else { return false }
            return equal(computed, Array(payload.utf8))
        }
    }

    private static func digest(_ scheme: Scheme, _ data: [UInt8]) -> [UInt8] {
        switch scheme {
        case .sha1, .ssha1: return Array(Insecure.SHA1.hash(data: data))
        case .sha256, .ssha256: return Array(SHA256.hash(data: data))
        default: return Array(SHA512.hash(data: data))
        }
    }

    /// crypt_r over a zeroed `crypt_data` of our own, so concurrent logins never share state.
    /// nil when libxcrypt refuses the setting (it answers a string starting with `*`).
    static func crypt(_ password: [UInt8], setting: String) -> [UInt8]? {
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer {
            // The output and scratch space held key material.
            UnsafeMutableRawPointer(data).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
            data.deallocate()
        }
        UnsafeMutableRawPointer(data).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<crypt_data>.size)
        let phrase = password.map { CChar(bitPattern: $0) } + [0]
        guard let out = CLibCrypt.crypt_r(phrase, setting, data) else { return nil }
        let result = Array(String(cString: out).utf8)
        return result.first == UInt8(ascii: "*") ? nil : result
    }

    private static func hex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(digits.count / 2)
        for i in stride(from: 0, to: digits.count, by: 2) {
            guard let hi = value(digits[i]), let lo = value(digits[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    private static func base64(_ text: String) -> [UInt8]? {
        guard !text.isEmpty else { return nil }
        var decoder = Base64Decoder()
        let bytes = decoder.decode(text.utf8) + decoder.finish()
        return decoder.sawInvalidInput || bytes.isEmpty ? nil : bytes
    }
}

/// Dovecot's `{CRAM-MD5}` form: the HMAC-MD5 key's inner and outer MD5 states after one block
/// (RFC 2104's K XOR ipad and K XOR opad), outer first, each as four little-endian words. A
/// CRAM-MD5 server computes HMACs from these without the password; here they check a cleartext
/// password by computing them again. swift-crypto does not expose an MD5 state after one block,
/// hence the compression function below (RFC 1321 §3.4).
enum CRAMMD5Context {
    static func contexts(password: [UInt8]) -> [UInt8] {
        var key = password.count > 64 ? Array(Insecure.MD5.hash(data: password)) : password
        key += [UInt8](repeating: 0, count: 64 - key.count)
        let inner = compress(key.map { $0 ^ 0x36 }), outer = compress(key.map { $0 ^ 0x5c })
        return (outer + inner).flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
    }

    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    /// floor(abs(sin(i + 1)) * 2^32), RFC 1321's table T.
    private static let sines: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64((abs(sin(Double($0 + 1))) * 4_294_967_296).rounded(.down))) }

    /// The MD5 state after one 64-byte block from the initial state.
    static func compress(_ block: [UInt8]) -> [UInt32] {
        precondition(block.count == 64)
        let m = (0..<16).map { i in (0..<4).reduce(UInt32(0)) { $0 | UInt32(block[4 * i + $1]) << (8 * UInt32($1)) } }
        let initial: [UInt32] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476]
        var (a, b, c, d) = (initial[0], initial[1], initial[2], initial[3])
        for i in 0..<64 {
            var f: UInt32, g: Int
            switch i {
            case 0..<16: f = (b & c) | (~b & d); g = i
            case 16..<32: f = (d & b) | (~d & c); g = (5 * i + 1) % 16
            case 32..<48: f = b ^ c ^ d; g = (3 * i + 5) % 16
            default: f = c ^ (b | ~d); g = (7 * i) % 16
            }
            f = f &+ a &+ sines[i] &+ m[g]
            a = d; d = c; c = b
            b = b &+ (f << shifts[i] | f >> (32 - shifts[i]))
        }
        return [initial[0] &+ a, initial[1] &+ b, initial[2] &+ c, initial[3] &+ d]
    }
}
