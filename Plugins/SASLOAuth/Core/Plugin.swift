import Foundation
import PluginAPI

// The sasl-oauth plugin: OAUTHBEARER (RFC 7628) and XOAUTH2 over one step machine, and the
// credential backend that verifies their bearer tokens (JWTs against a JWKS file, or RFC 7662
// introspection). README.md in this folder describes keys and behaviour.

/// What `postern_plugin_entry` (Entry/Entry.swift) hands the host: the manifest and how to
/// activate the plugin. Here rather than in the entry so that tests can read it.
package enum SASLOAuthRegistration {
    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-oauth", version: "1.0.0", summary: "SASL OAUTHBEARER (RFC 7628) and XOAUTH2 with JWT or introspection",
                kinds: [.saslMechanism, .credentialBackend], config: SASLOAuthPlugin.schema),
            activate: { context in try SASLOAuthPlugin(context: context) })
    }
}

final class SASLOAuthPlugin: Plugin {
    static let schema = ConfigSchema([
        ConfigField("mechanisms", .array(.oneOf(["OAUTHBEARER", "XOAUTH2"])), default: .array([.string("OAUTHBEARER"), .string("XOAUTH2")]),
                    help: "the mechanisms to offer"),
        ConfigField("jwks_file", .string, help: "the issuer's signing keys (a JWKS JSON file): JWTs are verified locally"),
        ConfigField("issuer", .string, help: "the iss every JWT must carry (required with jwks_file)"),
        ConfigField("audience", .array(.string), default: .array([]), help: "aud values accepted (one must match); required with jwks_file"),
        ConfigField("user_claim", .string, default: .string("email"), help: "the claim naming the account: email, sub, preferred_username, ..."),
        ConfigField("user_domain", .string, help: "appended as @domain when the user claim has no @"),
        ConfigField("required_scope", .string, help: "a scope every token must grant"),
        ConfigField("leeway", .duration, default: .string("60s"), help: "clock difference forgiven on exp and nbf"),
        ConfigField("introspection_url", .string, help: "RFC 7662 endpoint for tokens that are not JWTs (or for all, without jwks_file)"),
        ConfigField("introspection_client_id", .string, help: "this server's client id at the authorization server"),
        ConfigField("introspection_client_secret", .string, help: "... and its secret (HTTP Basic)"),
        ConfigField("introspection_timeout", .duration, default: .string("5s")),
        ConfigField("introspection_cache", .duration, default: .string("60s"), help: "how long a positive answer is reused (0s: never)"),
        ConfigField("error_scope", .string, help: "the scope named in the error challenge"),
        ConfigField("openid_configuration", .string, help: "the discovery URL named in OAUTHBEARER's error challenge"),
    ])

    let mechanisms: [OAuthMechanism]
    let backend: OAuthTokenBackend

    init(context: PluginContext) throws {
        let config = context.config
        let policy = TokenPolicy(
            issuer: config.string("issuer"), audiences: config.strings("audience") ?? [],
            leeway: config.duration("leeway") ?? 60, userClaim: config.string("user_claim") ?? "email",
            userDomain: config.string("user_domain"), requiredScope: config.string("required_scope"))
        var jwt: JWTVerifier?
        if let file = config.string("jwks_file") {
            let path = file.hasPrefix("/") ? file : context.dataDirectory + "/" + file
            guard let data = FileManager.default.contents(atPath: path) else { throw OAuthConfigError("jwks_file: cannot read \(path)") }
            guard policy.issuer != nil else { throw OAuthConfigError("jwks_file needs issuer (the iss of the tokens it verifies)") }
            guard !policy.audiences.isEmpty else { throw OAuthConfigError("jwks_file needs audience (the aud the tokens are for)") }
            do {
                jwt = try JWTVerifier(jwksJSON: [UInt8](data), policy: policy)
            } catch let error as OAuthConfigError {
                throw error
            } catch {
                throw OAuthConfigError("jwks_file \(path) is not a JWKS: \(error)")
            }
        }
        var introspection: IntrospectionClient?
        if let url = config.string("introspection_url") {
            guard let id = config.string("introspection_client_id"), let secret = config.string("introspection_client_secret") else {
                throw OAuthConfigError("introspection_url needs introspection_client_id and introspection_client_secret")
            }
            let seconds = config.duration("introspection_timeout") ?? 5
            introspection = try IntrospectionClient(endpoint: IntrospectionEndpoint(url: url, clientID: id, clientSecret: secret),
                                                    group: context.eventLoopGroup, timeout: .nanoseconds(Int64(seconds * 1e9)))
        }
        guard jwt != nil || introspection != nil else {
            throw OAuthConfigError("set jwks_file (JWTs) or introspection_url (RFC 7662), or both")
        }
        backend = OAuthTokenBackend(jwt: jwt, introspection: introspection, introspectionPolicy: policy,
                                    cache: IntrospectionCache(lifetime: config.duration("introspection_cache") ?? 60),
                                    logger: context.logger)
        let details = OAuthErrorDetails(scope: config.string("error_scope"), openIDConfiguration: config.string("openid_configuration"))
        mechanisms = (config.strings("mechanisms") ?? ["OAUTHBEARER", "XOAUTH2"]).map {
            OAuthMechanism(format: $0 == "XOAUTH2" ? .xoauth2 : .oauthBearer, errorDetails: details)
        }
    }

    var services: [ProvidedService] {
        mechanisms.map { .saslMechanism($0) } + [.credentialBackend(name: "sasl-oauth", backend)]
    }
}
