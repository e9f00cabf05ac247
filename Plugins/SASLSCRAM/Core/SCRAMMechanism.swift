import PluginAPI

// SCRAM (RFC 5802, RFC 7677) as a pure step machine: bytes in, steps out. The server never sees
// the password: it asks the credential backends for the account's SCRAM keys
// (`CredentialQuery.storedSecret`, scheme = the hash's mechanism name) and checks the client's
// proof against StoredKey. The -PLUS variants bind the exchange to the TLS channel
// (`SASLExchangeContext.channelBindings`).

/// One SCRAM mechanism: its hash and whether it is the channel-binding (-PLUS) variant.
struct SCRAMMechanism: SASLMechanism {
    let algorithm: SCRAMSecret.Algorithm
    let plus: Bool
    /// Whether this plugin also offers the -PLUS variant of the same hash: a non-PLUS exchange
    /// must then refuse a client that says "y" (it believes the server cannot bind: a downgrade,
    /// RFC 5802 §6) whenever the connection has bindings to offer.
    let plusOffered: Bool
    /// Where server nonces come from: random by default, fixed in the tests' vectors.
    let serverNonce: @Sendable () -> String

    init(algorithm: SCRAMSecret.Algorithm, plus: Bool, plusOffered: Bool,
         serverNonce: @escaping @Sendable () -> String = { SCRAMMechanism.randomNonce() }) {
        self.algorithm = algorithm
        self.plus = plus
        self.plusOffered = plusOffered
        self.serverNonce = serverNonce
    }

    var name: String { algorithm.rawValue + (plus ? "-PLUS" : "") }
    var isPlaintext: Bool { false }
    var requiresChannelBinding: Bool { plus }

    /// SCRAM-SHA-256 keys are what every account's password is kept as; SCRAM-SHA-1 keys are an
    /// extra secret, derived from the password while a SCRAM-SHA-1 mechanism is loaded.
    var storedSecretDerivation: StoredSecretDerivation? {
        guard algorithm == .sha1 else { return nil }
        return StoredSecretDerivation(scheme: SCRAMSecret.Algorithm.sha1.rawValue, derive: { input in
            try SCRAMSecret.derive(password: input.password, algorithm: .sha1, iterations: input.iterations).storedSecret
        })
    }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange {
        SCRAMExchange(mechanism: self, context: context)
    }

    /// 24 random bytes in base64: 32 printable characters without ",".
    static func randomNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<24).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return String(decoding: Base64Encoder.encode(bytes, lineLength: 0), as: UTF8.self)
    }
}

/// One SCRAM attempt: client-first → (fetch keys) → server-first → client-final → proof check →
/// success with the server signature as `serverFinal`, or failure.
final class SCRAMExchange: SASLServerExchange {
    private enum State {
        case initial
        case awaitingClientFirst
        case awaitingSecret(SCRAMClientFirst)
        case awaitingClientFinal(SCRAMClientFirst, Keys, serverFirst: [UInt8], nonce: String)
        case finished
    }

    /// What the proof is checked with. `user` is nil for the stand-in keys of an account that
    /// cannot log in, so that the exchange runs to the end and fails like a wrong password.
    private struct Keys {
        var user: String?
        var secret: SCRAMSecret
    }

    private let mechanism: SCRAMMechanism
    private let context: SASLExchangeContext
    private var state = State.initial
    /// The RFC 5802 server-error-value of the failure, for logs and tests. Not sent to the
    /// client: the protocols' failure replies end the exchange, and an `e=` challenge would let
    /// a client cancel out of the failed-login accounting.
    private(set) var serverError: SCRAMError?

    init(mechanism: SCRAMMechanism, context: SASLExchangeContext) {
        self.mechanism = mechanism
        self.context = context
    }

    func start(initialResponse: [UInt8]?) -> SASLStep {
        guard case .initial = state else { return fail(.otherError, .malformed("exchange already started")) }
        // An empty initial response ("=") is a client-first-message of no bytes, which is malformed;
        // only its absence asks for the client's first message.
        guard let message = initialResponse else {
            state = .awaitingClientFirst
            return .challenge([])
        }
        return clientFirst(message)
    }

    func respond(_ response: [UInt8]) -> SASLStep {
        switch state {
        case .awaitingClientFirst: return clientFirst(response)
        case .awaitingClientFinal(let first, let keys, let serverFirst, let nonce):
            return clientFinal(response, first, keys, serverFirst, nonce)
        default: return fail(.otherError, .malformed("unexpected response"))
        }
    }

    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
        guard case .awaitingSecret(let first) = state else {
            return fail(.otherError, .temporary("credential answer without a pending query"))
        }
        let keys: Keys
        switch answer {
        case .secret(let user, let stored):
            guard let secret = try? SCRAMSecret(stored), secret.algorithm == mechanism.algorithm else {
                return fail(.otherError, .temporary("credential backend answered with another scheme than \(mechanism.algorithm.rawValue)"))
            }
            keys = Keys(user: user, secret: secret)
        case .unknownUser, .wrongPassword, .suspended:
            // Go on with keys nobody can match (RFC 5802 §5.1 allows it): the client learns
            // whether the account exists no sooner than with a wrong password.
            keys = Keys(user: nil, secret: standIn(for: first.username))
        case .unavailable(let reason):
            return fail(.otherError, .temporary(reason))
        case .verified:
            return fail(.otherError, .temporary("credential backend answered a secret query with a password check"))
        }
        let nonce = first.clientNonce + mechanism.serverNonce()
        let serverFirst = Array("r=\(nonce),s=\(base64(keys.secret.salt)),i=\(keys.secret.iterations)".utf8)
        state = .awaitingClientFinal(first, keys, serverFirst: serverFirst, nonce: nonce)
        return .challenge(serverFirst)
    }

    // MARK: steps

    private func clientFirst(_ message: [UInt8]) -> SASLStep {
        let first: SCRAMClientFirst
        switch SCRAMClientFirst.parse(message) {
        case .failure(let error): return fail(error, .malformed("client-first-message: \(error.rawValue)"))
        case .success(let parsed): first = parsed
        }
        switch (first.flag, mechanism.plus) {
        case (.binds(let type), true):
            guard context.channelBindings[type] != nil else {
                return fail(.unsupportedChannelBindingType, .malformed("channel binding type \(type) not available"))
            }
        case (.none, true), (.clientSupports, true):
            // A -PLUS mechanism without binding is a client error, not a downgrade to allow.
            return fail(.channelBindingsDontMatch, .malformed("\(mechanism.name) requires channel binding"))
        case (.binds, false):
            return fail(.channelBindingNotSupported, .malformed("channel binding requested with \(mechanism.name)"))
        case (.clientSupports, false):
            // The client could bind but believes the server cannot. If this connection offers
            // -PLUS, something stripped it from the list the client saw (RFC 5802 §6).
            if mechanism.plusOffered && !context.channelBindings.isEmpty {
                return fail(.serverDoesSupportChannelBinding, .authenticationFailed)
            }
        case (.none, false):
            break
        }
        state = .awaitingSecret(first)
        return .verify(.storedSecret(user: first.username, scheme: mechanism.algorithm.rawValue))
    }

    private func clientFinal(_ message: [UInt8], _ first: SCRAMClientFirst, _ keys: Keys,
                             _ serverFirst: [UInt8], _ nonce: String) -> SASLStep {
        let final: SCRAMClientFinal
        switch SCRAMClientFinal.parse(message) {
        case .failure(let error): return fail(error, .malformed("client-final-message: \(error.rawValue)"))
        case .success(let parsed): final = parsed
        }
        guard final.nonce == nonce else { return fail(.otherError, .malformed("nonce does not match")) }
        var expectedBinding = first.gs2Header
        if case .binds(let type) = first.flag, let data = context.channelBindings[type] { expectedBinding += data }
        // Binding data is no secret, but compare without early exit anyway.
        guard SCRAMSecret.constantTimeEqual(final.channelBinding, expectedBinding) else {
            return fail(.channelBindingsDontMatch, .authenticationFailed)
        }
        let algorithm = mechanism.algorithm
        guard final.proof.count == algorithm.keyLength else { return fail(.invalidProof, .authenticationFailed) }
        let authMessage = first.bare + Array(",".utf8) + serverFirst + Array(",".utf8) + final.withoutProof
        let clientSignature = algorithm.hmac(key: keys.secret.storedKey, authMessage)
        let clientKey = zip(final.proof, clientSignature).map { $0 ^ $1 }
        let proofMatches = SCRAMSecret.constantTimeEqual(algorithm.hash(clientKey), keys.secret.storedKey)
        guard proofMatches, let user = keys.user else { return fail(.invalidProof, .authenticationFailed) }
        state = .finished
        let serverSignature = algorithm.hmac(key: keys.secret.serverKey, authMessage)
        let actAs = first.authzid.flatMap { $0 == user || $0 == first.username ? nil : $0 }
        return .success(SASLIdentity(user: user, authorizationIdentity: actAs),
                        serverFinal: Array("v=\(base64(serverSignature))".utf8))
    }

    // MARK: helpers

    /// Keys for an account that cannot log in: a salt that is the same at every attempt for the
    /// same name (a changing one would tell the account does not exist), random keys.
    private func standIn(for username: String) -> SCRAMSecret {
        let algorithm = mechanism.algorithm
        let salt = Array(algorithm.hmac(key: SCRAMExchange.standInKey, Array(username.utf8)).prefix(SCRAMSecret.defaultSaltLength))
        let random = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let key = Array(algorithm.hash(random).prefix(algorithm.keyLength))
        // The shapes are right by construction, so this cannot throw.
        return (try? SCRAMSecret(algorithm: algorithm, salt: salt, iterations: SCRAMSecret.defaultIterations,
                                 storedKey: key, serverKey: key))!
    }

    /// Per process: stand-in salts cannot be computed from outside.
    private static let standInKey: [UInt8] = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }

    private func base64(_ bytes: [UInt8]) -> String {
        String(decoding: Base64Encoder.encode(bytes, lineLength: 0), as: UTF8.self)
    }

    private func fail(_ error: SCRAMError, _ failure: SASLFailure) -> SASLStep {
        state = .finished
        serverError = error
        return .failure(failure)
    }
}
