// The security-layer negotiation of SASL GSSAPI (RFC 4752 §3.1), without I/O: the 4-octet
// offer the server wraps after the context is established, and the client's wrapped choice.
// Postern offers "no security layer" only (sessions are protected by TLS, as with Dovecot).

enum SecurityLayer {
    /// Bit masks of the first octet.
    static let none: UInt8 = 0x01
    static let integrity: UInt8 = 0x02
    static let confidentiality: UInt8 = 0x04

    /// RFC 4752: an authzid is a SASL name; Postern accepts no more than this.
    static let maximumAuthzidLength = 1024

    /// The server's offer: only "no security layer", and a maximum message size of 0 (no layer,
    /// so no wrapped messages will follow).
    static let offer: [UInt8] = [none, 0, 0, 0]

    /// What the client chose.
    struct Choice: Equatable {
        var layer: UInt8
        var maximumSize: Int
        /// The authorization identity asked for; nil when empty.
        var authzid: String?
    }

    enum Refusal: Error, Equatable {
        case tooShort(Int)
        /// A layer other than the one offered, or several bits at once.
        case layerNotOffered(UInt8)
        case authzidNotUTF8
        case authzidTooLong(Int)
    }

    /// Parses the client's unwrapped answer: layer octet, 3-octet maximum size, authzid.
    static func parseChoice(_ message: [UInt8]) -> Result<Choice, Refusal> {
        guard message.count >= 4 else { return .failure(.tooShort(message.count)) }
        guard message[0] == none else { return .failure(.layerNotOffered(message[0])) }
        let size = Int(message[1]) << 16 | Int(message[2]) << 8 | Int(message[3])
        let rest = message[4...]
        guard rest.count <= maximumAuthzidLength else { return .failure(.authzidTooLong(rest.count)) }
        guard !rest.contains(0), let authzid = String(validating: rest, as: UTF8.self) else { return .failure(.authzidNotUTF8) }
        return .success(Choice(layer: message[0], maximumSize: size, authzid: authzid.isEmpty ? nil : authzid))
    }
}
