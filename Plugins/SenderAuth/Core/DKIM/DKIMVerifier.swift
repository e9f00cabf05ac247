import Foundation
import PluginAPI
import PluginCredentials

// DKIM verification (RFC 6376 §6, RFC 8463, RFC 8301): one outcome per DKIM-Signature field.

package struct DKIMVerifier: Sendable {
    package let resolver: any DNSResolver
    /// Signatures past this many (top down) are not checked: `neutral`, to bound the DNS work and
    /// hashing a message can cause.
    package let maxSignatures: Int
    /// How far in the future `t=` may lie (clocks differ); beyond it the signature fails.
    package static let clockAllowance: TimeInterval = 300
    /// Keys fetched, for as long as this verifier lives (bounded in size and age).
    package let keys: DKIMKeyCache<KeyLookup>

    package init(resolver: any DNSResolver, maxSignatures: Int = 5, keyCache: DKIMKeyCache<KeyLookup> = DKIMKeyCache()) {
        self.resolver = resolver
        self.maxSignatures = max(0, maxSignatures)
        self.keys = keyCache
    }

    /// The outcome of every DKIM-Signature field of `message`, top down; empty when there is none.
    package func verify(_ message: [UInt8], now: Date) async -> [DKIMSignatureOutcome] {
        let parsed = DKIMMessage(message)
        let signatureFields = parsed.fields.filter { $0.lowercasedName == "dkim-signature" }
        // Within one message a temporary failure is remembered too: the next signature with the
        // same key gets the same answer without asking again.
        var messageKeys: [String: KeyLookup] = [:]
        var bodyHashes: [BodyHashKey: (hash: [UInt8], length: Int)] = [:]
        var outcomes: [DKIMSignatureOutcome] = []
        for (position, field) in signatureFields.enumerated() {
            var outcome = Self.describe(field)
            guard position < maxSignatures else {
                outcome.result = .neutral
                outcome.reason = "not checked: more than \(maxSignatures) signatures"
                outcomes.append(outcome)
                continue
            }
            do {
                try await check(field, in: parsed, now: now, messageKeys: &messageKeys, bodyHashes: &bodyHashes)
                outcome.result = .pass
            } catch {
                outcome.result = error.result
                outcome.reason = error.reason
            }
            outcomes.append(outcome)
        }
        return outcomes
    }

    /// A key lookup's answer: the key, or why there is none.
    package typealias KeyLookup = Result<VerifyingKey, Failure>

    /// Why a signature did not pass.
    package struct Failure: Error, Sendable {
        var result: DKIMResult
        var reason: String
        static func perm(_ reason: String) -> Failure { Failure(result: .permerror, reason: reason) }
        static func fail(_ reason: String) -> Failure { Failure(result: .fail, reason: reason) }
    }

    package enum VerifyingKey: Sendable {
        case rsa(RSAVerifyingKey, DKIMKeyRecord)
        case ed25519(Curve25519.Signing.PublicKey, DKIMKeyRecord)

        var record: DKIMKeyRecord {
            switch self {
            case .rsa(_, let record), .ed25519(_, let record): return record
            }
        }
    }

    struct BodyHashKey: Hashable {
        var canonicalization: DKIMCanonicalization
        var limit: Int?
    }

    /// d=, s=, i=, a= and `header.b` from whatever of the field parses, for every outcome.
    static func describe(_ field: DKIMMessage.Field) -> DKIMSignatureOutcome {
        var outcome = DKIMSignatureOutcome(result: .permerror)
        guard let list = try? DKIMTagList.parse(Array(field.value)) else { return outcome }
        outcome.domain = list["d"]?.lowercased()
        outcome.selector = list["s"]
        outcome.identity = list["i"]
        outcome.algorithm = list["a"]?.lowercased()
        outcome.signaturePrefix = list["b"].map { String(DKIMBase64.stripped($0).prefix(8)) }
        return outcome
    }

    private func check(_ field: DKIMMessage.Field, in message: DKIMMessage, now: Date,
                       messageKeys: inout [String: KeyLookup],
                       bodyHashes: inout [BodyHashKey: (hash: [UInt8], length: Int)]) async throws(Failure) {
        let value = Array(field.value)
        let signature: DKIMSignature
        do { signature = try DKIMSignature.parse(value) } catch { throw .perm(error.description) }
        guard let algorithm = signature.algorithm else { throw .perm("unknown algorithm a=\(signature.algorithmName)") }
        if algorithm == .rsaSHA1 { throw .fail("rsa-sha1 is not accepted (RFC 8301)") }

        let seconds = Int(now.timeIntervalSince1970.rounded(.down))
        if let expiration = signature.expiration, expiration < seconds { throw .fail("signature expired") }
        if let timestamp = signature.timestamp, timestamp > seconds + Int(Self.clockAllowance) {
            throw .fail("signature timestamp in the future")
        }

        let name = "\(signature.selector)._domainkey.\(signature.domain)".lowercased()
        let lookup: KeyLookup
        if let known = messageKeys[name] {
            lookup = known
        } else {
            lookup = await key(name, now: now)
            messageKeys[name] = lookup
        }
        let key = try lookup.get()
        let record = key.record
        guard record.keyType == algorithm.keyType else {
            throw .perm("key type \(record.keyType.rawValue) does not match a=\(signature.algorithmName)")
        }
        if let hashes = record.hashes, !hashes.contains(algorithm.hashName) {
            throw .perm("key does not allow \(algorithm.hashName)")
        }
        if record.strictIdentity, let identity = signature.identity,
           identity[identity.index(after: identity.lastIndex(of: "@")!)...].lowercased() != signature.domain {
            throw .perm("key forbids i= in a subdomain of d= (t=s)")
        }

        let bodyKey = BodyHashKey(canonicalization: signature.bodyCanonicalization, limit: signature.bodyLength)
        let body: (hash: [UInt8], length: Int)
        if let known = bodyHashes[bodyKey] {
            body = known
        } else {
            var hasher = DKIMBodyHasher(signature.bodyCanonicalization, limit: signature.bodyLength)
            hasher.feed(message.body)
            let hash = hasher.finish()
            body = (hash, hasher.canonicalLength)
            bodyHashes[bodyKey] = body
        }
        if let limit = signature.bodyLength, limit > body.length { throw .fail("l= exceeds the body length") }
        guard body.hash == signature.bodyHash else { throw .fail("body hash did not verify") }

        let data = Self.headerHashInput(signature, field: field, message: message)
        guard key.isValidSignature(signature.signature, for: data) else { throw .fail("signature did not verify") }
    }

    /// What the signature covers (§3.7): the selected fields canonicalised, each with CRLF, then
    /// the signature field with its `b=` value emptied and no CRLF.
    static func headerHashInput(_ signature: DKIMSignature, field: DKIMMessage.Field, message: DKIMMessage) -> [UInt8] {
        var data: [UInt8] = []
        for selected in message.select(signature.signedHeaders) {
            guard let selected else { continue }
            data += DKIMHeaderCanonicalizer.canonicalize(selected.raw, signature.headerCanonicalization)
            data += [0x0D, 0x0A]
        }
        let offset = field.valueStart
        let range = (signature.signatureValueRange.lowerBound + offset)..<(signature.signatureValueRange.upperBound + offset)
        var own = Array(field.raw[..<range.lowerBound])
        own += field.raw[range.upperBound...]
        data += DKIMHeaderCanonicalizer.canonicalize(own, signature.headerCanonicalization)
        return data
    }

    /// The key record at `name` (`selector._domainkey.domain`, lowercased), from the cache or
    /// DNS; a temporary failure is not cached. ARC's signatures use it too.
    package func key(_ name: String, now: Date) async -> KeyLookup {
        if let known = keys.value(for: name, now: now) { return known }
        let lookup = await fetchKey(name)
        if case .failure(let failure) = lookup, failure.result == .temperror {} else { keys.store(lookup, for: name, now: now) }
        return lookup
    }

    private func fetchKey(_ name: String) async -> Result<VerifyingKey, Failure> {
        let answer: DNSRecords
        do {
            answer = try await resolver.records(name, .txt)
        } catch DNSError.temporary(let why) {
            return .failure(Failure(result: .temperror, reason: "key lookup failed: \(why)"))
        } catch {
            return .failure(.perm("no key for signature (\(error))"))
        }
        let records: [String]
        switch answer {
        case .nameError, .noData: return .failure(.perm("no key for signature"))
        case .found(let found): records = found
        }
        guard records.count == 1 else { return .failure(.perm("\(records.count) key records at \(name)")) }
        let record: DKIMKeyRecord
        do { record = try DKIMKeyRecord.parse(records[0]) } catch { return .failure(.perm("key record: \(error)")) }
        if record.isRevoked { return .failure(.perm("key revoked")) }
        switch record.keyType {
        case .rsa:
            do {
                return .success(.rsa(try RSAVerifyingKey(der: record.publicKey), record))
            } catch SigningKeyError.tooSmall {
                return .failure(.perm("RSA key shorter than 1024 bits"))
            } catch {
                return .failure(.perm("key record: p= is not an RSA public key"))
            }
        case .ed25519:
            guard let key = try? Curve25519.Signing.PublicKey(rawRepresentation: record.publicKey) else {
                return .failure(.perm("key record: p= is not an Ed25519 public key"))
            }
            return .success(.ed25519(key, record))
        }
    }
}

extension DKIMVerifier.VerifyingKey {
    /// Whether `signature` signs `data` under this key (RFC 8463 §3: Ed25519 signs the SHA-256 of the data).
    func isValidSignature(_ signature: [UInt8], for data: [UInt8]) -> Bool {
        switch self {
        case .rsa(let key, _): return key.isValidSHA256Signature(signature, for: data)
        case .ed25519(let key, _): return key.isValidSignature(signature, for: Array(SHA256.hash(data: data)))
        }
    }
}
