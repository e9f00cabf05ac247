import Foundation
import PluginAPI

// DIGEST-MD5 (RFC 2831) for authentication only: qop=auth, no integrity or confidentiality
// layer, no subsequent authentication. A pure step machine; the server checks the response with
// the account's H(username:realm:password), a stored secret written only while this plugin is
// loaded, and proves itself with rspauth (sent as `serverFinal`).

struct DigestMD5Mechanism: SASLMechanism {
    /// The `StoredSecret.scheme`; fields `realm` (UTF-8) and `hash` (the 16 bytes of H(A1's user part)).
    static let scheme = "DIGEST-MD5"

    /// The realm offered and hashed into every stored secret.
    let realm: String
    /// Host names accepted in digest-uri besides the protocol's own host name.
    let extraHostnames: Set<String>
    let nonces: DigestNonceLedger
    let nonce: @Sendable () -> String

    init(realm: String, extraHostnames: [String] = [], nonces: DigestNonceLedger = DigestNonceLedger(),
         nonce: @escaping @Sendable () -> String = { DigestMD5Mechanism.randomNonce() }) {
        self.realm = realm
        self.extraHostnames = Set(extraHostnames.map { $0.lowercased() })
        self.nonces = nonces
        self.nonce = nonce
    }

    var name: String { "DIGEST-MD5" }
    var isPlaintext: Bool { false }

    var storedSecretDerivation: StoredSecretDerivation? {
        let realm = self.realm
        return StoredSecretDerivation(scheme: Self.scheme, derive: { input in
            guard SCRAMSecret.prepare(password: input.password) != nil else { throw SCRAMSecret.SecretError.prohibitedCharacter }
            return StoredSecret(scheme: Self.scheme, fields: [
                "realm": Array(realm.utf8),
                "hash": Self.userRealmPasswordHash(user: input.user, realm: realm, password: input.password),
            ])
        }, isCurrent: { $0.fields["realm"] == Array(realm.utf8) })
    }

    /// H(username ":" realm ":" password), RFC 2831 §2.1.2.1, with UTF-8 throughout.
    static func userRealmPasswordHash(user: String, realm: String, password: String) -> [UInt8] {
        Array(Insecure.MD5.hash(data: Array("\(user):\(realm):\(password)".utf8)))
    }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange {
        DigestMD5Exchange(mechanism: self, context: context, nonce: nonce())
    }

    /// 18 random bytes in base64 (24 characters, no quote or backslash).
    static func randomNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<18).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return String(decoding: Base64Encoder.encode(bytes, lineLength: 0), as: UTF8.self)
    }
}

/// The nonces whose response has been checked, per process: a nonce is good for one response
/// (nc=00000001) and never again, whatever exchange replays it. Bounded; the oldest go first.
// @unchecked Sendable: `spent` and `order` are only touched under `lock`
final class DigestNonceLedger: @unchecked Sendable {
    private let lock = NIOLock()
    private var spent = Set<String>()
    private var order: [String] = []
    private let capacity: Int

    init(capacity: Int = 100_000) { self.capacity = capacity }

    /// False when `nonce` was spent already; records it otherwise.
    func spend(_ nonce: String) -> Bool {
        lock.withLock {
            guard spent.insert(nonce).inserted else { return false }
            order.append(nonce)
            if order.count > capacity {
                let drop = order.count - capacity
                order.prefix(drop).forEach { spent.remove($0) }
                order.removeFirst(drop)
            }
            return true
        }
    }
}

/// One DIGEST-MD5 attempt: digest-challenge → digest-response → fetch H(A1) part → compare →
/// success with `rspauth=...` as serverFinal.
final class DigestMD5Exchange: SASLServerExchange {
    private enum State {
        case initial
        case awaitingResponse
        case awaitingSecret(DigestResponse)
        case finished
    }

    private let mechanism: DigestMD5Mechanism
    private let context: SASLExchangeContext
    private let nonce: String
    private var state = State.initial

    init(mechanism: DigestMD5Mechanism, context: SASLExchangeContext, nonce: String) {
        self.mechanism = mechanism
        self.context = context
        self.nonce = nonce
    }

    /// The digest-challenge (RFC 2831 §2.1.1).
    var challenge: [UInt8] {
        Array("realm=\(quoted(mechanism.realm)),nonce=\(quoted(nonce)),qop=\"auth\",charset=utf-8,algorithm=md5-sess".utf8)
    }

    func start(initialResponse: [UInt8]?) -> SASLStep {
        guard case .initial = state else { return fail(.malformed("exchange already started")) }
        // Subsequent authentication (an initial digest-response) is not offered.
        if let initial = initialResponse, !initial.isEmpty { return fail(.malformed("DIGEST-MD5 takes no initial response")) }
        state = .awaitingResponse
        return .challenge(challenge)
    }

    func respond(_ bytes: [UInt8]) -> SASLStep {
        guard case .awaitingResponse = state else { return fail(.malformed("unexpected response")) }
        let response: DigestResponse
        switch DigestResponse.parse(bytes) {
        case .failure(let failure): return fail(failure)
        case .success(let parsed): response = parsed
        }
        if let realm = response.realm, realm != mechanism.realm { return fail(.malformed("realm was not offered")) }
        if response.realm == nil && !mechanism.realm.isEmpty { return fail(.malformed("missing realm")) }
        guard response.nonce == nonce else { return fail(.malformed("nonce was not issued in this exchange")) }
        guard response.nonceCount == 1 else { return fail(.malformed("nonce-count must be 00000001")) }
        guard digestURIAccepted(response.digestURI) else { return fail(.malformed("digest-uri does not name this service and host")) }
        // Spent before the check, so a wrong guess cannot be retried on the same nonce either.
        guard mechanism.nonces.spend(nonce) else { return fail(.malformed("nonce already used")) }
        state = .awaitingSecret(response)
        return .verify(.storedSecret(user: response.username, scheme: DigestMD5Mechanism.scheme))
    }

    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
        guard case .awaitingSecret(let response) = state else { return fail(.temporary("credential answer without a pending query")) }
        switch answer {
        case .secret(let account, let stored):
            guard stored.scheme == DigestMD5Mechanism.scheme, let hash = stored.fields["hash"], hash.count == 16 else {
                return fail(.temporary("credential backend answered with a malformed DIGEST-MD5 secret"))
            }
            // A secret made for another realm cannot match; the next plaintext login replaces it.
            guard stored.fields["realm"] == Array(mechanism.realm.utf8) else { return fail(.authenticationFailed) }
            let expected = Self.responseValue(hash: hash, response, a2Prefix: "AUTHENTICATE")
            guard SCRAMSecret.constantTimeEqual(Array(expected.utf8), Array(response.response.utf8)) else {
                return fail(.authenticationFailed)
            }
            state = .finished
            let rspauth = Self.responseValue(hash: hash, response, a2Prefix: "")
            let actAs = response.authzid.flatMap { $0 == account || $0 == response.username ? nil : $0 }
            return .success(SASLIdentity(user: account, authorizationIdentity: actAs), serverFinal: Array("rspauth=\(rspauth)".utf8))
        case .unknownUser, .wrongPassword: return fail(.authenticationFailed)
        case .suspended: return fail(.accountDisabled)
        case .unavailable(let reason): return fail(.temporary(reason))
        case .verified: return fail(.temporary("credential backend answered a secret query with a password check"))
        }
    }

    /// `serv-type "/" host`: the protocol's service and this server's name (RFC 2831 §2.1.2:
    /// the server must check it, so a response made for another server is refused). A third
    /// part (serv-name) must name the host too.
    private func digestURIAccepted(_ uri: String) -> Bool {
        let parts = uri.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3, parts[0].lowercased() == context.service.lowercased() else { return false }
        let hosts = mechanism.extraHostnames.union([context.serverHostname.lowercased()])
        return parts.dropFirst().allSatisfy { hosts.contains($0.lowercased()) }
    }

    /// HEX(KD(HEX(H(A1)), nonce:nc:cnonce:qop:HEX(H(A2)))) with A2 = prefix ":" digest-uri
    /// (RFC 2831 §2.1.2.1; prefix "AUTHENTICATE" for the response, "" for rspauth).
    static func responseValue(hash: [UInt8], _ r: DigestResponse, a2Prefix: String) -> String {
        var a1 = hash + Array(":\(r.nonce):\(r.cnonce)".utf8)
        if let authzid = r.authzid { a1 += Array(":\(authzid)".utf8) }
        let ha1 = hex(Array(Insecure.MD5.hash(data: a1)))
        let ha2 = hex(Array(Insecure.MD5.hash(data: Array("\(a2Prefix):\(r.digestURI)".utf8))))
        return hex(Array(Insecure.MD5.hash(data: Array("\(ha1):\(r.nonce):\(r.nonceCountText):\(r.cnonce):\(r.qop):\(ha2)".utf8))))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0xF)]] }, as: UTF8.self)
    }

    private func fail(_ failure: SASLFailure) -> SASLStep {
        state = .finished
        return .failure(failure)
    }
}
