import Foundation
import PluginAPI
import PluginCredentials

// The private key a DKIM signer uses, read from a PEM file.

package struct DKIMKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

package struct DKIMSigningKey: Sendable {
    package enum Algorithm: String, Sendable {
        case rsaSHA256 = "rsa-sha256"
        case ed25519SHA256 = "ed25519-sha256"
    }

    enum Storage: Sendable {
        case rsa(RSASigningKey)
        case ed25519(Curve25519.Signing.PrivateKey)
    }

    let storage: Storage

    package var algorithm: Algorithm {
        switch storage {
        case .rsa: return .rsaSHA256
        case .ed25519: return .ed25519SHA256
        }
    }

    package init(rsa key: RSASigningKey) { storage = .rsa(key) }
    package init(ed25519 key: Curve25519.Signing.PrivateKey) { storage = .ed25519(key) }

    /// Reads a PEM file: RSA as PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8, Ed25519 as PKCS#8
    /// (`openssl genpkey -algorithm ed25519`).
    package static func load(path: String) throws -> DKIMSigningKey {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw DKIMKeyError("cannot read the DKIM key \(path): \((error as NSError).localizedDescription)")
        }
        do {
            return try DKIMSigningKey(pem: String(decoding: data, as: UTF8.self))
        } catch {
            throw DKIMKeyError("\(path): \(error.description)")
        }
    }

    package init(pem: String) throws(DKIMKeyError) {
        if pem.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            throw DKIMKeyError("the key is encrypted; DKIM keys must be stored unencrypted (mode 0600)")
        }
        if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            do { storage = .rsa(try RSASigningKey(pem: pem)) } catch { throw DKIMKeyError("not a usable RSA key: \(error)") }
            return
        }
        guard pem.contains("-----BEGIN PRIVATE KEY-----") else {
            throw DKIMKeyError("no PEM private key (expected BEGIN RSA PRIVATE KEY or BEGIN PRIVATE KEY)")
        }
        if let key = try? Ed25519PEM.privateKey(pem: pem) {
            storage = .ed25519(key)
            return
        }
        do {
            storage = .rsa(try RSASigningKey(pem: pem))
        } catch SigningKeyError.tooSmall(let minimum) {
            throw DKIMKeyError("the RSA key is shorter than \(minimum) bits")
        } catch {
            throw DKIMKeyError("the PKCS#8 key is neither RSA nor Ed25519")
        }
    }

    /// The key record's `p=` for this key (SubjectPublicKeyInfo for RSA, the raw 32 octets for Ed25519).
    package var publicKeyRecordData: [UInt8] {
        switch storage {
        case .rsa(let key): return key.publicKeyDER
        case .ed25519(let key): return Array(key.publicKey.rawRepresentation)
        }
    }

    /// The key record to publish: `v=DKIM1; k=rsa; p=...`.
    package var keyRecord: String {
        let type = algorithm == .rsaSHA256 ? "rsa" : "ed25519"
        return "v=DKIM1; k=\(type); p=" + Data(publicKeyRecordData).base64EncodedString()
    }

    /// Signs the header hash input (RFC 6376 §3.7; RFC 8463 §3: Ed25519 over its SHA-256).
    func sign(_ data: [UInt8]) throws -> [UInt8] {
        switch storage {
        case .rsa(let key): return try key.signSHA256(data)
        case .ed25519(let key): return Array(try key.signature(for: Array(SHA256.hash(data: data))))
        }
    }
}

extension DKIMSigningKey {
    /// A new key in memory: RSA of `bits` bits (2048 or more), or Ed25519 (`bits` unused).
    package static func generate(algorithm: DKIMKeyGeneration.Algorithm, bits: Int = 2048) throws -> DKIMSigningKey {
        switch algorithm {
        case .rsa: return DKIMSigningKey(rsa: try RSASigningKey.generate(bits: bits))
        case .ed25519: return DKIMSigningKey(ed25519: Curve25519.Signing.PrivateKey())
        }
    }

    /// The private key as PEM: PKCS#1 for RSA, PKCS#8 for Ed25519 (what `load(path:)` reads back).
    package var pemRepresentation: String {
        switch storage {
        case .rsa(let key): return key.pemRepresentation
        case .ed25519(let key): return Ed25519PEM.pem(key)
        }
    }

    /// A new key written to `path` (PEM, mode 0600, never over an existing file), and the record
    /// to publish at `SELECTOR._domainkey.DOMAIN`: what `postern admin dkim keygen` does.
    package static func generate(domain: String, selector: String, algorithm: DKIMKeyGeneration.Algorithm,
                                 bits: Int = 2048, path: String) throws -> DKIMKeyGeneration.Result {
        try DKIMKeyGeneration.generate(domain: domain, selector: selector, algorithm: algorithm, bits: bits, path: path)
    }
}
