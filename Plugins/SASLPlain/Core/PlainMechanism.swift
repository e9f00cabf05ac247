import PluginAPI

// The PLAIN state machine (RFC 4616), free of NIO so that the tests (Tests/SASLTests, through
// `@testable import PosternSASLPlainCore`) drive it byte by byte. Base64 and the client's `*` cancellation are the protocol's job: the
// mechanism only ever sees decoded responses.

/// SASL PLAIN: one message `[authzid] NUL authcid NUL passwd`, checked by the credential backends.
struct PlainMechanism: SASLMechanism {
    /// RFC 4616 §2: servers must accept up to 255 octets per field; Postern accepts no more.
    static let maximumFieldLength = 255

    var name: String { "PLAIN" }
    var isPlaintext: Bool { true }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange { PlainExchange() }
}

/// The three fields of a PLAIN message, validated.
struct PlainMessage: Equatable {
    /// The identity to act as; nil when the client left it empty (act as `authcid`).
    var authzid: String?
    var authcid: String
    var password: String

    /// Parses the message strictly: exactly two NULs, non-empty authcid and password, every
    /// field valid UTF-8 and at most 255 bytes. Error texts never contain the password.
    static func parse(_ message: [UInt8]) -> Result<PlainMessage, SASLFailure> {
        let fields = message.split(separator: 0, maxSplits: 2, omittingEmptySubsequences: false)
        guard fields.count == 3 else {
            return .failure(.malformed("expected authzid NUL authcid NUL password"))
        }
        if fields[2].contains(0) {
            return .failure(.malformed("more than two NUL separators"))
        }
        let names = ["authzid", "authcid", "password"]
        var decoded: [String] = []
        for (field, name) in zip(fields, names) {
            if field.count > PlainMechanism.maximumFieldLength {
                return .failure(.malformed("\(name) longer than \(PlainMechanism.maximumFieldLength) bytes"))
            }
            guard let text = String(validating: field, as: UTF8.self) else { return .failure(.malformed("\(name) is not UTF-8")) }
            decoded.append(text)
        }
        if decoded[1].isEmpty { return .failure(.malformed("empty authcid")) }
        if decoded[2].isEmpty { return .failure(.malformed("empty password")) }
        return .success(PlainMessage(authzid: decoded[0].isEmpty ? nil : decoded[0],
                                     authcid: decoded[1], password: decoded[2]))
    }
}

/// One PLAIN attempt: (empty challenge) -> message -> verify -> success or failure.
final class PlainExchange: SASLServerExchange {
    private enum State {
        case initial
        case awaitingMessage
        case awaitingAnswer(authcid: String, authzid: String?)
        case finished
    }

    private var state = State.initial

    func start(initialResponse: [UInt8]?) -> SASLStep {
        guard case .initial = state else { return fail(.malformed("exchange already started")) }
        // No initial response, or an empty one ("AUTH PLAIN ="): ask with an empty challenge.
        guard let message = initialResponse, !message.isEmpty else {
            state = .awaitingMessage
            return .challenge([])
        }
        return take(message)
    }

    func respond(_ response: [UInt8]) -> SASLStep {
        guard case .awaitingMessage = state else { return fail(.malformed("unexpected response")) }
        return take(response)
    }

    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
        guard case .awaitingAnswer(let authcid, let authzid) = state else {
            return fail(.temporary("credential answer without a pending check"))
        }
        state = .finished
        return .afterPasswordCheck(answer, authcid: authcid, authzid: authzid)
    }

    private func take(_ message: [UInt8]) -> SASLStep {
        switch PlainMessage.parse(message) {
        case .failure(let failure):
            return fail(failure)
        case .success(let m):
            state = .awaitingAnswer(authcid: m.authcid, authzid: m.authzid)
            return .verify(.password(user: m.authcid, password: m.password))
        }
    }

    private func fail(_ failure: SASLFailure) -> SASLStep {
        state = .finished
        return .failure(failure)
    }
}


