// The DKIM key record published at SELECTOR._domainkey.DOMAIN (RFC 6376 §3.6.1, RFC 8463 §4).

package enum DKIMKeyType: String, Sendable, Equatable {
    case rsa, ed25519
}

package struct DKIMKeyRecordError: Error, Sendable, Equatable, CustomStringConvertible {
    package var description: String
    init(_ description: String) { self.description = description }
}

package struct DKIMKeyRecord: Sendable, Equatable {
    package var keyType: DKIMKeyType
    /// `p=` decoded; empty when the key was revoked.
    package var publicKey: [UInt8]
    /// `h=`: the hashes allowed (lowercased); nil when absent (all).
    package var hashes: [String]?
    /// `t=y`: the domain is testing DKIM.
    package var testing: Bool
    /// `t=s`: `i=` must be in `d=` itself, not a subdomain.
    package var strictIdentity: Bool

    package var isRevoked: Bool { publicKey.isEmpty }

    /// Parses a TXT record's text (its strings joined). Unknown tags and flags are ignored; an
    /// unknown key type, a service type list without `email` or `*`, a missing or non-base64
    /// `p=`, or `v=` other than `DKIM1` (or not first) is an error.
    package static func parse(_ text: String) throws(DKIMKeyRecordError) -> DKIMKeyRecord {
        let list: DKIMTagList
        do { list = try DKIMTagList.parse(Array(text.utf8)) } catch { throw DKIMKeyRecordError("malformed key record: \(error)") }
        if let v = list["v"] {
            guard v == "DKIM1" else { throw DKIMKeyRecordError("unsupported key record version v=\(v)") }
            guard list.tags.first?.name == "v" else { throw DKIMKeyRecordError("v= is not the first tag") }
        }
        let typeName = (list["k"] ?? "rsa").lowercased()
        guard let keyType = DKIMKeyType(rawValue: typeName) else { throw DKIMKeyRecordError("unknown key type k=\(typeName)") }
        guard let p = list["p"] else { throw DKIMKeyRecordError("no p= in key record") }
        guard let publicKey = DKIMBase64.decode(p) else { throw DKIMKeyRecordError("p= is not base64") }
        let hashes = list["h"].map { colonList($0) }
        if let services = list["s"].map(colonList), !services.contains("*"), !services.contains("email") {
            throw DKIMKeyRecordError("key not for email (s=\(list["s"]!))")
        }
        let flags = list["t"].map(colonList) ?? []
        return DKIMKeyRecord(keyType: keyType, publicKey: publicKey, hashes: hashes, testing: flags.contains("y"),
                             strictIdentity: flags.contains("s"))
    }

    private static func colonList(_ text: String) -> [String] {
        text.split(separator: ":").map { $0.filter { !" \t\r\n".contains($0) }.lowercased() }
    }
}
