import PluginAPI

// EXTERNAL (RFC 4422 Appendix A) over a TLS client certificate: the listener verified the
// certificate during the handshake (client_certificates = "optional", client_ca_file), the
// protocol passes it in `SASLExchangeContext.clientCertificate`, and this maps it to an account.
// The client's only message is an authzid, which must be empty or the mapped account.

struct ExternalMechanism: SASLMechanism {
    /// RFC 4422: an authzid is a simple name; Postern accepts up to 255 bytes, as PLAIN does.
    static let maximumAuthzidLength = 255

    let map: CertificateIdentityMap
    /// Why a certificate was not mapped, for the log (the client only learns that it failed).
    let report: @Sendable (CertificateMappingError) -> Void

    var name: String { "EXTERNAL" }
    var isPlaintext: Bool { false }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange {
        ExternalExchange(certificate: context.clientCertificate, map: map, report: report)
    }
}

/// (empty challenge) -> authzid -> does the mapped account exist and may it log in -> success.
final class ExternalExchange: SASLServerExchange {
    private enum State: Equatable { case initial, awaitingAuthzid, awaitingAccount, finished }

    let certificate: [UInt8]?
    let map: CertificateIdentityMap
    let report: @Sendable (CertificateMappingError) -> Void
    private var state = State.initial

    init(certificate: [UInt8]?, map: CertificateIdentityMap, report: @escaping @Sendable (CertificateMappingError) -> Void) {
        self.certificate = certificate
        self.map = map
        self.report = report
    }

    func start(initialResponse: [UInt8]?) -> SASLStep {
        guard state == .initial else { return fail(.malformed("exchange already started")) }
        guard let message = initialResponse else {
            state = .awaitingAuthzid
            return .challenge([])
        }
        return take(message)
    }

    func respond(_ response: [UInt8]) -> SASLStep {
        guard state == .awaitingAuthzid else { return fail(.malformed("unexpected response")) }
        return take(response)
    }

    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep {
        guard state == .awaitingAccount else { return fail(.temporary("credential answer without a pending check")) }
        state = .finished
        switch answer {
        case .verified(let user): return .success(SASLIdentity(user: user), serverFinal: nil)
        case .suspended: return .failure(.accountDisabled)
        case .unknownUser, .wrongPassword: return .failure(.authenticationFailed)
        case .unavailable(let reason): return .failure(.temporary(reason))
        case .secret: return .failure(.temporary("credential backend answered an account check with a stored secret"))
        }
    }

    private func take(_ message: [UInt8]) -> SASLStep {
        guard message.count <= ExternalMechanism.maximumAuthzidLength else {
            return fail(.malformed("authzid longer than \(ExternalMechanism.maximumAuthzidLength) bytes"))
        }
        guard let authzid = String(validating: message, as: UTF8.self), !authzid.contains("\u{0}") else {
            return fail(.malformed("authzid is not UTF-8"))
        }
        // No certificate: nothing to be external about (no TLS, or the client sent none).
        guard let certificate else { return fail(.authenticationFailed) }
        switch map.account(certificateDER: certificate) {
        case .failure(let why):
            report(why)
            return fail(.authenticationFailed)
        case .success(let account):
            if !authzid.isEmpty && authzid.lowercased() != account.lowercased() { return fail(.authorizationFailed) }
            state = .awaitingAccount
            return .verify(.account(user: account))
        }
    }

    private func fail(_ failure: SASLFailure) -> SASLStep {
        state = .finished
        return .failure(failure)
    }
}
