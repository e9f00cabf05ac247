extension Channel {
    /// The TLS client certificate (DER) of this connection, as its `NIOSSLHandler` verified it
    /// against the listener's `client_ca_file` during the handshake; nil without TLS, when the
    /// listener asks for no client certificate, or when the client sent none. A protocol passes it
    /// to SASL in `SASLExchangeContext.clientCertificate` (EXTERNAL maps it to an account).
    public func verifiedClientCertificate() -> EventLoopFuture<[UInt8]?> {
        nioSSL_peerCertificate()
            .map { certificate in certificate.flatMap { try? $0.toDERBytes() } }
            .recover { _ in nil }
    }
}
