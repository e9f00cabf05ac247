import Foundation
import PluginAPI

// The auth-kerberos plugin: loaded by `postern authproxyd` only (never by a worker), it answers
// GSSAPI exchanges with the service keytab and checks PLAIN/LOGIN passwords against the KDC.
// It registers one credential backend that is also an `AuthProxyBackend`, which authproxyd asks.

package enum AuthKerberosRegistration {
    static let schema = ConfigSchema([
        ConfigField("keytab", .string, required: true,
                    help: "the service keytab (imap/HOST, smtp/HOST, pop/HOST); must be mode 0600 and owned by authproxyd's user"),
        ConfigField("realms", .map(.string), default: .table([:]),
                    help: "REALM = \"mail.domain\": user@REALM logs in as user@mail.domain"),
        ConfigField("services", .array(.string), default: .array([.string("imap"), .string("smtp"), .string("pop")]),
                    help: "GSSAPI service names accepted"),
        ConfigField("verify_principal", .string, help: "service principal that verifies password logins; default: any key of the keytab"),
        ConfigField("exchange_lifetime", .duration, default: .string("60s"), help: "how long an unfinished GSSAPI exchange is kept"),
    ])

    package static var registration: PluginRegistration {
        PluginRegistration(
            manifest: PluginManifest(
                name: "auth-kerberos", version: "1.0.0",
                summary: "Kerberos 5 for authproxyd: GSSAPI acceptor (RFC 4752) and KDC password checks",
                kinds: [.credentialBackend], config: schema),
            activate: { try AuthKerberosPlugin(context: $0) })
    }
}

enum KeytabCheck {
    /// Refuses a keytab another user could read or replace: it must be a regular file owned by
    /// this process's user with no group or other permissions.
    static func problem(_ path: String) -> String? {
        var st = stat()
        guard stat(path, &st) == 0 else { return "cannot read the keytab \(path): \(String(cString: strerror(errno)))" }
        guard st.st_mode & S_IFMT == S_IFREG else { return "the keytab \(path) is not a regular file" }
        guard st.st_uid == geteuid() else { return "the keytab \(path) belongs to uid \(st.st_uid), not to authproxyd's user (uid \(geteuid()))" }
        guard st.st_mode & 0o077 == 0 else { return "the keytab \(path) is mode \(String(st.st_mode & 0o777, radix: 8)); it must be 0600 (or 0400)" }
        guard access(path, R_OK) == 0 else { return "cannot read the keytab \(path)" }
        return nil
    }
}

final class AuthKerberosPlugin: Plugin {
    let backend: KerberosBackend

    init(context: PluginContext) throws {
        let keytab = context.config.string("keytab")!
        if let problem = KeytabCheck.problem(keytab) { throw KerberosConfigError(problem) }
        var realms: [String: String] = [:]
        if case .table(let t)? = context.config["realms"] {
            for (realm, value) in t { if case .string(let domain) = value { realms[realm] = domain } }
        }
        let map = PrincipalMap(realms: realms)
        let exchanges = GSSAPIExchanges(keytab: keytab, map: map, services: Set(context.config.strings("services") ?? []),
                                        lifetime: context.config.duration("exchange_lifetime") ?? 60, logger: context.logger)
        backend = KerberosBackend(map: map, exchanges: exchanges,
                                  verifier: PasswordVerifier(keytab: keytab, verifyPrincipal: context.config.string("verify_principal")),
                                  logger: context.logger)
        context.logger.info("kerberos backend ready", metadata: ["keytab": "\(keytab)", "realms": "\(realms.keys.sorted())"])
    }

    var services: [ProvidedService] { [.credentialBackend(name: "kerberos", backend)] }
}

struct KerberosConfigError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// What authproxyd asks. Also a `CredentialBackend`, so a process that loads it directly can check
/// passwords the usual way.
final class KerberosBackend: CredentialBackend, AuthProxyBackend {
    let map: PrincipalMap
    let exchanges: GSSAPIExchanges
    let verifier: PasswordVerifier
    let logger: Logger

    init(map: PrincipalMap, exchanges: GSSAPIExchanges, verifier: PasswordVerifier, logger: Logger) {
        self.map = map
        self.exchanges = exchanges
        self.verifier = verifier
        self.logger = logger
    }

    func handle(_ request: AuthProxyRequest) -> AuthProxyReply? {
        switch request {
        case .gssStart(let service, let hostname, let token): return exchanges.start(service: service, hostname: hostname, token: token)
        case .gssStep(let id, let token): return exchanges.step(exchange: id, token: token)
        case .password(let user, let password): return checkPassword(user: user, password: password)
        case .ping, .metrics: return nil
        }
    }

    func checkPassword(user: String, password: String) -> AuthProxyReply {
        guard let principal = map.principal(forUser: user) else { return .refused(.unknownUser, reason: "no realm maps to the domain of \(user)") }
        guard !password.isEmpty, !password.utf8.contains(0) else { return .refused(.authenticationFailed, reason: "empty password") }
        switch verifier.check(principal: principal, password: password) {
        case .verified: return .passwordVerified(principal: principal, user: map.account(forPrincipal: principal) ?? user)
        case .unknownPrincipal: return .refused(.unknownUser, reason: "no principal \(principal)")
        case .wrongPassword: return .refused(.authenticationFailed, reason: "wrong password for \(principal)")
        case .unavailable(let why):
            logger.error("kerberos password check unavailable: \(why)")
            return .refused(.temporary, reason: why)
        }
    }

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer {
        switch checkPassword(user: user, password: password) {
        case .passwordVerified(_, let account): return .verified(user: account)
        case .refused(.unknownUser, _): return .unknownUser
        case .refused(.temporary, let why): return .unavailable(reason: why)
        default: return .wrongPassword
        }
    }

    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer { .unknownUser }
    func lookupUser(_ user: String) async throws -> UserRecord? { nil }
}
