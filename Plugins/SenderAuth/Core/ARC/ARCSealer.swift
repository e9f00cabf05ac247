import Foundation
import PluginAPI

/// Adds an ARC set to a message this site received and now passes on (an alias or `.forward` to
/// another host; RFC 8617 §5.1): the site's own Authentication-Results become the set's
/// ARC-Authentication-Results, an ARC-Message-Signature signs the message as it leaves, and an
/// ARC-Seal signs the chain with the validation status found on arrival.
package struct ARCSealer: Sendable {
    package let domain: String
    package let selector: String
    package let key: DKIMSigningKey

    package init(domain: String, selector: String, key: DKIMSigningKey) {
        self.domain = domain.lowercased()
        self.selector = selector
        self.key = key
    }

    /// Fields never signed by the message signature: the chain's own, and results a later hop may remove.
    static let unsignedFields: Set<String> = ARCChain.fieldNames.union(["authentication-results"])

    /// The three fields of the new set (ARC-Seal, ARC-Message-Signature, ARC-Authentication-Results,
    /// top down, each without its final CRLF), or nil when the message is not one to seal: it
    /// carries no Authentication-Results of `authservID` (it did not come in from outside), its
    /// chain failed on arrival, or the chain is full.
    package func seal(_ message: [UInt8], authservID: String, now: Date) throws -> [String]? {
        let parsed = DKIMMessage(message)
        guard let results = parsed.fields.first(where: {
            $0.lowercasedName == "authentication-results"
                && AuthenticationResultsField.claims(String(decoding: $0.value, as: UTF8.self), authservID: authservID)
        }) else { return nil }
        let resultsText = String(decoding: results.value, as: UTF8.self)
        let sets: [ARCSet]
        switch ARCChain(parsed) {
        case .none: sets = []
        case .malformed: return nil
        case .sets(let found): sets = found
        }
        // What our own verification found on arrival (the arc= of our Authentication-Results):
        // a chain that failed is not sealed again (RFC 8617 §5.1.2 leaves it to the sealer).
        let status = Self.arcResult(in: resultsText)
        let cv: String
        switch (sets.isEmpty, status) {
        case (true, _): cv = "none"
        case (false, .pass?): cv = "pass"
        default: return nil
        }
        let instance = sets.count + 1
        guard instance <= ARCChain.maxInstances else { return nil }
        let timestamp = Int(now.timeIntervalSince1970.rounded(.down))

        let aar = "ARC-Authentication-Results: i=\(instance); " + String(resultsText.drop { $0 == " " || $0 == "\t" })

        // The message signature: as a DKIM signature, relaxed/relaxed, over the usual fields.
        var hasher = DKIMBodyHasher(.relaxed)
        hasher.feed(parsed.body)
        let bodyHash = Data(hasher.finish()).base64EncodedString()
        let names = DKIMSigner.defaultSignedHeaders(for: parsed).filter { !Self.unsignedFields.contains($0) }
            + (parsed.fields.contains { $0.lowercasedName == "dkim-signature" } ? ["dkim-signature"] : [])
        var ams = SignatureFieldWriter(name: "ARC-Message-Signature")
        ams.append("i=\(instance);")
        ams.append("a=\(key.algorithm.rawValue);")
        ams.append("c=relaxed/relaxed;")
        ams.append("d=\(domain);")
        ams.append("s=\(selector);")
        ams.append("t=\(timestamp);")
        ams.appendHeaderList(names)
        ams.append("bh=\(bodyHash);")
        ams.append("b=")
        var data: [UInt8] = []
        for selected in parsed.select(names) {
            guard let selected else { continue }
            data += DKIMHeaderCanonicalizer.canonicalize(selected.raw, .relaxed) + [0x0D, 0x0A]
        }
        data += DKIMHeaderCanonicalizer.canonicalize(Array(ams.text.utf8), .relaxed)
        let amsField = ams.signed(Data(try key.sign(data)).base64EncodedString())

        // The seal: over every set, the new one included, its own b= empty.
        var seal = SignatureFieldWriter(name: "ARC-Seal")
        seal.append("i=\(instance);")
        seal.append("a=\(key.algorithm.rawValue);")
        seal.append("t=\(timestamp);")
        seal.append("cv=\(cv);")
        seal.append("d=\(domain);")
        seal.append("s=\(selector);")
        seal.append("b=")
        let newSet = DKIMMessage(Array((aar + "\r\n" + amsField + "\r\n" + seal.text + "\r\n\r\n").utf8))
        guard newSet.fields.count == 3 else { throw DKIMSignerError("internal: the new ARC set did not parse") }
        let added = ARCSet(instance: instance, results: newSet.fields[0], messageSignature: newSet.fields[1], seal: newSet.fields[2])
        let input = ARCVerifier.sealInput(sets + [added], lastSeal: Array(newSet.fields[2].raw))
        let sealField = seal.signed(Data(try key.sign(input)).base64EncodedString())
        return [sealField, amsField, aar]
    }

    /// The `arc=` result of an Authentication-Results value, when it has one.
    static func arcResult(in value: String) -> ARCResult? {
        for part in value.split(separator: ";").dropFirst() {
            let words = part.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" })
            guard let first = words.first, first.lowercased().hasPrefix("arc=") else { continue }
            return ARCResult(rawValue: String(first.dropFirst(4)).lowercased())
        }
        return nil
    }
}
