import Foundation
import PluginAPI
import PluginCredentials

// JWT access tokens checked against the issuer's keys: jwt-kit verifies the signature with the
// JWKS file's keys (the JWK's alg decides the algorithm; a JWK without one takes the header's,
// which must suit the key's type, so `alg: none` and an HMAC forged with a public key are
// refused), then `TokenPolicy` checks the claims.

actor JWTVerifier {
    private let jwks: JWKS
    private let policy: TokenPolicy
    private var keys: JWTKeyCollection?

    /// Parses the JWKS now, so that a broken file refuses the plugin at activation.
    init(jwksJSON: [UInt8], policy: TokenPolicy) throws {
        self.jwks = try JSONDecoder().decode(JWKS.self, from: Data(jwksJSON))
        guard !jwks.keys.isEmpty else { throw OAuthConfigError("jwks_file holds no keys") }
        self.policy = policy
    }

    /// The account the token names, or why it is refused.
    func verify(_ token: String, now: Double = Date().timeIntervalSince1970) async -> Result<String, TokenRejection> {
        let collection: JWTKeyCollection
        do {
            collection = try await keyCollection()
        } catch {
            return .failure(.signature("the JWKS keys cannot be used: \(error)"))
        }
        let claims: TokenClaims
        do {
            claims = try await collection.verify(token, as: TokenClaims.self)
        } catch {
            return .failure(.signature("\(error)"))
        }
        return policy.account(from: claims.claims, source: .jwt, now: now)
    }

    private func keyCollection() async throws -> JWTKeyCollection {
        if let keys { return keys }
        let collection = JWTKeyCollection()
        try await collection.add(jwks: jwks)
        keys = collection
        return collection
    }

    /// Whether a token is shaped like a JWS (three base64url parts), so worth checking here
    /// rather than at the introspection endpoint.
    static func looksLikeJWT(_ token: String) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 3 && !parts[0].isEmpty && !parts[1].isEmpty
    }
}

struct OAuthConfigError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
