import Foundation
import PluginAPI
import PluginCredentials

// Which tokens name which account: the claim checks shared by JWTs (after jwt-kit verified the
// signature) and introspection answers (RFC 7662). Pure: claims and a clock in, a user or a
// reason out.

/// One claim's value, as far as the checks need it.
enum ClaimValue: Sendable, Equatable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case strings([String])
    /// Objects, mixed arrays, null: kept so a claim's presence is known, never compared.
    case other

    var string: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    var number: Double? {
        switch self {
        case .number(let n): return n
        // Some introspection endpoints send times as strings.
        case .string(let s): return Double(s)
        default: return nil
        }
    }

    /// A string claim or an array of strings (aud, scp).
    var strings: [String]? {
        switch self {
        case .string(let s): return [s]
        case .strings(let a): return a
        default: return nil
        }
    }
}

/// Why a token was refused. The reason goes to the log, never to the client (which gets the
/// mechanism's one error challenge whatever went wrong).
enum TokenRejection: Error, Sendable, Equatable, CustomStringConvertible {
    case malformed(String)
    case signature(String)
    case inactive
    case wrongIssuer
    case wrongAudience
    case expired
    case notYetValid
    case missingClaim(String)
    case missingScope(String)
    case noAccountName(String)

    var description: String {
        switch self {
        case .malformed(let why): return "malformed token: \(why)"
        case .signature(let why): return "signature not verified: \(why)"
        case .inactive: return "introspection says the token is not active"
        case .wrongIssuer: return "wrong issuer"
        case .wrongAudience: return "wrong audience"
        case .expired: return "expired"
        case .notYetValid: return "not valid yet (nbf)"
        case .missingClaim(let c): return "no \(c) claim"
        case .missingScope(let s): return "scope \(s) not granted"
        case .noAccountName(let why): return "no account name: \(why)"
        }
    }
}

/// The site's rules for tokens: `[plugin.sasl-oauth]`'s issuer, audience, user claim, domain,
/// required scope and clock leeway.
struct TokenPolicy: Sendable, Equatable {
    enum Source: Sendable { case jwt, introspection }

    /// `iss` must equal this. Required for JWTs; checked on introspection answers that carry one.
    var issuer: String?
    /// `aud` (a string or an array) must hold one of these. Required for JWTs when non-empty.
    var audiences: [String]
    /// Seconds of clock difference forgiven on `exp` and `nbf`.
    var leeway: Double
    /// The claim that names the user: `email`, `sub`, `preferred_username`, `username`.
    var userClaim: String
    /// Appended as `@domain` to a user claim without `@` (e.g. `sub` = `alice`).
    var userDomain: String?
    /// A scope the token must grant (`scope` string, space-separated, or `scp` array).
    var requiredScope: String?

    /// The account name the token names, or why it is refused. `now` is seconds since 1970.
    func account(from claims: [String: ClaimValue], source: Source, now: Double) -> Result<String, TokenRejection> {
        if source == .introspection {
            guard case .bool(true)? = claims["active"] else { return .failure(.inactive) }
        }
        if let issuer {
            switch (claims["iss"]?.string, source) {
            case (let iss?, _): if iss != issuer { return .failure(.wrongIssuer) }
            case (nil, .jwt): return .failure(.missingClaim("iss"))
            case (nil, .introspection): break
            }
        }
        if !audiences.isEmpty {
            guard let aud = claims["aud"]?.strings else { return .failure(.missingClaim("aud")) }
            guard aud.contains(where: { audiences.contains($0) }) else { return .failure(.wrongAudience) }
        }
        if let exp = claims["exp"]?.number {
            if now > exp + leeway { return .failure(.expired) }
        } else if source == .jwt {
            // A JWT without an expiry would be good forever.
            return .failure(.missingClaim("exp"))
        }
        if let nbf = claims["nbf"]?.number, now + leeway < nbf { return .failure(.notYetValid) }
        if let required = requiredScope {
            let granted = claims["scope"]?.string.map { $0.split(separator: " ").map(String.init) } ?? claims["scp"]?.strings ?? []
            guard granted.contains(required) else { return .failure(.missingScope(required)) }
        }
        guard let raw = claims[userClaim]?.string, !raw.isEmpty else { return .failure(.missingClaim(userClaim)) }
        if raw.contains("@") { return .success(raw) }
        guard let userDomain, !userDomain.isEmpty else {
            return .failure(.noAccountName("\(userClaim) has no @domain and user_domain is not set"))
        }
        return .success(raw + "@" + userDomain)
    }
}

/// Claims of any shape, decoded from a JWT payload or an introspection answer.
struct TokenClaims: JWTPayload, Equatable {
    var claims: [String: ClaimValue]

    init(claims: [String: ClaimValue]) { self.claims = claims }

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        var claims: [String: ClaimValue] = [:]
        for key in container.allKeys {
            if let s = try? container.decode(String.self, forKey: key) {
                claims[key.stringValue] = .string(s)
            } else if let b = try? container.decode(Bool.self, forKey: key) {
                claims[key.stringValue] = .bool(b)
            } else if let n = try? container.decode(Double.self, forKey: key) {
                claims[key.stringValue] = .number(n)
            } else if let a = try? container.decode([String].self, forKey: key) {
                claims[key.stringValue] = .strings(a)
            } else {
                claims[key.stringValue] = .other
            }
        }
        self.claims = claims
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in claims {
            let key = Key(stringValue: name)
            switch value {
            case .string(let s): try container.encode(s, forKey: key)
            case .number(let n): try container.encode(n, forKey: key)
            case .bool(let b): try container.encode(b, forKey: key)
            case .strings(let a): try container.encode(a, forKey: key)
            case .other: break
            }
        }
    }

    /// jwt-kit calls this after the signature checked out; the site's rules are applied by
    /// `TokenPolicy`, which introspection answers go through too.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
