import Foundation
import PluginAPI

// DKIM signing (RFC 6376 §5): one DKIM-Signature field for a message, ready to prepend.

package struct DKIMSignerError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

package struct DKIMSigner: Sendable {
    package let domain: String
    package let selector: String
    package let key: DKIMSigningKey
    package let headerCanonicalization: DKIMCanonicalization
    package let bodyCanonicalization: DKIMCanonicalization
    /// The fields to sign, as `h=` lists them; nil: `defaultSignedHeaders(for:)` per message.
    package let signedHeaders: [String]?
    package let identity: String?
    /// Seconds from `t=` to `x=`; nil: no expiry.
    package let expiry: TimeInterval?

    /// Signed once per instance present (RFC 6376 §5.4.1's list, less what changes in transit).
    package static let recommendedHeaders = [
        "from", "subject", "date", "to", "cc", "reply-to", "message-id", "in-reply-to", "references",
        "mime-version", "content-type", "content-transfer-encoding",
    ]
    /// Listed once more than present (§5.4.2, "over-signing"): a verifier then finds no unused
    /// instance for the extra name, so a field of that name added later breaks the signature.
    package static let overSignedHeaders: Set<String> = ["from", "subject", "date"]
    /// Prefixes whose every field is signed where present: the mailing-list fields (RFC 2369, RFC 2919).
    package static let signedPrefixes = ["list-"]

    package init(domain: String, selector: String, key: DKIMSigningKey,
                 headerCanonicalization: DKIMCanonicalization = .relaxed, bodyCanonicalization: DKIMCanonicalization = .relaxed,
                 signedHeaders: [String]? = nil, identity: String? = nil, expiry: TimeInterval? = nil) {
        self.domain = domain.lowercased()
        self.selector = selector
        self.key = key
        self.headerCanonicalization = headerCanonicalization
        self.bodyCanonicalization = bodyCanonicalization
        self.signedHeaders = signedHeaders
        self.identity = identity
        self.expiry = expiry
    }

    /// The `h=` names for `message` by default: each recommended or prefixed field once per
    /// instance, over-signed ones once more (and once when absent), in the order of the lists.
    package static func defaultSignedHeaders(for message: DKIMMessage) -> [String] {
        var counts: [String: Int] = [:]
        var prefixed: [String] = []
        for field in message.fields {
            counts[field.lowercasedName, default: 0] += 1
            if signedPrefixes.contains(where: { field.lowercasedName.hasPrefix($0) }), !prefixed.contains(field.lowercasedName),
               DKIMSignature.isFieldName(field.lowercasedName) {
                prefixed.append(field.lowercasedName)
            }
        }
        var names: [String] = []
        for name in recommendedHeaders + prefixed {
            let present = counts[name] ?? 0
            let times = present + (overSignedHeaders.contains(name) ? 1 : 0)
            names += Array(repeating: name, count: times)
        }
        return names
    }

    /// The whole field, `DKIM-Signature: v=1; ...`, folded with CRLF TAB, ending in CRLF: ready to
    /// prepend to `message`.
    package func signatureField(for message: [UInt8], now: Date) throws -> String {
        guard DKIMSignature.isDomainName(domain) else { throw DKIMSignerError("not a domain name: \(domain)") }
        guard DKIMSignature.isSelector(selector) else { throw DKIMSignerError("not a selector: \(selector)") }
        let parsed = DKIMMessage(message)
        guard parsed.fields.contains(where: { $0.lowercasedName == "from" }) else {
            throw DKIMSignerError("the message has no From field")
        }
        let names = signedHeaders ?? Self.defaultSignedHeaders(for: parsed)
        guard names.contains(where: { $0.lowercased() == "from" }) else { throw DKIMSignerError("the signed fields must include From") }
        guard names.allSatisfy(DKIMSignature.isFieldName) else { throw DKIMSignerError("invalid field name in the signed fields") }
        if let identity {
            guard let at = identity.lastIndex(of: "@") else { throw DKIMSignerError("the identity \(identity) has no '@'") }
            let identityDomain = identity[identity.index(after: at)...].lowercased()
            guard identityDomain == domain || identityDomain.hasSuffix("." + domain) else {
                throw DKIMSignerError("the identity \(identity) is not within \(domain)")
            }
            guard identity.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ";") }) else {
                throw DKIMSignerError("the identity \(identity) cannot be written in i=")
            }
        }

        var hasher = DKIMBodyHasher(bodyCanonicalization)
        hasher.feed(parsed.body)
        let bodyHash = Data(hasher.finish()).base64EncodedString()

        let timestamp = Int(now.timeIntervalSince1970.rounded(.down))
        var writer = SignatureFieldWriter(name: "DKIM-Signature")
        for tag in ["v=1;", "a=\(key.algorithm.rawValue);", "c=\(headerCanonicalization.rawValue)/\(bodyCanonicalization.rawValue);",
                    "d=\(domain);", "s=\(selector);", "t=\(timestamp);"] {
            writer.append(tag)
        }
        if let expiry { writer.append("x=\(timestamp + max(1, Int(expiry.rounded(.up))));") }
        if let identity { writer.append("i=\(identity);") }
        // h= may fold before any ':' (RFC 6376 §3.5 sig-h-tag).
        writer.appendHeaderList(names.map { $0.lowercased() })
        writer.append("bh=\(bodyHash);")
        writer.append("b=")

        let unsigned = DKIMMessage(Array((writer.text + "\r\n\r\n").utf8))
        guard let field = unsigned.fields.first else { throw DKIMSignerError("internal: the field did not parse") }
        var data: [UInt8] = []
        for selected in parsed.select(names) {
            guard let selected else { continue }
            data += DKIMHeaderCanonicalizer.canonicalize(selected.raw, headerCanonicalization)
            data += [0x0D, 0x0A]
        }
        data += DKIMHeaderCanonicalizer.canonicalize(field.raw, headerCanonicalization)
        let text = writer.signed(Data(try key.sign(data)).base64EncodedString())
        return text + "\r\n"
    }
}
