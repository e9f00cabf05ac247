import Foundation
import PluginAPI
import SwiftASN1
import X509

/// The small certificate authority of a site's Postern nodes (`postern admin ca`): a console and
/// the nodes it manages know each other by certificates this CA issued, on both ends of the TLS
/// connection. What a certificate may do is in its subject's organizational unit: a `console`
/// certificate may call a node's API for any administrator; a `node` certificate only serves it.
/// ECDSA P-256, as the self-signed certificates.
public enum NodeCertificates {
    public enum Role: String, Sendable, CaseIterable {
        case console = "postern-console"
        case node = "postern-node"
    }

    public struct Issued: Sendable {
        /// PEM texts.
        public var certificate: String
        public var key: String

        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// A CA certificate and key for `siteName`, valid `days`.
    public static func makeAuthority(siteName: String, days: Int = 3650, now: Date = Date()) throws -> Issued {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let name = try DistinguishedName {
            CommonName("Postern node CA for \(siteName)")
            OrganizationName("Postern")
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: key.publicKey)
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: key)
        return Issued(certificate: try certificate.serializeAsPEM().pemString, key: try key.serializeAsPEM().pemString)
    }

    /// A certificate for the node or console `name`, reachable at `hosts` (names and IP
    /// addresses; a node's URL must use one of them), signed by the authority.
    public static func issue(name: String, role: Role, hosts: [String], authority: Issued, days: Int = 825,
                             now: Date = Date()) throws -> Issued {
        let caCertificate = try Certificate(pemEncoded: authority.certificate)
        let caKey = try Certificate.PrivateKey(pemEncoded: authority.key)
        guard caCertificate.publicKey == caKey.publicKey else { throw NodeCertificateError("the CA key does not belong to the CA certificate") }
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let subject = try DistinguishedName {
            CommonName(name)
            OrganizationalUnitName(role.rawValue)
            OrganizationName("Postern")
        }
        var names: [GeneralName] = []
        for host in hosts {
            if let ip = ipAddressBytes(host) {
                names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(ip))))
            } else {
                names.append(.dnsName(host.lowercased()))
            }
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage(role == .console ? [.clientAuth] : [.serverAuth, .clientAuth])
            if !names.isEmpty { SubjectAlternativeNames(names) }
            SubjectKeyIdentifier(hash: key.publicKey)
            if let authorityKeyID = try? caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier {
                AuthorityKeyIdentifier(keyIdentifier: authorityKeyID)
            }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: key.publicKey,
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(Double(days) * 86_400),
            issuer: caCertificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: caKey)
        return Issued(certificate: try certificate.serializeAsPEM().pemString, key: try key.serializeAsPEM().pemString)
    }

    /// The name (CN) and role (OU) of a certificate the TLS handshake already verified against
    /// the CA; nil when it is not one of ours.
    public static func identity(der: [UInt8]) -> (name: String, role: Role)? {
        guard let certificate = try? Certificate(derEncoded: der) else { return nil }
        let (name, role) = subjectNameAndRole(certificate)
        guard let name, let role else { return nil }
        return (name, role)
    }

    /// The subject's common name, the certificate's end of validity and its role, for `ca list`.
    public static func describe(pem: String) throws -> (name: String, role: Role?, notAfter: Date, hosts: [String]) {
        let certificate = try Certificate(pemEncoded: pem)
        let (name, role) = subjectNameAndRole(certificate)
        var hosts: [String] = []
        for entry in (try? certificate.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames([]) {
            switch entry {
            case .dnsName(let dns): hosts.append(dns)
            case .ipAddress(let bytes): hosts.append(ipText(Array(bytes.bytes)))
            default: break
            }
        }
        return (name ?? "", role, certificate.notValidAfter, hosts)
    }

    private static func subjectNameAndRole(_ certificate: Certificate) -> (String?, Role?) {
        var name: String?, role: Role?
        for rdn in certificate.subject {
            for attribute in rdn {
                if attribute.type == .RDNAttributeType.commonName { name = String(describing: attribute.value) }
                if attribute.type == .RDNAttributeType.organizationalUnitName { role = Role(rawValue: String(describing: attribute.value)) }
            }
        }
        return (name, role)
    }

    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    static func ipText(_ bytes: [UInt8]) -> String {
        if bytes.count == 4 { return bytes.map(String.init).joined(separator: ".") }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        var address = in6_addr()
        withUnsafeMutableBytes(of: &address) { $0.copyBytes(from: bytes.prefix(16)) }
        return inet_ntop(AF_INET6, &address, &buffer, socklen_t(buffer.count)) != nil ? String(cString: buffer) : "?"
    }
}

public struct NodeCertificateError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
