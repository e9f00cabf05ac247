/// An exchange whose steps must wait on something outside the process before they can answer:
/// a bridge to a C SASL library that checks credentials itself (libsasl2 asking saslauthd or
/// reading sasldb2), or GSSAPI, whose security context lives in authproxyd (the only process that
/// may read the keytab), so each step is a round trip. The auth service prefers these methods over
/// the synchronous ones (which such an exchange answers with a temporary failure), so the waiting
/// happens in a task and never on a NIO event loop. Mechanisms that only compute (PLAIN, SCRAM)
/// stay pure step machines and ask the credential backends through `.verify` instead.
public protocol AsyncSASLServerExchange: SASLServerExchange {
    /// As `start(initialResponse:)`, allowed to wait.
    func startAsync(initialResponse: [UInt8]?) async -> SASLStep
    /// As `respond(_:)`, allowed to wait.
    func respondAsync(_ response: [UInt8]) async -> SASLStep
}
