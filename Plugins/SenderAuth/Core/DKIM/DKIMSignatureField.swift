// The DKIM-Signature header field (RFC 6376 §3.5): every tag checked as a verifier needs it.

/// How header fields or the body are canonicalised (RFC 6376 §3.4).
package enum DKIMCanonicalization: String, Sendable, Equatable, Hashable {
    case simple, relaxed
}

/// The signature algorithms (`a=`) this verifier knows.
package enum DKIMAlgorithm: String, Sendable, Equatable {
    case rsaSHA256 = "rsa-sha256"
    /// Known to be refused: RFC 8301 §3.1 removed it.
    case rsaSHA1 = "rsa-sha1"
    /// RFC 8463.
    case ed25519SHA256 = "ed25519-sha256"

    /// The key type (`k=`) that signs with it.
    package var keyType: DKIMKeyType {
        switch self {
        case .rsaSHA256, .rsaSHA1: return .rsa
        case .ed25519SHA256: return .ed25519
        }
    }

    /// The hash name as key records list it (`h=`).
    package var hashName: String { self == .rsaSHA1 ? "sha1" : "sha256" }
}

package struct DKIMSignatureError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

/// A parsed DKIM-Signature field value.
package struct DKIMSignature: Sendable, Equatable {
    /// `a=` as written (lowercased), and what it names when known.
    package var algorithmName: String
    package var algorithm: DKIMAlgorithm?
    package var signature: [UInt8]
    /// `b=` without folding: its first characters are `header.b` (RFC 6008).
    package var signatureText: String
    package var bodyHash: [UInt8]
    package var headerCanonicalization: DKIMCanonicalization
    package var bodyCanonicalization: DKIMCanonicalization
    /// `d=`, lowercased.
    package var domain: String
    /// `h=`: the names as written, in order, repeats included.
    package var signedHeaders: [String]
    /// `i=` as written (nil when absent: the default is `@d`).
    package var identity: String?
    /// `l=`: how many octets of the canonical body are signed (Int.max when beyond Int).
    package var bodyLength: Int?
    package var selector: String
    package var timestamp: Int?
    package var expiration: Int?
    /// The `b=` value's place in the parsed bytes, emptied when the field itself is hashed.
    package var signatureValueRange: Range<Int>

    /// The tags a signature must have (§3.5: v, a, b, bh, d, h, s).
    static let required = ["v", "a", "b", "bh", "d", "h", "s"]

    /// Parses a field's value (the bytes after `DKIM-Signature:`, folding included).
    package static func parse<Bytes: RandomAccessCollection>(_ bytes: Bytes) throws(DKIMSignatureError) -> DKIMSignature
    where Bytes.Element == UInt8, Bytes.Index == Int {
        let list: DKIMTagList
        do { list = try DKIMTagList.parse(bytes) } catch { throw DKIMSignatureError("malformed tag list: \(error)") }
        return try parse(list)
    }

    package static func parse(_ list: DKIMTagList) throws(DKIMSignatureError) -> DKIMSignature {
        for name in required where list[name] == nil { throw DKIMSignatureError("missing required tag \(name)=") }
        guard list["v"] == "1" else { throw DKIMSignatureError("unsupported version v=\(list["v"] ?? "")") }

        let algorithmName = list["a"]!.lowercased()
        let algorithm = DKIMAlgorithm(rawValue: algorithmName)
        let bTag = list.tag("b")!
        guard let signature = DKIMBase64.decode(bTag.value), !signature.isEmpty else { throw DKIMSignatureError("b= is not base64") }
        guard let bodyHash = DKIMBase64.decode(list["bh"]!), !bodyHash.isEmpty else { throw DKIMSignatureError("bh= is not base64") }

        var headerCanonicalization = DKIMCanonicalization.simple, bodyCanonicalization = DKIMCanonicalization.simple
        if let c = list["c"] {
            let parts = c.lowercased().split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let header = DKIMCanonicalization(rawValue: String(parts[0])) else {
                throw DKIMSignatureError("unknown canonicalization c=\(c)")
            }
            headerCanonicalization = header
            if parts.count == 2 {
                guard let body = DKIMCanonicalization(rawValue: String(parts[1])) else { throw DKIMSignatureError("unknown canonicalization c=\(c)") }
                bodyCanonicalization = body
            }
        }

        let domain = list["d"]!.lowercased()
        guard isDomainName(domain) else { throw DKIMSignatureError("d= is not a domain name") }
        let selector = list["s"]!
        guard isSelector(selector) else { throw DKIMSignatureError("s= is not a selector") }

        // h=: names separated by ':', white space around them allowed.
        let signedHeaders = list["h"]!.split(separator: ":", omittingEmptySubsequences: false).map {
            String($0.filter { !" \t\r\n".contains($0) })
        }
        guard signedHeaders.allSatisfy(isFieldName) else { throw DKIMSignatureError("h= holds an empty or invalid field name") }
        guard signedHeaders.contains(where: { $0.lowercased() == "from" }) else { throw DKIMSignatureError("h= does not include From") }

        let identity = list["i"]
        if let identity {
            guard let at = identity.lastIndex(of: "@") else { throw DKIMSignatureError("i= has no '@'") }
            let identityDomain = identity[identity.index(after: at)...].lowercased()
            guard identityDomain == domain || identityDomain.hasSuffix("." + domain) else {
                throw DKIMSignatureError("i= is not within d=")
            }
        }

        var bodyLength: Int?
        if let l = list["l"] {
            guard let digits = decimal(l, maxDigits: 76) else { throw DKIMSignatureError("l= is not a number") }
            bodyLength = digits
        }
        if let q = list["q"] {
            let methods = q.split(separator: ":").map { $0.filter { !" \t\r\n".contains($0) }.lowercased() }
            guard methods.contains(where: { $0 == "dns/txt" || $0.hasPrefix("dns/txt/") }) else {
                throw DKIMSignatureError("no supported query method in q=\(q)")
            }
        }
        var timestamp: Int?, expiration: Int?
        if let t = list["t"] {
            guard let value = decimal(t, maxDigits: 12) else { throw DKIMSignatureError("t= is not a number") }
            timestamp = value
        }
        if let x = list["x"] {
            guard let value = decimal(x, maxDigits: 12) else { throw DKIMSignatureError("x= is not a number") }
            expiration = value
        }
        if let timestamp, let expiration, expiration <= timestamp {
            throw DKIMSignatureError("x= is not after t=")
        }
        return DKIMSignature(algorithmName: algorithmName, algorithm: algorithm, signature: signature,
                             signatureText: DKIMBase64.stripped(bTag.value), bodyHash: bodyHash,
                             headerCanonicalization: headerCanonicalization, bodyCanonicalization: bodyCanonicalization,
                             domain: domain, signedHeaders: signedHeaders, identity: identity, bodyLength: bodyLength,
                             selector: selector, timestamp: timestamp, expiration: expiration,
                             signatureValueRange: bTag.rawValueRange)
    }

    /// 1 to `maxDigits` ASCII digits; values beyond Int are Int.max.
    static func decimal(_ text: String, maxDigits: Int) -> Int? {
        guard !text.isEmpty, text.utf8.count <= maxDigits, text.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int(text) ?? Int.max
    }

    /// Letters, digits, '-' and '_' in dot-separated labels (A-labels; '_' for names like selectors use).
    static func isDomainName(_ text: String) -> Bool {
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        return !text.isEmpty && text.utf8.count <= 253 && labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63
                && label.utf8.allSatisfy { isLetterOrDigit($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
        }
    }

    static func isSelector(_ text: String) -> Bool { isDomainName(text) }

    /// RFC 5322 ftext: printable ASCII except ':'.
    static func isFieldName(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { $0 >= 33 && $0 <= 126 && $0 != UInt8(ascii: ":") }
    }

    private static func isLetterOrDigit(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
    }
}
