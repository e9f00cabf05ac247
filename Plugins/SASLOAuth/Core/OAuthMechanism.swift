import Foundation
import PluginAPI

// OAUTHBEARER (RFC 7628) and XOAUTH2: one step machine, two message formats. The token is
// checked by the credential backends (`.verify(.bearerToken)`, answered by this plugin's
// `OAuthTokenBackend`), and the account it names by the account backends (`.verify(.account)`):
// a valid token for an account that does not exist or is disabled logs nobody in.

/// The two wire formats, and what each sends after a failed token.
enum OAuthFormat: Sendable {
    case oauthBearer
    case xoauth2

    var mechanismName: String {
        switch self {
        case .oauthBearer: return "OAUTHBEARER"
        case .xoauth2: return "XOAUTH2"
        }
    }
}

/// What the error challenge tells the client (RFC 7628 §3.2.2): the scope to ask for and where
/// to discover the authorization server.
struct OAuthErrorDetails: Sendable, Equatable {
    var scope: String?
    var openIDConfiguration: String?

    /// The JSON of the error challenge, keys in the RFC's order.
    func json(for format: OAuthFormat) -> [UInt8] {
        var fields: [(String, String)]
        switch format {
        case .oauthBearer:
            fields = [("status", "invalid_token")]
            if let scope { fields.append(("scope", scope)) }
            if let openIDConfiguration { fields.append(("openid-configuration", openIDConfiguration)) }
        case .xoauth2:
            // Google's shape: the HTTP status as a string and the scheme.
            fields = [("status", "401"), ("schemes", "bearer")]
            if let scope { fields.append(("scope", scope)) }
        }
        let body = fields.map { "\"\(Self.escape($0.0))\":\"\(Self.escape($0.1))\"" }.joined(separator: ",")
        return Array("{\(body)}".utf8)
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where u.value < 0x20: out += String(format: "\\u%04x", u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out
    }
}

struct OAuthMechanism: SASLMechanism {
    let format: OAuthFormat
    let errorDetails: OAuthErrorDetails

    var name: String { format.mechanismName }
    /// A bearer token is as good as a password to whoever reads it: offered only under TLS (or on
    /// loopback when the listener allows plaintext), as RFC 7628 §5 requires.
    var isPlaintext: Bool { true }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange {
        OAuthExchange(format: format, errorDetails: errorDetails)
    }
}

/// One attempt: message -> verify token -> verify account -> success; or, for a refused token,
/// the error challenge, the client's acknowledgement, then failure.
final class OAuthExchange: SASLServerExchange {
    private enum State {
        case initial
        case awaitingMessage
        case awaitingToken(claimedUser: String?)
        case awaitingAccount(tokenUser: String)
        /// The error challenge went out; the client must answer %x01 (OAUTHBEARER) or an empty
        /// response (XOAUTH2) and then gets `failure`.
        case awaitingErrorAcknowledgement(SASLFailure)
        case finished
    }

    let format: OAuthFormat
    let errorDetails: OAuthErrorDetails
    private var state = State.initial

    init(format: OAuthFormat, errorDetails: OAuthErrorDetails) {
        self.format = format
        self.errorDetails = errorDetails
    }

    func start(initialResponse: [UInt8]?) -> SASLStep {
        guard case .initial = state else { return fail(.malformed("exchange already started")) }
        guard let message = initialResponse, !message.isEmpty else {
            state = .awaitingMessage
            return .challenge([])
        }
        return take(message)
    }

    func respond(_ response: [UInt8]) -> SASLStep {
        switch state {
        case .awaitingMessage:
            return take(response)
        case .awaitingErrorAcknowledgement(let failure):
            let expected: [UInt8] = format == .oauthBearer ? [OAuthMessage.kvsep] : []
            return fail(response == expected ? failure : .malformed("expected the client's acknowledgement of the error"))
        default:
            return fail(.malformed("unexpected response"))
        }
    }

    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
        switch state {
        case .awaitingToken(let claimed):
            switch answer {
            case .verified(let user):
                // The authzid (OAUTHBEARER a=, XOAUTH2 user=) must name the token's own account.
                if let claimed, claimed.lowercased() != user.lowercased() {
                    return refuse(format == .oauthBearer ? .authorizationFailed : .authenticationFailed)
                }
                state = .awaitingAccount(tokenUser: user)
                return .verify(.account(user: user))
            case .wrongPassword, .unknownUser:
                return refuse(.authenticationFailed)
            case .suspended:
                return refuse(.accountDisabled)
            case .unavailable(let reason):
                return fail(.temporary(reason))
            case .secret:
                return fail(.temporary("credential backend answered a token check with a stored secret"))
            }
        case .awaitingAccount:
            switch answer {
            case .verified(let canonical):
                state = .finished
                return .success(SASLIdentity(user: canonical), serverFinal: nil)
            case .suspended:
                return refuse(.accountDisabled)
            case .unknownUser, .wrongPassword:
                return refuse(.authenticationFailed)
            case .unavailable(let reason):
                return fail(.temporary(reason))
            case .secret:
                return fail(.temporary("credential backend answered an account check with a stored secret"))
            }
        default:
            return fail(.temporary("credential answer without a pending check"))
        }
    }

    private func take(_ message: [UInt8]) -> SASLStep {
        let parsed = format == .oauthBearer ? OAuthMessage.parseOAuthBearer(message) : OAuthMessage.parseXOAuth2(message)
        switch parsed {
        case .failure(let failure):
            return fail(failure)
        case .success(let m):
            state = .awaitingToken(claimedUser: m.user)
            return .verify(.bearerToken(token: m.token, claimedUser: m.user))
        }
    }

    /// RFC 7628 §3.2.2: a refused token gets the JSON error as a challenge, and the exchange
    /// fails only after the client's dummy response.
    private func refuse(_ failure: SASLFailure) -> SASLStep {
        state = .awaitingErrorAcknowledgement(failure)
        return .challenge(errorDetails.json(for: format))
    }

    private func fail(_ failure: SASLFailure) -> SASLStep {
        state = .finished
        return .failure(failure)
    }
}
