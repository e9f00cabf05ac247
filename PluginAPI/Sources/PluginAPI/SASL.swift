/// Server SASL (RFC 4422). A mechanism is a pure step machine: it never does I/O itself. When it
/// needs a credential it returns `.verify(query)`; the auth service asks the credential backends and
/// feeds the answer back with `credentialAnswer(_:)`. That keeps mechanisms testable byte by byte
/// and lets one privileged process (authproxyd) answer for them.
public protocol SASLMechanism: Sendable {
    /// The IANA mechanism name, upper case (`PLAIN`, `SCRAM-SHA-256`).
    var name: String { get }
    /// Whether the client sends the password in the clear (PLAIN, LOGIN). Such mechanisms are
    /// offered only on a secure connection, or on loopback when the listener allows it.
    var isPlaintext: Bool { get }
    /// Whether a success proves no identity (ANONYMOUS, RFC 4505): SMTP submission neither offers
    /// nor accepts such a mechanism. Defaults to false.
    var isAnonymous: Bool { get }
    /// A new exchange for one authentication attempt.
    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange
    /// Whether the mechanism binds to the TLS channel (SCRAM-*-PLUS): offered only when the
    /// connection has channel-binding data. Default false.
    var requiresChannelBinding: Bool { get }
    /// The stored secret this mechanism needs besides the SCRAM-SHA-256 keys every account has
    /// (CRAM-MD5's HMAC contexts, DIGEST-MD5's H(user:realm:password), SCRAM-SHA-1 keys), and how
    /// to derive it from a password. A store writes it only while such a mechanism is loaded
    /// (when a password is set, and at a plaintext login of a user who lacks it). Default nil.
    var storedSecretDerivation: StoredSecretDerivation? { get }
}

extension SASLMechanism {
    public var requiresChannelBinding: Bool { false }
    public var storedSecretDerivation: StoredSecretDerivation? { nil }
}

/// How a mechanism's stored secret is made from a password (see
/// `SASLMechanism.storedSecretDerivation`). Such secrets are password-equivalent for that
/// mechanism: whoever reads them can log in with it.
public struct StoredSecretDerivation: Sendable {
    /// What `derive` is given: the canonical account name, the password, and the store's PBKDF2
    /// iteration count (for SCRAM keys).
    public struct Input: Sendable {
        public var user: String
        public var password: String
        public var iterations: Int

        public init(user: String, password: String, iterations: Int) {
            self.user = user
            self.password = password
            self.iterations = iterations
        }
    }

    /// The `StoredSecret.scheme` written and asked for with `CredentialQuery.storedSecret`.
    public var scheme: String
    /// Makes the secret; throws for a password the scheme cannot take.
    public var derive: @Sendable (Input) throws -> StoredSecret
    /// Whether a secret already kept is still the one this mechanism would derive (DIGEST-MD5's
    /// realm may have changed in the config); a store replaces a stale one at the next login.
    public var isCurrent: @Sendable (StoredSecret) -> Bool

    public init(scheme: String, derive: @escaping @Sendable (Input) throws -> StoredSecret,
                isCurrent: @escaping @Sendable (StoredSecret) -> Bool = { _ in true }) {
        self.scheme = scheme
        self.derive = derive
        self.isCurrent = isCurrent
    }
}

extension SASLMechanism {
    public var isAnonymous: Bool { false }
}

/// What a mechanism may know about the connection.
public struct SASLExchangeContext: Sendable {
    /// The GSSAPI/DIGEST service name: `smtp`, `imap`, `pop`.
    public var service: String
    public var serverHostname: String
    public var isSecure: Bool
    /// `tls-exporter` or `tls-unique` data for SCRAM-*-PLUS, when TLS is active.
    public var channelBinding: (type: String, data: [UInt8])?
    /// Every channel binding the connection has, by type (`tls-server-end-point`, RFC 5929):
    /// filled by the protocols when the connection is under TLS, empty otherwise. SCRAM-*-PLUS
    /// is offered only when this is not empty.
    public var channelBindings: [String: [UInt8]]
    /// The TLS client certificate (DER) that the listener verified against its `client_ca_file`,
    /// for EXTERNAL; nil without TLS or when the client presented none.
    public var clientCertificate: [UInt8]?

    public init(service: String, serverHostname: String, isSecure: Bool, channelBinding: (type: String, data: [UInt8])? = nil,
                channelBindings: [String: [UInt8]] = [:], clientCertificate: [UInt8]? = nil) {
        self.service = service
        self.serverHostname = serverHostname
        self.isSecure = isSecure
        self.channelBinding = channelBinding
        var all = channelBindings
        if let channelBinding, all[channelBinding.type] == nil { all[channelBinding.type] = channelBinding.data }
        self.channelBindings = all
        self.clientCertificate = clientCertificate
    }
}

/// One running exchange. Not thread-safe: a session drives it step by step.
public protocol SASLServerExchange: AnyObject {
    /// First step, with the client's initial response if it sent one (SASL-IR, AUTH PLAIN xxx).
    func start(initialResponse: [UInt8]?) -> SASLStep
    /// The client's answer to the last challenge (already base64-decoded).
    func respond(_ response: [UInt8]) -> SASLStep
    /// The credential backends' answer to the last `.verify` step.
    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep
}

/// What a mechanism wants next.
public enum SASLStep: Sendable, Equatable {
    /// Send this challenge (raw bytes; the protocol base64-encodes it).
    case challenge([UInt8])
    /// Ask the credential backends, then call `credentialAnswer`.
    case verify(CredentialQuery)
    /// Authenticated. `serverFinal` is additional data for the last server message (SCRAM).
    case success(SASLIdentity, serverFinal: [UInt8]?)
    case failure(SASLFailure)
}

extension SASLStep {
    /// The last step of a mechanism that checks a password the client sent (PLAIN, LOGIN). A wrong
    /// password and an unknown user give the same failure, so a client cannot probe for accounts.
    /// An `authzid` other than the authenticated name travels in the identity; the protocol decides
    /// whether the user may act as it.
    public static func afterPasswordCheck(_ answer: CredentialAnswer, authcid: String, authzid: String? = nil) -> SASLStep {
        switch answer {
        case .verified(let user):
            let actAs = authzid.flatMap { $0 == user || $0 == authcid ? nil : $0 }
            return .success(SASLIdentity(user: user, authorizationIdentity: actAs), serverFinal: nil)
        case .wrongPassword, .unknownUser:
            return .failure(.authenticationFailed)
        case .suspended:
            return .failure(.accountDisabled)
        case .unavailable(let reason):
            return .failure(.temporary(reason))
        case .secret:
            // A backend bug, not the client's fault: never a success.
            return .failure(.temporary("credential backend answered a password check with a stored secret"))
        }
    }
}

/// A question for the credential backends.
public enum CredentialQuery: Sendable, Equatable {
    /// Check a password the client sent (PLAIN, LOGIN).
    case password(user: String, password: String)
    /// Fetch the stored secret of a scheme (`SCRAM-SHA-256` keys, ...), for mechanisms that never
    /// see the password.
    case storedSecret(user: String, scheme: String)
    /// Check an OAuth 2.0 bearer token (OAUTHBEARER, XOAUTH2): a backend that can verify tokens
    /// answers `.verified(user:)` with the account the token names, `.wrongPassword` for a bad
    /// token. `claimedUser` is what the client said it is (authzid, `user=`), for logs only.
    case bearerToken(token: String, claimedUser: String?)
    /// Whether an account exists and may log in, for mechanisms that have already established who
    /// the client is (a verified token, a client certificate, ANONYMOUS's configured account):
    /// `.verified(user:)` with the canonical name, `.suspended` or `.unknownUser`.
    case account(user: String)

    /// The user the question is about.
    public var user: String {
        switch self {
        case .password(let user, _), .storedSecret(let user, _), .account(let user): return user
        case .bearerToken(_, let claimed): return claimed ?? "(bearer token)"
        }
    }
}

/// An answer from the credential backends.
public enum CredentialAnswer: Sendable, Equatable {
    /// The password is right; `user` is the canonical account name.
    case verified(user: String)
    /// The stored secret asked for.
    case secret(user: String, StoredSecret)
    case unknownUser
    case wrongPassword
    case suspended(user: String)
    /// The backend could not answer now (server down): a temporary failure for the client.
    case unavailable(reason: String)
}

/// A secret kept by a credential backend, in a scheme's own fields (e.g. SCRAM: `salt`,
/// `iterations`, `stored-key`, `server-key`).
public struct StoredSecret: Sendable, Equatable {
    public var scheme: String
    public var fields: [String: [UInt8]]

    public init(scheme: String, fields: [String: [UInt8]]) {
        self.scheme = scheme
        self.fields = fields
    }
}

/// Who authenticated, and as whom they act.
public struct SASLIdentity: Sendable, Equatable {
    /// The canonical account that proved its secret.
    public var user: String
    /// The identity requested (authzid), when different from `user`.
    public var authorizationIdentity: String?
    /// An ANONYMOUS login (RFC 4505) onto `user`, the site's configured guest account: nothing
    /// was proved, so the session must not change anything (IMAP opens it read-only).
    public var isAnonymous: Bool

    public init(user: String, authorizationIdentity: String? = nil, isAnonymous: Bool = false) {
        self.user = user
        self.authorizationIdentity = authorizationIdentity
        self.isAnonymous = isAnonymous
    }
}

/// Why an exchange failed. Protocols map these to their replies (SMTP 535 5.7.8, 454 4.7.0, ...).
public enum SASLFailure: Error, Sendable, Equatable {
    /// The client sent something the mechanism cannot parse.
    case malformed(String)
    /// Wrong user or secret (deliberately not saying which).
    case authenticationFailed
    /// The account exists but may not log in.
    case accountDisabled
    /// The client asked to act as someone it may not.
    case authorizationFailed
    /// The client cancelled with `*`.
    case cancelled
    /// A backend could not answer now.
    case temporary(String)
    /// The mechanism is unknown or not offered on this connection.
    case mechanismUnavailable
    /// The mechanism needs TLS here.
    case encryptionRequired
}

/// How a session runs SASL: pick offered mechanisms, then step through an exchange while the
/// service consults the credential backends. Provided by the host over every loaded SASL mechanism
/// and credential backend.
public struct AuthService: Sendable {
    public let mechanisms: [any SASLMechanism]
    public let backends: [any CredentialBackend]

    public init(mechanisms: [any SASLMechanism], backends: [any CredentialBackend]) {
        self.mechanisms = mechanisms
        self.backends = backends
    }

    /// The mechanism names to advertise: plaintext ones only when `secure`, or on loopback when
    /// `plaintextOnLoopback` allows it.
    /// Channel-binding mechanisms (SCRAM-*-PLUS) only when `channelBinding` (the connection has
    /// channel-binding data).
    public func offered(secure: Bool, loopback: Bool, plaintextOnLoopback: Bool, channelBinding: Bool = false) -> [String] {
        mechanisms.filter { !$0.isPlaintext || secure || (loopback && plaintextOnLoopback) }
            .filter { !$0.requiresChannelBinding || channelBinding }.map(\.name)
    }

    /// The stored secrets the loaded mechanisms need beyond the SCRAM-SHA-256 keys, one per scheme.
    public var storedSecretDerivations: [StoredSecretDerivation] {
        var seen = Set<String>()
        return mechanisms.compactMap(\.storedSecretDerivation).filter { seen.insert($0.scheme.uppercased()).inserted }
    }

    /// Starts an exchange for `mechanism` (case-insensitive), or nil when it is not loaded.
    public func begin(mechanism: String, context: SASLExchangeContext) -> AuthExchange? {
        guard let m = mechanisms.first(where: { $0.name.caseInsensitiveCompare(mechanism) }) else { return nil }
        return AuthExchange(exchange: m.makeExchange(context), backends: backends, service: context.service)
    }

    /// Asks each backend in turn; the first that knows the user answers. `service` is the protocol
    /// asking (`imap`, `pop`, `smtp`), for secrets limited to some protocols. A backend that cannot
    /// answer (its server down) does not block a later one that verifies the user, but a later
    /// refusal becomes a temporary failure, as in Dovecot's passdb chain: the password may be right
    /// on the backend that is down (a Kerberos user while authproxyd restarts must hear "try
    /// again", not "wrong password").
    public static func ask(_ backends: [any CredentialBackend], _ query: CredentialQuery, service: String? = nil) async -> CredentialAnswer {
        var lastTemporary: CredentialAnswer?
        for backend in backends {
            let answer: CredentialAnswer
            do {
                switch query {
                case .password(let user, let password):
                    answer = try await backend.verifyPassword(user: user, password: password, service: service)
                case .storedSecret(let user, let scheme):
                    answer = try await backend.storedSecret(user: user, scheme: scheme)
                case .bearerToken(let token, _):
                    answer = try await backend.verifyBearerToken(token)
                case .account(let user):
                    if let record = try await backend.lookupUser(user) {
                        answer = record.enabled ? .verified(user: record.name) : .suspended(user: record.name)
                    } else {
                        answer = .unknownUser
                    }
                }
            } catch {
                lastTemporary = .unavailable(reason: "\(error)")
                continue
            }
            switch answer {
            case .unknownUser: continue
            case .unavailable: lastTemporary = answer
            case .wrongPassword: return lastTemporary ?? answer
            default: return answer
            }
        }
        return lastTemporary ?? .unknownUser
    }
}

/// An exchange in progress, with the backend round trips done for the session.
// @unchecked Sendable: one caller at a time: its session awaits each start/respond before the next, then reads attemptedUser
public final class AuthExchange: @unchecked Sendable {
    /// What the session does next.
    public enum Progress: Sendable, Equatable {
        case challenge([UInt8])
        case success(SASLIdentity, serverFinal: [UInt8]?)
        case failure(SASLFailure)
    }

    private let exchange: any SASLServerExchange
    private let backends: [any CredentialBackend]
    private let service: String?
    /// The user the client tried to authenticate as, once the mechanism asked about one: for the
    /// log line of a failed login (which must name the user and the client's address).
    public private(set) var attemptedUser: String?

    init(exchange: any SASLServerExchange, backends: [any CredentialBackend], service: String? = nil) {
        self.exchange = exchange
        self.backends = backends
        self.service = service
    }

    public func start(initialResponse: [UInt8]?) async -> Progress {
        if let waiting = exchange as? any AsyncSASLServerExchange { return await settle(await waiting.startAsync(initialResponse: initialResponse)) }
        return await settle(exchange.start(initialResponse: initialResponse))
    }

    public func respond(_ response: [UInt8]) async -> Progress {
        if let waiting = exchange as? any AsyncSASLServerExchange { return await settle(await waiting.respondAsync(response)) }
        return await settle(exchange.respond(response))
    }

    private func settle(_ first: SASLStep) async -> Progress {
        var step = first
        // A mechanism may verify more than once (e.g. fetch a secret, then check a proof); bounded
        // so a faulty mechanism cannot spin.
        for _ in 0..<8 {
            switch step {
            case .challenge(let c): return .challenge(c)
            case .success(let id, let final): return .success(id, serverFinal: final)
            case .failure(let f): return .failure(f)
            case .verify(let query):
                attemptedUser = query.user
                step = exchange.credentialAnswer(await AuthService.ask(backends, query, service: service))
            }
        }
        return .failure(.temporary("mechanism did not settle"))
    }
}

extension String {
    fileprivate func caseInsensitiveCompare(_ other: String) -> Bool {
        lowercased() == other.lowercased()
    }
}

/// Verifies secrets and looks up accounts: the internal user database, LDAP, authproxyd.
public protocol CredentialBackend: Sendable {
    /// Checks a cleartext password. `.unknownUser` lets the next backend try.
    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer
    /// The same, knowing the protocol asking (`imap`, `pop`, `smtp`), for secrets limited to some
    /// protocols (app passwords). Defaults to the check without it.
    func verifyPassword(user: String, password: String, service: String?) async throws -> CredentialAnswer
    /// Returns the stored secret of `scheme` for `user`, `.unknownUser`, or `.unavailable`.
    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer
    /// The account record, or nil when this backend does not know the user.
    func lookupUser(_ user: String) async throws -> UserRecord?
    /// Verifies an OAuth 2.0 bearer token: `.verified(user:)` with the account it names,
    /// `.wrongPassword` when the token is invalid, `.unknownUser` when this backend does not
    /// verify tokens (the default).
    func verifyBearerToken(_ token: String) async throws -> CredentialAnswer
}

extension CredentialBackend {
    public func verifyBearerToken(_ token: String) async throws -> CredentialAnswer { .unknownUser }
}

extension CredentialBackend {
    public func verifyPassword(user: String, password: String, service: String?) async throws -> CredentialAnswer {
        try await verifyPassword(user: user, password: password)
    }
}

/// An account as the rest of the system sees it.
public struct UserRecord: Sendable, Equatable {
    public enum AdminLevel: String, Sendable, Codable { case user, domainAdmin = "domain-admin", siteAdmin = "site-admin" }

    /// `local@domain`, the canonical login name.
    public var name: String
    public var enabled: Bool
    public var adminLevel: AdminLevel
    /// The store node that holds the mailbox (for the access proxy), nil for this node.
    public var mailHost: String?

    public init(name: String, enabled: Bool = true, adminLevel: AdminLevel = .user, mailHost: String? = nil) {
        self.name = name
        self.enabled = enabled
        self.adminLevel = adminLevel
        self.mailHost = mailHost
    }
}
