import Foundation
import PluginAPI

// SASL GSSAPI (RFC 4752) on the worker's side. The worker never sees a key: every client token
// goes to authproxyd, which runs gss_accept_sec_context with the keytab and builds and checks the
// security-layer messages; the worker relays tokens and, at the end, checks that the account the
// principal maps to exists here. The relaying is a step machine over replies (`GSSAPIRelay`,
// tested without sockets); `ForwardedGSSAPIExchange` drives it with the real client and account lookup.

/// What the relay wants next.
enum GSSAPIRelayAction: Equatable {
    /// Send this to authproxyd and feed the reply to `reply(_:)`.
    case ask(AuthProxyRequest)
    /// Check that `user` is an account here, then call `accountChecked`.
    case checkAccount(user: String, principal: String, authzid: String?)
    /// Answer the SASL layer.
    case step(SASLStep)
}

/// Whether the account a principal maps to may log in.
enum AccountCheck: Equatable {
    case exists(String)
    case disabled
    case absent
    case unavailable(String)
}

struct GSSAPIRelay {
    enum State: Equatable {
        case initial
        /// Sent an empty challenge: the first token comes as a response (no SASL-IR).
        case awaitingFirstToken
        /// Waiting for authproxyd's answer to a request.
        case asking
        /// Relayed a challenge of exchange `id`: the client's token comes next.
        case awaitingToken(exchange: String)
        case checkingAccount(authzid: String?)
        case finished
    }

    /// The maximum token the relay forwards: the wire's frame limit less room for the header.
    static let maximumToken = AuthProxyWire.maximumFrameLength - 1024

    let service: String
    let hostname: String
    private(set) var state = State.initial

    init(service: String, hostname: String) {
        self.service = service
        self.hostname = hostname
    }

    mutating func start(initialResponse: [UInt8]?) -> GSSAPIRelayAction {
        guard state == .initial else { return fail(.malformed("exchange already started")) }
        guard let token = initialResponse, !token.isEmpty else {
            state = .awaitingFirstToken
            return .step(.challenge([]))
        }
        return first(token)
    }

    mutating func respond(_ token: [UInt8]) -> GSSAPIRelayAction {
        switch state {
        case .awaitingFirstToken:
            guard !token.isEmpty else { return fail(.malformed("empty GSSAPI token")) }
            return first(token)
        case .awaitingToken(let id):
            guard token.count <= Self.maximumToken else { return fail(.malformed("GSSAPI token too long")) }
            state = .asking
            return .ask(.gssStep(exchange: id, token: token))
        default:
            return fail(.malformed("unexpected response"))
        }
    }

    /// authproxyd's reply to the last `.ask`, or nil with the reason it could not be had.
    mutating func reply(_ reply: Result<AuthProxyReply, AuthProxyClientError>) -> GSSAPIRelayAction {
        guard state == .asking else { return fail(.temporary("authproxyd reply without a request")) }
        switch reply {
        case .failure(let error):
            return fail(.temporary(error.description))
        case .success(.gssContinue(let id, let token)):
            state = .awaitingToken(exchange: id)
            return .step(.challenge(token))
        case .success(.gssComplete(let principal, let user, let authzid)):
            state = .checkingAccount(authzid: authzid)
            return .checkAccount(user: user, principal: principal, authzid: authzid)
        case .success(.refused(let why, let reason)):
            switch why {
            case .authenticationFailed, .unknownUser: return fail(.authenticationFailed)
            case .malformed: return fail(.malformed(reason))
            case .temporary, .unsupported: return fail(.temporary("authproxyd: \(reason)"))
            }
        case .success(let other):
            return fail(.temporary("authproxyd answered a GSSAPI step with \(other.type)"))
        }
    }

    mutating func accountChecked(_ check: AccountCheck) -> SASLStep {
        guard case .checkingAccount(let authzid) = state else { return fail(.temporary("account check without a pending exchange")).sasl }
        state = .finished
        switch check {
        case .exists(let user):
            let actAs = authzid.flatMap { $0 == user ? nil : $0 }
            return .success(SASLIdentity(user: user, authorizationIdentity: actAs), serverFinal: nil)
        case .disabled: return .failure(.accountDisabled)
        case .absent: return .failure(.authenticationFailed)
        case .unavailable(let why): return .failure(.temporary(why))
        }
    }

    private mutating func first(_ token: [UInt8]) -> GSSAPIRelayAction {
        guard token.count <= Self.maximumToken else { return fail(.malformed("GSSAPI token too long")) }
        state = .asking
        return .ask(.gssStart(service: service, hostname: hostname, token: token))
    }

    private mutating func fail(_ failure: SASLFailure) -> GSSAPIRelayAction {
        state = .finished
        return .step(.failure(failure))
    }
}

extension GSSAPIRelayAction {
    var sasl: SASLStep {
        if case .step(let s) = self { return s }
        return .failure(.temporary("relay did not settle"))
    }
}

struct GSSAPIMechanism: SASLMechanism {
    let client: AuthProxyClient
    let accounts: @Sendable (String) async -> AccountCheck

    var name: String { "GSSAPI" }
    var isPlaintext: Bool { false }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange {
        ForwardedGSSAPIExchange(relay: GSSAPIRelay(service: context.service, hostname: context.serverHostname), client: client, accounts: accounts)
    }
}

/// One GSSAPI login: the relay driven with authproxyd and the account lookup.
final class ForwardedGSSAPIExchange: AsyncSASLServerExchange {
    private var relay: GSSAPIRelay
    private let client: AuthProxyClient
    private let accounts: @Sendable (String) async -> AccountCheck

    init(relay: GSSAPIRelay, client: AuthProxyClient, accounts: @escaping @Sendable (String) async -> AccountCheck) {
        self.relay = relay
        self.client = client
        self.accounts = accounts
    }

    func startAsync(initialResponse: [UInt8]?) async -> SASLStep { await run(relay.start(initialResponse: initialResponse)) }
    func respondAsync(_ response: [UInt8]) async -> SASLStep { await run(relay.respond(response)) }

    private func run(_ first: GSSAPIRelayAction) async -> SASLStep {
        var action = first
        while true {
            switch action {
            case .step(let step): return step
            case .ask(let request): action = relay.reply(await client.send(request))
            case .checkAccount(let user, _, _): return relay.accountChecked(await accounts(user))
            }
        }
    }

    // The synchronous entry points: the auth service always uses the remote ones above.
    func start(initialResponse: [UInt8]?) -> SASLStep { .failure(.temporary("GSSAPI needs authproxyd")) }
    func respond(_ response: [UInt8]) -> SASLStep { .failure(.temporary("GSSAPI needs authproxyd")) }
    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep { .failure(.temporary("GSSAPI asks no credential backend")) }
}
