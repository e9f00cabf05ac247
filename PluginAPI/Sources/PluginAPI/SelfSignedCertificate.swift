import Crypto
import SwiftASN1
import Foundation
import X509

/// A self-signed certificate and its key, as Debian's `make-ssl-cert` makes for Dovecot and
/// Postfix: what a new installation serves TLS with until a real certificate is put in place.
/// ECDSA P-256 (every current client takes it), valid ten years, for the host name, `localhost`,
/// 127.0.0.1 and ::1, so that a client on the same machine can trust exactly this file and verify
/// the name it connected to.
public enum SelfSignedCertificate {
    /// PEM texts of a new certificate and of its private key (PKCS#8).
    public static func make(hostName: String, now: Date = Date()) throws -> (certificate: String, key: String) {
        let key = P256.Signing.PrivateKey()
        let certificateKey = Certificate.PrivateKey(key)
        let name = try DistinguishedName {
            CommonName(hostName)
            OrganizationName("Postern self-signed")
        }
        var names: [GeneralName] = [.dnsName(hostName)]
        if hostName.lowercased() != "localhost" { names.append(.dnsName("localhost")) }
        names.append(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])))
        names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1]))))
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth])
            SubjectAlternativeNames(names)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: certificateKey.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(10 * 365 * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: certificateKey)
        return (try certificate.serializeAsPEM().pemString, try certificateKey.serializeAsPEM().pemString)
    }
}
