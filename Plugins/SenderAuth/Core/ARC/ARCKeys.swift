import Foundation
import PluginAPI
import PluginCredentials

/// The public keys of one message's ARC signatures: through the DKIM verifier's key lookup (its
/// cache shared with DKIM), each fetched once per message.
struct ARCKeys {
    let verifier: DKIMVerifier
    let now: Date
    private var keys: [String: DKIMVerifier.KeyLookup] = [:]

    init(verifier: DKIMVerifier, now: Date) {
        self.verifier = verifier
        self.now = now
    }

    /// The key at `SELECTOR._domainkey.DOMAIN`, which must suit `algorithm`.
    mutating func key(selector: String, domain: String, algorithm: DKIMAlgorithm) async throws -> DKIMVerifier.VerifyingKey {
        let name = "\(selector)._domainkey.\(domain)".lowercased()
        let lookup: DKIMVerifier.KeyLookup
        if let known = keys[name] {
            lookup = known
        } else {
            lookup = await verifier.key(name, now: now)
            keys[name] = lookup
        }
        switch lookup {
        case .failure(let failure): throw ARCFailure("\(name): \(failure.reason)")
        case .success(let key):
            guard key.record.keyType == algorithm.keyType else {
                throw ARCFailure("\(name): key type \(key.record.keyType.rawValue) does not match a=\(algorithm.rawValue)")
            }
            return key
        }
    }
}
