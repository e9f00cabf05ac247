/// An envelope or account address, `local@domain`, normalised once for every plugin: the domain
/// lower-cased (domains are case-insensitive), the local part kept as written (RFC 5321 §2.4: only
/// the host that owns the mailbox may fold it). Routing, the store, access tables and the outbound
/// transports all split addresses through this type, so they agree on what an address is.
///
/// Not a parser of SMTP syntax (that is `SMTPPath`): it takes an address that already passed one,
/// or a name an administrator typed, and refuses what cannot be a mailbox.
public struct EnvelopeAddress: Sendable, Hashable, CustomStringConvertible {
    public let local: String
    public let domain: String

    /// nil unless `text` is `local@domain` with both parts non-empty and no space, NUL or second
    /// `@` in the local part (`a@b@example.org` is no address).
    public init?(_ text: String) {
        guard let at = text.lastIndex(of: "@") else { return nil }
        let local = String(text[..<at])
        let domain = text[text.index(after: at)...].lowercased()
        guard !local.isEmpty, !domain.isEmpty, !local.contains(where: { $0 == " " || $0 == "\0" || $0 == "@" }) else { return nil }
        self.local = local
        self.domain = domain
    }

    public var description: String { "\(local)@\(domain)" }

    /// The domain of `text` lower-cased, or "" when it has none: for grouping and table keys, where
    /// anything (the null sender, a bare name) must still give an answer.
    public static func domain(of text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return "" }
        return text[text.index(after: at)...].lowercased()
    }
}
