import PluginAPI

// ANONYMOUS (RFC 4505): the client proves nothing and sends an optional trace string (an email
// address or a token, at most 255 characters); the site lets it in as one configured guest
// account. Pure step machine: the trace goes to the `trace` closure (the plugin logs it), the
// guest account's existence to the credential backends.

struct AnonymousMechanism: SASLMechanism {
    /// RFC 4505 §2: `1*255TCHAR` or an addr-spec of at most 255 characters.
    static let maximumTraceCharacters = 255

    /// The account an anonymous login becomes (read-only for IMAP and POP3; refused by SMTP).
    let account: String
    /// Receives each accepted trace string (`""` when the client sent none).
    let trace: @Sendable (String) -> Void

    var name: String { "ANONYMOUS" }
    var isPlaintext: Bool { false }
    var isAnonymous: Bool { true }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange {
        AnonymousExchange(account: account, trace: trace)
    }

    /// The trace string, checked: UTF-8, no control characters, at most 255 characters.
    static func parseTrace(_ bytes: [UInt8]) -> Result<String, SASLFailure> {
        guard let text = String(validating: bytes, as: UTF8.self) else { return .failure(.malformed("trace is not UTF-8")) }
        guard text.unicodeScalars.count <= maximumTraceCharacters else {
            return .failure(.malformed("trace longer than \(maximumTraceCharacters) characters"))
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) else {
            return .failure(.malformed("trace holds a control character"))
        }
        return .success(text)
    }
}

/// (empty challenge) -> trace -> does the guest account exist and may it log in -> success.
final class AnonymousExchange: SASLServerExchange {
    private enum State { case initial, awaitingTrace, awaitingAccount, finished }

    let account: String
    let trace: @Sendable (String) -> Void
    private var state = State.initial

    init(account: String, trace: @escaping @Sendable (String) -> Void) {
        self.account = account
        self.trace = trace
    }

    func start(initialResponse: [UInt8]?) -> SASLStep {
        guard state == .initial else { return fail(.malformed("exchange already started")) }
        // RFC 4505 §3: an empty initial response is a valid (empty) trace, but a client sending
        // none at all is asked with an empty challenge.
        guard let message = initialResponse else {
            state = .awaitingTrace
            return .challenge([])
        }
        return take(message)
    }

    func respond(_ response: [UInt8]) -> SASLStep {
        guard state == .awaitingTrace else { return fail(.malformed("unexpected response")) }
        return take(response)
    }

    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
        guard state == .awaitingAccount else { return fail(.temporary("credential answer without a pending check")) }
        state = .finished
        switch answer {
        case .verified(let user):
            return .success(SASLIdentity(user: user, isAnonymous: true), serverFinal: nil)
        case .suspended:
            return .failure(.accountDisabled)
        case .unknownUser, .wrongPassword:
            // The site named a guest account that is not there: a configuration fault, but the
            // client only learns that anonymous access failed.
            return .failure(.authenticationFailed)
        case .unavailable(let reason):
            return .failure(.temporary(reason))
        case .secret:
            return .failure(.temporary("credential backend answered an account check with a stored secret"))
        }
    }

    private func take(_ message: [UInt8]) -> SASLStep {
        switch AnonymousMechanism.parseTrace(message) {
        case .failure(let failure):
            return fail(failure)
        case .success(let text):
            trace(text)
            state = .awaitingAccount
            return .verify(.account(user: account))
        }
    }

    private func fail(_ failure: SASLFailure) -> SASLStep {
        state = .finished
        return .failure(failure)
    }
}
