import Foundation
import PluginAPI
import PluginCredentials

/// What the validation of a message's ARC chain came to (RFC 8617 §5.2).
package struct ARCOutcome: Sendable, Equatable {
    package var result: ARCResult
    /// Why, when the chain failed.
    package var reason: String?
    /// The chain's sets (0 for none).
    package var instances: Int

    package init(result: ARCResult, reason: String? = nil, instances: Int = 0) {
        self.result = result
        self.reason = reason
        self.instances = instances
    }
}

/// Validates an ARC chain: its form, the newest ARC-Message-Signature, then every ARC-Seal from
/// the newest down (RFC 8617 §5.2). Keys come from DNS as DKIM's do.
package struct ARCVerifier: Sendable {
    /// Whose key lookup (and cache) the signatures use.
    package let keys: DKIMVerifier

    package init(keys: DKIMVerifier) {
        self.keys = keys
    }

    package func verify(_ message: [UInt8], now: Date) async -> ARCOutcome {
        let parsed = DKIMMessage(message)
        let sets: [ARCSet]
        switch ARCChain(parsed) {
        case .none: return ARCOutcome(result: .none)
        case .malformed(let why): return ARCOutcome(result: .fail, reason: why)
        case .sets(let found): sets = found
        }
        let count = sets.count
        var keys = ARCKeys(verifier: self.keys, now: now)
        do {
            var seals: [DKIMTagList] = []
            for set in sets {
                let seal: DKIMTagList
                do { seal = try DKIMTagList.parse(Array(set.seal.value)) } catch { throw ARCFailure("ARC-Seal i=\(set.instance): \(error)") }
                // §5.2 step 3: the first set says there was no chain, every later one that it passed.
                let expected = set.instance == 1 ? "none" : "pass"
                guard let cv = seal["cv"]?.lowercased() else { throw ARCFailure("ARC-Seal i=\(set.instance) has no cv=") }
                if cv == "fail" { throw ARCFailure("ARC-Seal i=\(set.instance) says the chain failed") }
                guard cv == expected else { throw ARCFailure("ARC-Seal i=\(set.instance) has cv=\(cv), not \(expected)") }
                seals.append(seal)
            }
            try await verifyMessageSignature(sets[count - 1], in: parsed, keys: &keys)
            for index in stride(from: count - 1, through: 0, by: -1) {
                try await verifySeal(seals[index], sets: Array(sets[0...index]), keys: &keys)
            }
        } catch let failure as ARCFailure {
            // RFC 8617 has no temperror: a chain whose keys cannot be fetched does not validate.
            return ARCOutcome(result: .fail, reason: failure.reason, instances: count)
        } catch {
            return ARCOutcome(result: .fail, reason: "\(error)", instances: count)
        }
        return ARCOutcome(result: .pass, instances: count)
    }

    /// The newest AMS, checked as a DKIM signature is (RFC 8617 §4.1.2): body hash, then the
    /// fields `h=` names and the AMS itself with `b=` emptied.
    private func verifyMessageSignature(_ set: ARCSet, in message: DKIMMessage, keys: inout ARCKeys) async throws {
        let field = set.messageSignature
        let tags: DKIMTagList
        do { tags = try DKIMTagList.parse(Array(field.value)) } catch { throw ARCFailure("ARC-Message-Signature: \(error)") }
        let parts = try ARCSignatureTags(tags, field: "ARC-Message-Signature", needsHeaders: true)
        var hasher = DKIMBodyHasher(parts.body)
        hasher.feed(message.body)
        guard hasher.finish() == parts.bodyHash else { throw ARCFailure("ARC-Message-Signature i=\(set.instance): body hash did not verify") }
        var data: [UInt8] = []
        for selected in message.select(parts.headers) {
            guard let selected else { continue }
            data += DKIMHeaderCanonicalizer.canonicalize(selected.raw, parts.header)
            data += [0x0D, 0x0A]
        }
        data += DKIMHeaderCanonicalizer.canonicalize(Self.emptyingSignature(field, tag: tags.tag("b")!), parts.header)
        let key = try await keys.key(selector: parts.selector, domain: parts.domain, algorithm: parts.algorithm)
        guard key.isValidSignature(parts.signature, for: data) else {
            throw ARCFailure("ARC-Message-Signature i=\(set.instance): signature did not verify")
        }
    }

    /// One ARC-Seal over the sets up to its own (RFC 8617 §5.1.1): each set's AAR, AMS and AS
    /// in relaxed form, the seal being checked last with `b=` emptied.
    private func verifySeal(_ seal: DKIMTagList, sets: [ARCSet], keys: inout ARCKeys) async throws {
        let own = sets[sets.count - 1]
        let parts = try ARCSignatureTags(seal, field: "ARC-Seal", needsHeaders: false)
        let data = Self.sealInput(sets, lastSeal: Self.emptyingSignature(own.seal, tag: seal.tag("b")!))
        let key = try await keys.key(selector: parts.selector, domain: parts.domain, algorithm: parts.algorithm)
        guard key.isValidSignature(parts.signature, for: data) else {
            throw ARCFailure("ARC-Seal i=\(own.instance): signature did not verify")
        }
    }

    /// What an ARC-Seal signs: the sets in instance order, every field relaxed and ended by CRLF,
    /// except the last seal, given with `b=` emptied and without its CRLF.
    static func sealInput(_ sets: [ARCSet], lastSeal: [UInt8]) -> [UInt8] {
        var data: [UInt8] = []
        for (position, set) in sets.enumerated() {
            data += DKIMHeaderCanonicalizer.canonicalize(set.results.raw, .relaxed) + [0x0D, 0x0A]
            data += DKIMHeaderCanonicalizer.canonicalize(set.messageSignature.raw, .relaxed) + [0x0D, 0x0A]
            if position == sets.count - 1 {
                data += DKIMHeaderCanonicalizer.canonicalize(lastSeal, .relaxed)
            } else {
                data += DKIMHeaderCanonicalizer.canonicalize(set.seal.raw, .relaxed) + [0x0D, 0x0A]
            }
        }
        return data
    }

    /// The whole field with the value of its `b=` tag removed (RFC 6376 §3.7). `tag` is from the
    /// tag-list of `field.value`; `valueStart` is an index of the message, as `raw`'s are.
    static func emptyingSignature(_ field: DKIMMessage.Field, tag: DKIMTag) -> [UInt8] {
        let lower = field.valueStart + tag.rawValueRange.lowerBound
        let upper = field.valueStart + tag.rawValueRange.upperBound
        guard field.raw.startIndex <= lower, lower <= upper, upper <= field.raw.endIndex else { return Array(field.raw) }
        return Array(field.raw[..<lower]) + Array(field.raw[upper...])
    }
}

struct ARCFailure: Error {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}

/// The tags an ARC-Message-Signature or ARC-Seal must have, checked.
struct ARCSignatureTags {
    var algorithm: DKIMAlgorithm
    var signature: [UInt8]
    var domain: String
    var selector: String
    var header: DKIMCanonicalization = .relaxed
    var body: DKIMCanonicalization = .simple
    var headers: [String] = []
    var bodyHash: [UInt8] = []

    init(_ tags: DKIMTagList, field: String, needsHeaders: Bool) throws {
        guard let a = tags["a"], let algorithm = DKIMAlgorithm(rawValue: a.lowercased()), algorithm != .rsaSHA1 else {
            throw ARCFailure("\(field): unsupported or missing a=")
        }
        guard let b = tags["b"], let signature = DKIMBase64.decode(b), !signature.isEmpty else { throw ARCFailure("\(field): bad b=") }
        guard let d = tags["d"], DKIMSignature.isDomainName(d), let s = tags["s"], DKIMSignature.isSelector(s) else {
            throw ARCFailure("\(field): bad d= or s=")
        }
        self.algorithm = algorithm
        self.signature = signature
        domain = d.lowercased()
        selector = s
        // The seal covers the ARC sets only and has no h= (RFC 8617 §4.1.3; dkimpy refuses it too).
        guard needsHeaders else {
            if tags["h"] != nil { throw ARCFailure("\(field): h= is not allowed") }
            return
        }
        if let c = tags["c"] {
            let parts = c.split(separator: "/", omittingEmptySubsequences: false).map { $0.lowercased() }
            guard parts.count <= 2, let h = DKIMCanonicalization(rawValue: parts[0]),
                  let bodyMethod = DKIMCanonicalization(rawValue: parts.count == 2 ? parts[1] : "simple") else {
                throw ARCFailure("\(field): bad c=")
            }
            header = h
            body = bodyMethod
        } else {
            header = .simple
        }
        guard let h = tags["h"] else { throw ARCFailure("\(field): no h=") }
        headers = h.split(separator: ":").map { String($0.trimmingWhiteSpace).lowercased() }
        guard !headers.isEmpty, headers.allSatisfy(DKIMSignature.isFieldName) else { throw ARCFailure("\(field): bad h=") }
        // Seals are the seal's business: RFC 8617 §4.1.2 keeps them out of the AMS (dkimpy refuses it too).
        guard !headers.contains("arc-seal") else { throw ARCFailure("\(field): h= signs ARC-Seal") }
        guard let bh = tags["bh"], let hash = DKIMBase64.decode(bh) else { throw ARCFailure("\(field): bad bh=") }
        bodyHash = hash
    }
}
