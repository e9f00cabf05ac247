/// An exchange whose steps are answered by another process: GSSAPI, whose security context lives
/// in authproxyd (the only process that may read the keytab). The mechanism stays a step machine,
/// but each step is a round trip, so `AuthExchange` awaits these instead of the synchronous
/// `start`/`respond` of `SASLServerExchange` (which such an exchange answers with a temporary
/// failure). Anything that can be done without I/O is still done by `.verify` and
/// `credentialAnswer`.
public protocol RemoteSASLServerExchange: SASLServerExchange {
    /// First step, with the client's initial response if it sent one.
    func remoteStart(initialResponse: [UInt8]?) async -> SASLStep
    /// The client's answer to the last challenge.
    func remoteRespond(_ response: [UInt8]) async -> SASLStep
}
