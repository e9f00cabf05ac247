import Foundation
import PluginAPI
import _CryptoExtras

/// Stored secrets: SCRAM-SHA-256 keys (RFC 5802/7677) derived with PBKDF2 from a random salt, in
/// the `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` form. The same secret verifies a
/// plaintext password (PLAIN, LOGIN) and will serve SCRAM without a password reset.
enum Passwords {
    static func make(_ password: String, iterations: Int) throws -> String {
        guard !password.isEmpty, !password.utf8.contains(0) else { throw AccountError.invalidPassword("empty or contains NUL") }
        var salt = [UInt8](repeating: 0, count: 16)
        for i in salt.indices { salt[i] = UInt8.random(in: 0...255) }
        let (stored, server) = try keys(password, salt: salt, iterations: iterations)
        return "SCRAM-SHA-256$\(iterations):\(Data(salt).base64EncodedString())$\(Data(stored).base64EncodedString()):\(Data(server).base64EncodedString())"
    }

    static func verify(_ password: String, against secret: String) -> Bool {
        let parts = secret.split(separator: "$")
        guard parts.count == 3, parts[0] == "SCRAM-SHA-256" else { return false }
        let params = parts[1].split(separator: ":"), keyParts = parts[2].split(separator: ":")
        guard params.count == 2, keyParts.count == 2, let iterations = Int(params[0]),
              let salt = Data(base64Encoded: String(params[1])), let storedKey = Data(base64Encoded: String(keyParts[0])),
              let (stored, _) = try? keys(password, salt: [UInt8](salt), iterations: iterations) else { return false }
        // Constant time: compare every byte.
        guard stored.count == storedKey.count else { return false }
        var diff: UInt8 = 0
        for (a, b) in zip(stored, storedKey) { diff |= a ^ b }
        return diff == 0
    }

    static func keys(_ password: String, salt: [UInt8], iterations: Int) throws -> (stored: [UInt8], server: [UInt8]) {
        let salted = try KDF.Insecure.PBKDF2.deriveKey(from: Array(password.utf8), salt: salt, using: .sha256,
                                                      outputByteCount: 32, unsafeUncheckedRounds: iterations)
        let clientKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Client Key".utf8), using: salted))
        let serverKey = Array(HMAC<SHA256>.authenticationCode(for: Array("Server Key".utf8), using: salted))
        return (Array(SHA256.hash(data: clientKey)), serverKey)
    }
}
