import PluginAPI
import PluginCredentials

// Which account a verified TLS client certificate names. The TLS layer has already checked the
// chain against the listener's client_ca_file; this only reads names out of the DER. Pure.

/// Where in the certificate the account name is looked for, in the configured order.
enum CertificateNameSource: String, Sendable, CaseIterable {
    /// subjectAltName rfc822Name (RFC 5280 §4.2.1.6): where an email address belongs.
    case sanEmail = "san-email"
    /// The subject's emailAddress attribute (PKCS #9), which older CAs use.
    case subjectEmail = "subject-email"
    /// The subject's commonName, with `cn_domain` appended when it holds no `@`.
    case subjectCN = "subject-cn"
}

struct CertificateIdentityMap: Sendable, Equatable {
    var sources: [CertificateNameSource]
    /// Appended as `@domain` to a commonName without `@`; without it such a CN maps to nothing.
    var cnDomain: String?

    /// The account the certificate names: the first name found, trying `sources` in order.
    func account(certificateDER der: [UInt8]) -> Result<String, CertificateMappingError> {
        let certificate: Certificate
        do {
            certificate = try Certificate(derEncoded: der)
        } catch {
            return .failure(.unreadable("\(error)"))
        }
        for source in sources {
            if let name = try? name(in: certificate, from: source) { return .success(name) }
        }
        return .failure(.noName)
    }

    private func name(in certificate: Certificate, from source: CertificateNameSource) throws -> String? {
        switch source {
        case .sanEmail:
            guard let names = try certificate.extensions.subjectAlternativeNames else { return nil }
            for case .rfc822Name(let email) in names where Self.isMailbox(email) { return email }
            return nil
        case .subjectEmail:
            return attribute(.RDNAttributeType.emailAddress, of: certificate).first(where: Self.isMailbox)
        case .subjectCN:
            guard let cn = attribute(.RDNAttributeType.commonName, of: certificate).last, !cn.isEmpty else { return nil }
            if cn.contains("@") { return Self.isMailbox(cn) ? cn : nil }
            guard let cnDomain, !cnDomain.isEmpty, !cn.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
            return cn + "@" + cnDomain
        }
    }

    private func attribute(_ type: ASN1ObjectIdentifier, of certificate: Certificate) -> [String] {
        certificate.subject.flatMap { rdn in rdn.filter { $0.type == type }.compactMap { String($0.value) } }
    }

    /// `local@domain` with one `@`, no spaces or controls: anything else is not an account name.
    static func isMailbox(_ s: String) -> Bool {
        let parts = s.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
            && !s.unicodeScalars.contains { $0.value <= 0x20 || $0.value == 0x7F }
    }
}

enum CertificateMappingError: Error, Sendable, Equatable, CustomStringConvertible {
    case unreadable(String)
    case noName

    var description: String {
        switch self {
        case .unreadable(let why): return "client certificate cannot be parsed: \(why)"
        case .noName: return "client certificate names no account (no usable email address or common name)"
        }
    }
}
