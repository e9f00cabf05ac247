import Foundation
import PluginAPI

// The credential backend that answers `.bearerToken` questions: JWTs against the JWKS keys,
// other tokens (or every token, without a JWKS) at the introspection endpoint. Password and
// secret questions and account lookups are not its business (`.unknownUser`, nil), so it sits
// beside the account backends without changing their answers.

struct OAuthTokenBackend: CredentialBackend {
    let jwt: JWTVerifier?
    let introspection: IntrospectionClient?
    let introspectionPolicy: TokenPolicy
    let cache: IntrospectionCache
    let logger: Logger
    var now: @Sendable () -> Double = { Date().timeIntervalSince1970 }

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer { .unknownUser }
    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer { .unknownUser }
    func lookupUser(_ user: String) async throws -> UserRecord? { nil }

    func verifyBearerToken(_ token: String) async throws -> CredentialAnswer {
        let outcome: Result<String, TokenRejection>
        if let jwt, JWTVerifier.looksLikeJWT(token) {
            outcome = await jwt.verify(token, now: now())
        } else if let introspection {
            if let user = await cache.user(for: token, now: now()) { return .verified(user: user) }
            let claims: [String: ClaimValue]
            do {
                claims = try await introspection.introspect(token)
            } catch {
                logger.error("token introspection failed", metadata: ["error": "\(error)"])
                return .unavailable(reason: "\(error)")
            }
            outcome = introspectionPolicy.account(from: claims, source: .introspection, now: now())
            if case .success(let user) = outcome {
                await cache.remember(token, user: user, expires: claims["exp"]?.number, now: now())
            }
        } else {
            outcome = .failure(.malformed("not a JWT, and no introspection_url is configured"))
        }
        switch outcome {
        case .success(let user):
            return .verified(user: user)
        case .failure(let why):
            logger.notice("bearer token refused", metadata: ["reason": "\(why)"])
            return .wrongPassword
        }
    }
}

/// Positive introspection answers, kept briefly so a client that logs in over and over (IMAP
/// clients open several connections) does not cost a round trip each time. Keyed by the token's
/// SHA-256, never the token; kept for `lifetime` seconds at most and never past the token's
/// `exp`; bounded in size.
actor IntrospectionCache {
    private var entries: [String: (user: String, until: Double)] = [:]
    let lifetime: Double
    let capacity: Int

    init(lifetime: Double, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func user(for token: String, now: Double) -> String? {
        let key = Self.key(token)
        guard let entry = entries[key] else { return nil }
        guard now < entry.until else {
            entries[key] = nil
            return nil
        }
        return entry.user
    }

    func remember(_ token: String, user: String, expires: Double?, now: Double) {
        guard lifetime > 0 else { return }
        let until = min(now + lifetime, expires ?? .infinity)
        guard until > now else { return }
        if entries.count >= capacity {
            entries = entries.filter { $0.value.until > now }
            if entries.count >= capacity { entries.removeAll() }
        }
        entries[Self.key(token)] = (user, until)
    }

    var count: Int { entries.count }

    static func key(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}
