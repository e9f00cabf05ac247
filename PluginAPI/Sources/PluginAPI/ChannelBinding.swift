import Crypto
import NIOSSL
import X509

/// TLS channel bindings (RFC 5056) for SCRAM-*-PLUS: data both ends of one TLS connection can
/// compute, which a man in the middle relaying the authentication over a second connection cannot
/// make match.
///
/// Only `tls-server-end-point` (RFC 5929 §4) is produced: swift-nio-ssl 2.37 exposes neither
/// keying-material export (RFC 9266 `tls-exporter`) nor the Finished message (`tls-unique`, and
/// that does not exist under TLS 1.3 anyway).
public enum TLSChannelBinding {
    /// The type name SCRAM clients send in `p=`.
    public static let serverEndPoint = "tls-server-end-point"

    /// `tls-server-end-point` of a server certificate (DER): its hash with the hash function of
    /// its signature algorithm, SHA-256 when that is MD5 or SHA-1 (RFC 5929 §4.1). Nil when the
    /// certificate does not parse or its signature has no single hash (Ed25519): RFC 5929 leaves
    /// the binding undefined there, so none is offered.
    public static func serverEndPoint(certificateDER der: [UInt8]) -> [UInt8]? {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        switch certificate.signatureAlgorithm {
        case .ecdsaWithSHA256, .sha256WithRSAEncryption, .sha1WithRSAEncryption:
            return Array(SHA256.hash(data: der))
        case .ecdsaWithSHA384, .sha384WithRSAEncryption:
            return Array(SHA384.hash(data: der))
        case .ecdsaWithSHA512, .sha512WithRSAEncryption:
            return Array(SHA512.hash(data: der))
        default:
            return nil
        }
    }

    /// The bindings of a listener serving `certificate` (the leaf of its chain).
    public static func bindings(serverCertificate certificate: NIOSSLCertificate) -> [String: [UInt8]] {
        guard let der = try? certificate.toDERBytes(), let hash = serverEndPoint(certificateDER: der) else { return [:] }
        return [serverEndPoint: hash]
    }
}

extension TLSProvider {
    /// Default for providers that know no certificate: no bindings, so no -PLUS mechanisms.
    public func channelBindings(listener: String) -> [String: [UInt8]] { [:] }
}

extension Session {
    /// The channel bindings of this connection while it is under TLS (empty before STARTTLS),
    /// for `SASLExchangeContext.channelBindings`.
    public var channelBindings: [String: [UInt8]] {
        isSecure ? services.tls.channelBindings(listener: listener.name) : [:]
    }
}
