import PluginAPI
import XCTest

/// Bytes of a string literal, for readable fixtures.
func b(_ text: String) -> [UInt8] { Array(text.utf8) }
func base64(_ text: String) -> [UInt8] { Base64Decoder.decode(Array(text.utf8)) }
func base64(_ bytes: [UInt8]) -> String { String(decoding: Base64Encoder.encode(bytes, lineLength: 0), as: UTF8.self) }

/// Secrets by (user, scheme), answered the way a store answers: unknown users fall through, a
/// missing scheme is `.unavailable`, disabled accounts `.suspended`.
struct MemorySecrets: CredentialBackend {
    var secrets: [String: [String: StoredSecret]] = [:]
    var disabled: Set<String> = []

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer { .unknownUser }

    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer {
        guard let byScheme = secrets[user] else { return .unknownUser }
        if disabled.contains(user) { return .suspended(user: user) }
        guard let secret = byScheme[scheme] else { return .unavailable(reason: "no \(scheme) secret") }
        return .secret(user: user, secret)
    }

    func lookupUser(_ user: String) async throws -> UserRecord? { secrets[user].map { _ in UserRecord(name: user) } }
}

/// Drives a bare exchange, answering its `.verify` steps from `backend` (no AuthService, so the
/// tests see every step).
func settle(_ exchange: any SASLServerExchange, _ step: SASLStep, _ backend: MemorySecrets) async -> SASLStep {
    var step = step
    while case .verify(let query) = step {
        step = exchange.credentialAnswer(await AuthService.ask([backend], query))
    }
    return step
}

func challengeBytes(_ step: SASLStep, file: StaticString = #filePath, line: UInt = #line) -> [UInt8]? {
    if case .challenge(let c) = step { return c }
    XCTFail("expected a challenge, got \(step)", file: file, line: line)
    return nil
}

func isFailure(_ step: SASLStep, _ expected: SASLFailure? = nil) -> Bool {
    guard case .failure(let f) = step else { return false }
    guard let expected else { return true }
    if case .malformed = expected, case .malformed = f { return true }
    return f == expected
}
