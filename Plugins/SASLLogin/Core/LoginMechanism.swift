import PluginAPI

// The LOGIN state machine (draft-murchison-sasl-login, never an RFC but what many clients still
// send), free of NIO so that the tests (Tests/SASLTests, through `@testable import
// PosternSASLLoginCore`) drive it byte by byte. Base64 and
// the client's `*` cancellation are the protocol's job.

/// SASL LOGIN: challenges "Username:" then "Password:", checked by the credential backends.
struct LoginMechanism: SASLMechanism {
    /// The same bound as PLAIN's fields (RFC 4616), for usernames and passwords alike.
    static let maximumFieldLength = 255
    static let usernameChallenge = Array("Username:".utf8)
    static let passwordChallenge = Array("Password:".utf8)

    var name: String { "LOGIN" }
    var isPlaintext: Bool { true }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange { LoginExchange() }

    /// A username or password as the client sent it: non-empty, no NUL, at most 255 bytes of
    /// strict UTF-8. Error texts never contain the value.
    static func field(_ bytes: [UInt8], _ name: String) -> Result<String, SASLFailure> {
        if bytes.isEmpty { return .failure(.malformed("empty \(name)")) }
        if bytes.count > maximumFieldLength { return .failure(.malformed("\(name) longer than \(maximumFieldLength) bytes")) }
        if bytes.contains(0) { return .failure(.malformed("NUL in \(name)")) }
        guard let text = String(validating: bytes, as: UTF8.self) else { return .failure(.malformed("\(name) is not UTF-8")) }
        return .success(text)
    }
}

/// One LOGIN attempt: "Username:" -> name -> "Password:" -> password -> verify -> result. The
/// initial response, when present and not empty, is the username.
final class LoginExchange: SASLServerExchange {
    private enum State {
        case initial
        case awaitingUsername
        case awaitingPassword(user: String)
        case awaitingAnswer(user: String)
        case finished
    }

    private var state = State.initial

    func start(initialResponse: [UInt8]?) -> SASLStep {
        guard case .initial = state else { return fail(.malformed("exchange already started")) }
        guard let username = initialResponse, !username.isEmpty else {
            state = .awaitingUsername
            return .challenge(LoginMechanism.usernameChallenge)
        }
        return takeUsername(username)
    }

    func respond(_ response: [UInt8]) -> SASLStep {
        switch state {
        case .awaitingUsername:
            return takeUsername(response)
        case .awaitingPassword(let user):
            switch LoginMechanism.field(response, "password") {
            case .failure(let failure): return fail(failure)
            case .success(let password):
                state = .awaitingAnswer(user: user)
                return .verify(.password(user: user, password: password))
            }
        case .initial, .awaitingAnswer, .finished:
            return fail(.malformed("unexpected response"))
        }
    }

    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
        guard case .awaitingAnswer(let user) = state else { return fail(.temporary("credential answer without a pending check")) }
        state = .finished
        return .afterPasswordCheck(answer, authcid: user)
    }

    private func takeUsername(_ bytes: [UInt8]) -> SASLStep {
        switch LoginMechanism.field(bytes, "username") {
        case .failure(let failure): return fail(failure)
        case .success(let user):
            state = .awaitingPassword(user: user)
            return .challenge(LoginMechanism.passwordChallenge)
        }
    }

    private func fail(_ failure: SASLFailure) -> SASLStep {
        state = .finished
        return .failure(failure)
    }
}


