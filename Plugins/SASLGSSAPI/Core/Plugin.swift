import Foundation
import PluginAPI

// The sasl-gssapi plugin (worker side): the GSSAPI mechanism, and a credential backend that sends
// PLAIN/LOGIN password checks of the domains whose users live in Kerberos to authproxyd. Neither
// links libkrb5 or sees the keytab.

package enum SASLGSSAPIRegistration {
    static let schema = ConfigSchema([
        ConfigField("socket", .string, required: true, help: "authproxyd's Unix socket ([authproxyd] socket)"),
        ConfigField("timeout", .duration, default: .string("5s"), help: "longest wait for one authproxyd answer"),
        ConfigField("password_domains", .array(.string), default: .array([]),
                    help: "domains whose PLAIN/LOGIN passwords are checked against Kerberos through authproxyd"),
    ])

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "sasl-gssapi", version: "1.0.0",
                summary: "SASL GSSAPI (RFC 4752) and Kerberos password checks through authproxyd",
                kinds: [.saslMechanism, .credentialBackend], config: schema),
            activate: { SASLGSSAPIPlugin(context: $0) })
    }
}

final class SASLGSSAPIPlugin: Plugin {
    let mechanism: GSSAPIMechanism
    let backend: KerberosPasswordBackend

    init(context: PluginContext) {
        let client = AuthProxyClient(socketPath: context.config.string("socket")!, timeout: context.config.duration("timeout") ?? 5)
        let services = context.services
        // Looked up per login, never captured at activation (the store may activate later).
        let accounts: @Sendable (String) async -> AccountCheck = { user in
            await AccountLookup.check(user, backends: services.credentialBackends.filter { $0.name != "kerberos-proxy" }.map(\.backend))
        }
        mechanism = GSSAPIMechanism(client: client, accounts: accounts)
        backend = KerberosPasswordBackend(client: client, domains: Set((context.config.strings("password_domains") ?? []).map { $0.lowercased() }),
                                          accounts: accounts)
    }

    var services: [ProvidedService] {
        [.saslMechanism(mechanism), .credentialBackend(name: "kerberos-proxy", backend)]
    }
}

enum AccountLookup {
    /// Whether `user` is an account of some other credential backend (the store, LDAP): a
    /// Kerberos principal is a login only for an account that exists here.
    static func check(_ user: String, backends: [any CredentialBackend]) async -> AccountCheck {
        var trouble: String?
        for backend in backends {
            do {
                if let record = try await backend.lookupUser(user) {
                    return record.enabled ? .exists(record.name) : .disabled
                }
            } catch {
                trouble = "\(error)"
            }
        }
        return trouble.map { .unavailable($0) } ?? .absent
    }
}

/// Password checks for users of `domains`, answered by authproxyd (kinit, then verification with
/// the keytab). Other users: `.unknownUser`, so the next backend answers.
struct KerberosPasswordBackend: CredentialBackend {
    let client: AuthProxyClient
    let domains: Set<String>
    let accounts: @Sendable (String) async -> AccountCheck

    func handles(_ user: String) -> Bool {
        guard let at = user.lastIndex(of: "@") else { return false }
        return domains.contains(user[user.index(after: at)...].lowercased())
    }

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer {
        guard handles(user) else { return .unknownUser }
        switch await client.send(.password(user: user, password: password)) {
        case .failure(let error):
            return .unavailable(reason: error.description)
        case .success(.passwordVerified(_, let account)):
            switch await accounts(account) {
            case .exists(let name): return .verified(user: name)
            case .disabled: return .suspended(user: account)
            case .absent: return .wrongPassword
            case .unavailable(let why): return .unavailable(reason: why)
            }
        case .success(.refused(.unknownUser, _)): return .unknownUser
        case .success(.refused(.temporary, let why)), .success(.refused(.unsupported, let why)): return .unavailable(reason: "authproxyd: \(why)")
        case .success(.refused): return .wrongPassword
        case .success(let other): return .unavailable(reason: "authproxyd answered a password check with \(other.type)")
        }
    }

    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer { .unknownUser }
    func lookupUser(_ user: String) async throws -> UserRecord? { nil }
}
