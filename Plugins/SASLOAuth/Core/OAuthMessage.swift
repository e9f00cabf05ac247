import PluginAPI

// The client messages of OAUTHBEARER (RFC 7628 §3.1) and XOAUTH2 (Google's format), parsed
// strictly from bytes: no I/O, so the tests feed them byte fixtures. Error texts never contain
// the token.

/// What a client sent: the bearer token and what it said about itself.
struct OAuthClientMessage: Equatable {
    /// The b64token of `auth=Bearer <token>`.
    var token: String
    /// OAUTHBEARER's gs2 authzid (`a=`), or XOAUTH2's `user=`; nil when absent.
    var user: String?
    /// OAUTHBEARER's `host=` and `port=`, for the log.
    var host: String?
    var port: Int?
}

enum OAuthMessage {
    /// RFC 7628 §3.1's separator between key/value pairs.
    static let kvsep: UInt8 = 0x01
    /// Bound on a whole message: JWTs with many claims run to a few KiB, nothing needs more.
    static let maximumLength = 16 * 1024

    /// An OAUTHBEARER client response:
    /// `gs2-header %x01 *(key "=" value %x01) %x01`, where gs2-header is `n,[a=authzid],` (or
    /// `y,...`; `p=` asks for channel binding, which this server does not offer).
    static func parseOAuthBearer(_ message: [UInt8]) -> Result<OAuthClientMessage, SASLFailure> {
        guard message.count <= maximumLength else { return .failure(.malformed("message longer than \(maximumLength) bytes")) }
        guard let headerEnd = message.firstIndex(of: kvsep) else { return .failure(.malformed("no %x01 after the gs2 header")) }
        let header = Array(message[..<headerEnd])
        let authzid: String?
        switch parseGS2Header(header) {
        case .failure(let f): return .failure(f)
        case .success(let a): authzid = a
        }
        switch parseKVPairs(Array(message[(headerEnd + 1)...])) {
        case .failure(let f):
            return .failure(f)
        case .success(let pairs):
            guard let auth = pairs["auth"] else { return .failure(.malformed("missing auth=")) }
            guard let token = bearerToken(auth) else { return .failure(.malformed("auth= is not \"Bearer <token>\"")) }
            var port: Int?
            if let p = pairs["port"] {
                guard !p.isEmpty, p.count <= 5, p.allSatisfy(\.isASCIIDigit), let n = Int(p), n <= 65535 else {
                    return .failure(.malformed("port= is not a port number"))
                }
                port = n
            }
            return .success(OAuthClientMessage(token: token, user: authzid, host: pairs["host"], port: port))
        }
    }

    /// An XOAUTH2 client response: `user=NAME %x01 auth=Bearer TOKEN %x01 %x01`.
    static func parseXOAuth2(_ message: [UInt8]) -> Result<OAuthClientMessage, SASLFailure> {
        guard message.count <= maximumLength else { return .failure(.malformed("message longer than \(maximumLength) bytes")) }
        switch parseKVPairs(message) {
        case .failure(let f):
            return .failure(f)
        case .success(let pairs):
            guard let user = pairs["user"], !user.isEmpty else { return .failure(.malformed("missing user=")) }
            guard let auth = pairs["auth"] else { return .failure(.malformed("missing auth=")) }
            guard let token = bearerToken(auth) else { return .failure(.malformed("auth= is not \"Bearer <token>\"")) }
            return .success(OAuthClientMessage(token: token, user: user))
        }
    }

    /// `gs2-cb-flag "," [ "a=" saslname ] ","`; the authzid, decoded (`=2C` is `,`, `=3D` is `=`).
    static func parseGS2Header(_ header: [UInt8]) -> Result<String?, SASLFailure> {
        guard let text = String(validating: header, as: UTF8.self) else { return .failure(.malformed("gs2 header is not UTF-8")) }
        let parts = text.split(separator: ",", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[2].isEmpty else { return .failure(.malformed("gs2 header is not \"n,[a=authzid],\"")) }
        switch parts[0] {
        case "n", "y": break
        case let flag where flag.hasPrefix("p="): return .failure(.malformed("channel binding is not supported"))
        default: return .failure(.malformed("unknown gs2 channel-binding flag"))
        }
        // curl sends "a=," when it has no user name: read as no authzid rather than refused.
        if parts[1].isEmpty || parts[1] == "a=" { return .success(nil) }
        guard parts[1].hasPrefix("a=") else { return .failure(.malformed("gs2 header field is not a=authzid")) }
        guard let authzid = decodeSASLName(String(parts[1].dropFirst(2))) else { return .failure(.malformed("bad escape in authzid")) }
        return .success(authzid)
    }

    /// RFC 5801 saslname: `=2C` and `=3D` are the only escapes; a bare `=` is an error.
    static func decodeSASLName(_ name: String) -> String? {
        guard !name.isEmpty else { return nil }
        var out = ""
        var rest = Substring(name)
        while let eq = rest.firstIndex(of: "=") {
            out += rest[..<eq]
            let code = rest[eq...].prefix(3)
            switch code {
            case "=2C": out += ","
            case "=3D": out += "="
            default: return nil
            }
            rest = rest[eq...].dropFirst(3)
        }
        return out + rest
    }

    /// `*(key "=" value %x01) %x01`, the whole rest of the message: keys are 1*ALPHA, values
    /// VCHAR, SP, HTAB, CR or LF (RFC 7628 §3.1); a key may appear once.
    static func parseKVPairs(_ bytes: [UInt8]) -> Result<[String: String], SASLFailure> {
        guard bytes.last == kvsep else { return .failure(.malformed("message does not end with %x01")) }
        var pairs: [String: String] = [:]
        var fields = bytes.dropLast().split(separator: kvsep, omittingEmptySubsequences: false)
        // The final %x01 closes the list: the field before it is empty when pairs are present.
        guard fields.last?.isEmpty == true else { return .failure(.malformed("key/value list not closed with %x01 %x01")) }
        fields.removeLast()
        for field in fields {
            guard let eq = field.firstIndex(of: UInt8(ascii: "=")) else { return .failure(.malformed("key/value pair without =")) }
            let key = field[..<eq], value = field[(eq + 1)...]
            guard !key.isEmpty, key.allSatisfy({ ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }) else {
                return .failure(.malformed("key is not 1*ALPHA"))
            }
            guard value.allSatisfy({ ($0 >= 0x21 && $0 <= 0x7E) || $0 == 0x20 || $0 == 0x09 || $0 == 0x0D || $0 == 0x0A }) else {
                return .failure(.malformed("value holds a byte outside VCHAR/SP/HTAB/CR/LF"))
            }
            let name = String(decoding: key, as: UTF8.self)
            guard pairs[name] == nil else { return .failure(.malformed("key \(name) given twice")) }
            pairs[name] = String(decoding: value, as: UTF8.self)
        }
        return .success(pairs)
    }

    /// The token of `Bearer <b64token>` (RFC 6750 §2.1; the scheme is case-insensitive).
    static func bearerToken(_ credentials: String) -> String? {
        let parts = credentials.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1]
        let body = token.drop(while: { $0 != "=" })
        let head = token.prefix(token.count - body.count)
        guard !head.isEmpty, body.allSatisfy({ $0 == "=" }),
              head.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-._~+/".contains($0)) }) else { return nil }
        return String(token)
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
