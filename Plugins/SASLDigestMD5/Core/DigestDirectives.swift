import Foundation
import PluginAPI

// The digest-response of RFC 2831 §2.1.2, parsed strictly from bytes: a comma-separated list of
// `name=value`, each value a token or a quoted-string (§7.2, with `\` quoting), every directive
// at most once. Unknown directives are ignored, as §2.1.2 asks.

/// The directives of a digest-response that Postern uses, validated.
struct DigestResponse: Equatable {
    var username: String
    var realm: String?
    var nonce: String
    var cnonce: String
    /// nonce-count: 8 hex digits.
    var nonceCount: UInt32
    /// The nonce-count exactly as sent (it goes into the response hash as text).
    var nonceCountText: String
    var qop: String
    var digestURI: String
    var response: String
    var authzid: String?

    static let maximumLength = 4096

    static func parse(_ bytes: [UInt8]) -> Result<DigestResponse, SASLFailure> {
        guard bytes.count <= maximumLength else { return .failure(.malformed("digest-response too long")) }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .failure(.malformed("digest-response is not UTF-8")) }
        let directives: [String: String]
        switch parseDirectives(Array(text.utf8)) {
        case .failure(let f): return .failure(f)
        case .success(let d): directives = d
        }
        func required(_ name: String) -> Result<String, SASLFailure> {
            guard let value = directives[name], !value.isEmpty else { return .failure(.malformed("missing \(name)")) }
            return .success(value)
        }
        do throws(SASLFailure) {
            let username = try required("username").get()
            let nonce = try required("nonce").get()
            let cnonce = try required("cnonce").get()
            let ncText = try required("nc").get()
            let digestURI = try required("digest-uri").get()
            let response = try required("response").get()
            guard ncText.utf8.count == 8, ncText.utf8.allSatisfy({ isHex($0) }), let nc = UInt32(ncText, radix: 16) else {
                return .failure(.malformed("nc is not 8 hex digits"))
            }
            guard response.utf8.count == 32, response.utf8.allSatisfy({ isHex($0) && !(0x41...0x46).contains($0) }) else {
                return .failure(.malformed("response is not 32 lower-case hex digits"))
            }
            let qop = directives["qop"] ?? "auth"
            guard qop == "auth" else { return .failure(.malformed("only qop=auth is offered")) }
            if directives["cipher"] != nil { return .failure(.malformed("no confidentiality layer is offered")) }
            if let charset = directives["charset"], charset.lowercased() != "utf-8" { return .failure(.malformed("charset must be utf-8")) }
            if let maxbuf = directives["maxbuf"], maxbuf.isEmpty || maxbuf.utf8.count > 10 || !maxbuf.utf8.allSatisfy({ (0x30...0x39).contains($0) }) {
                return .failure(.malformed("maxbuf is not a number"))
            }
            let authzid = directives["authzid"]
            if authzid?.isEmpty == true { return .failure(.malformed("empty authzid")) }
            return .success(DigestResponse(username: username, realm: directives["realm"], nonce: nonce, cnonce: cnonce,
                                           nonceCount: nc, nonceCountText: ncText, qop: qop, digestURI: digestURI,
                                           response: response, authzid: authzid))
        } catch {
            return .failure(error)
        }
    }

    /// `name=value` pairs: names are tokens (case-insensitive), values tokens or quoted-strings.
    /// Empty list elements (",,") are allowed, as in HTTP's #rule. A name twice is an error.
    static func parseDirectives(_ input: [UInt8]) -> Result<[String: String], SASLFailure> {
        var result: [String: String] = [:]
        var i = 0
        func skipSpace() { while i < input.count, input[i] == 0x20 || input[i] == 0x09 { i += 1 } }
        while i < input.count {
            skipSpace()
            if i < input.count, input[i] == UInt8(ascii: ",") { i += 1; continue }
            if i >= input.count { break }
            let nameStart = i
            while i < input.count, isTokenChar(input[i]) { i += 1 }
            guard i > nameStart else { return .failure(.malformed("expected a directive name")) }
            let name = String(decoding: input[nameStart..<i], as: UTF8.self).lowercased()
            skipSpace()
            guard i < input.count, input[i] == UInt8(ascii: "=") else { return .failure(.malformed("expected = after \(name)")) }
            i += 1
            skipSpace()
            var value: [UInt8] = []
            if i < input.count, input[i] == UInt8(ascii: "\"") {
                i += 1
                var closed = false
                while i < input.count {
                    let c = input[i]
                    if c == UInt8(ascii: "\\") {
                        guard i + 1 < input.count else { break }
                        value.append(input[i + 1])
                        i += 2
                    } else if c == UInt8(ascii: "\"") {
                        closed = true
                        i += 1
                        break
                    } else if c < 0x20 || c == 0x7F {
                        return .failure(.malformed("control character in \(name)"))
                    } else {
                        value.append(c)
                        i += 1
                    }
                }
                guard closed else { return .failure(.malformed("unterminated quoted string in \(name)")) }
            } else {
                let valueStart = i
                while i < input.count, isTokenChar(input[i]) { i += 1 }
                guard i > valueStart else { return .failure(.malformed("empty value for \(name)")) }
                value = Array(input[valueStart..<i])
            }
            guard result[name] == nil else { return .failure(.malformed("\(name) given twice")) }
            result[name] = String(decoding: value, as: UTF8.self)
            skipSpace()
            if i < input.count {
                guard input[i] == UInt8(ascii: ",") else { return .failure(.malformed("expected , after \(name)")) }
                i += 1
            }
        }
        return .success(result)
    }
}

private func isHex(_ c: UInt8) -> Bool {
    (0x30...0x39).contains(c) || (0x61...0x66).contains(c) || (0x41...0x46).contains(c)
}

/// RFC 2616 token characters: printable ASCII except separators.
private func isTokenChar(_ c: UInt8) -> Bool {
    guard c > 0x20, c < 0x7F else { return false }
    return !"()<>@,;:\\\"/[]?={}".utf8.contains(c)
}

/// A quoted-string for the challenge: `\` before `"` and `\`.
func quoted(_ text: String) -> String {
    "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
}
