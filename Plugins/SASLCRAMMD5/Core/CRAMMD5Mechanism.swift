import Foundation
import PluginAPI

// CRAM-MD5 (RFC 2195) as a pure step machine. The server sends a unique challenge; the client
// answers `user SP hex(HMAC-MD5(password, challenge))`. The server checks it with the account's
// HMAC-MD5 contexts (HMACMD5Context), a stored secret written only while this plugin is loaded.

struct CRAMMD5Mechanism: SASLMechanism {
    /// The `StoredSecret.scheme` of the HMAC-MD5 contexts; fields `inner` and `outer`.
    static let scheme = "CRAM-MD5"
    /// Where challenges come from: a unique msg-id-like string by default, fixed in tests.
    let challenge: @Sendable (_ hostname: String) -> String

    init(challenge: @escaping @Sendable (String) -> String = { CRAMMD5Mechanism.uniqueChallenge($0) }) {
        self.challenge = challenge
    }

    var name: String { "CRAM-MD5" }
    var isPlaintext: Bool { false }

    var storedSecretDerivation: StoredSecretDerivation? {
        StoredSecretDerivation(scheme: Self.scheme, derive: { input in
            guard let password = SCRAMSecret.prepare(password: input.password), !password.isEmpty else {
                throw SCRAMSecret.SecretError.prohibitedCharacter
            }
            let context = HMACMD5Context(password: password)
            return StoredSecret(scheme: Self.scheme, fields: ["inner": context.inner, "outer": context.outer])
        })
    }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange {
        CRAMMD5Exchange(challenge: Array(challenge(context.serverHostname).utf8))
    }

    /// `<random.timestamp@hostname>` (RFC 2195 §2): never repeats, so a recorded answer is useless.
    static func uniqueChallenge(_ hostname: String) -> String {
        var generator = SystemRandomNumberGenerator()
        let random = UInt64.random(in: .min ... .max, using: &generator)
        let host = hostname.isEmpty || hostname.contains(where: { $0 == ">" || $0 == " " }) ? "localhost" : hostname
        return "<\(random).\(Int(Date().timeIntervalSince1970))@\(host)>"
    }
}

/// One CRAM-MD5 attempt: challenge → `user digest` → fetch contexts → compare.
final class CRAMMD5Exchange: SASLServerExchange {
    private enum State {
        case initial
        case awaitingResponse
        case awaitingSecret(user: String, digest: [UInt8])
        case finished
    }

    static let maximumResponseLength = 512
    private let challenge: [UInt8]
    private var state = State.initial

    init(challenge: [UInt8]) { self.challenge = challenge }

    func start(initialResponse: [UInt8]?) -> SASLStep {
        guard case .initial = state else { return fail(.malformed("exchange already started")) }
        // The server speaks first: the client has nothing to answer yet.
        if let initial = initialResponse, !initial.isEmpty { return fail(.malformed("CRAM-MD5 takes no initial response")) }
        state = .awaitingResponse
        return .challenge(challenge)
    }

    func respond(_ response: [UInt8]) -> SASLStep {
        guard case .awaitingResponse = state else { return fail(.malformed("unexpected response")) }
        switch Self.parse(response) {
        case .failure(let failure): return fail(failure)
        case .success(let (user, digest)):
            state = .awaitingSecret(user: user, digest: digest)
            return .verify(.storedSecret(user: user, scheme: CRAMMD5Mechanism.scheme))
        }
    }

    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
        guard case .awaitingSecret(_, let digest) = state else { return fail(.temporary("credential answer without a pending query")) }
        switch answer {
        case .secret(let account, let stored):
            guard stored.scheme == CRAMMD5Mechanism.scheme, let inner = stored.fields["inner"], let outer = stored.fields["outer"],
                  let context = HMACMD5Context(inner: inner, outer: outer) else {
                return fail(.temporary("credential backend answered with a malformed CRAM-MD5 secret"))
            }
            guard SCRAMSecret.constantTimeEqual(context.authenticationCode(challenge), digest) else {
                return fail(.authenticationFailed)
            }
            state = .finished
            return .success(SASLIdentity(user: account), serverFinal: nil)
        case .unknownUser, .wrongPassword: return fail(.authenticationFailed)
        case .suspended: return fail(.accountDisabled)
        case .unavailable(let reason): return fail(.temporary(reason))
        case .verified: return fail(.temporary("credential backend answered a secret query with a password check"))
        }
    }

    /// `user SP digest`: the digest is the 32 lower-case hex digits after the last space; the
    /// user is the UTF-8 text before it (it may hold spaces).
    static func parse(_ response: [UInt8]) -> Result<(String, [UInt8]), SASLFailure> {
        guard response.count <= maximumResponseLength else { return .failure(.malformed("response too long")) }
        guard let space = response.lastIndex(of: UInt8(ascii: " ")) else { return .failure(.malformed("expected user SP digest")) }
        let userBytes = response[..<space]
        let hex = response[(space + 1)...]
        guard !userBytes.isEmpty, !userBytes.contains(0), let user = String(validating: userBytes, as: UTF8.self) else {
            return .failure(.malformed("user is empty or not UTF-8"))
        }
        guard hex.count == 32, let digest = lowerHex(hex) else { return .failure(.malformed("digest is not 32 lower-case hex digits")) }
        return .success((user, digest))
    }

    private static func lowerHex(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        var i = text.startIndex
        while i < text.endIndex {
            guard let high = nibble(text[i]), let low = nibble(text[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }

    private func fail(_ failure: SASLFailure) -> SASLStep {
        state = .finished
        return .failure(failure)
    }
}
