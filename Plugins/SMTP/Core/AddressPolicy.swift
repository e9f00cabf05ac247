import PluginAPI

/// The syntax-level refusals of a recipient, made before anything is looked up: address forms
/// that have been used to relay through servers that handed them on (percent hack, bang paths,
/// source routes, quoted local parts hiding another address) and address literals.
enum RecipientSyntax {
    /// The reply refusing `path`, or nil when its form is acceptable. `localAddress` is the
    /// address the client connected to: a literal naming it is mail for this host.
    static func refusal(_ path: SMTPPath, localAddress: IPAddress?) -> MailReply? {
        if path.hasSourceRoute { return MailReply(553, "5.7.1", "source-routed addresses are not accepted") }
        if path.localPart.contains("@") { return MailReply(553, "5.7.1", "quoted local parts containing @ are not accepted") }
        if path.localPart.contains("%") { return MailReply(553, "5.7.1", "percent-hack addresses are not accepted") }
        if path.localPart.contains("!") { return MailReply(553, "5.7.1", "bang-path addresses are not accepted") }
        switch path.domain {
        case .name(let name)?:
            if name.isEmpty || name.hasSuffix(".") { return MailReply(501, "5.1.3", "bad recipient domain") }
        case .ipv4(let text)?:
            guard let localAddress, IPAddress(text) == localAddress else {
                return MailReply(553, "5.7.1", "address literals are not accepted")
            }
        case .ipv6(let text)?:
            guard let localAddress, IPAddress(text) == localAddress else {
                return MailReply(553, "5.7.1", "address literals are not accepted")
            }
        case .general?:
            return MailReply(553, "5.7.1", "address literals are not accepted")
        case nil:
            break
        }
        return nil
    }

    /// `local@domain` with the domain in lower-case A-labels, as the router is asked (so
    /// `User@BÜCHER.example`, `User@xn--bcher-kva.EXAMPLE` and `User@bücher.example` are one
    /// domain). The local part keeps its case (RFC 5321 §2.4); the router folds it if it wants.
    /// A literal naming this host becomes `hostname`. Nil when the domain cannot be encoded.
    static func normalised(_ path: SMTPPath, hostname: String) -> String? {
        let local = MailAddress.quoteLocalPart(path.localPart)
        switch path.domain {
        case .name(let name)?:
            guard let ascii = try? IDNA.toASCII(name) else { return nil }
            return local + "@" + ascii.lowercased()
        case .ipv4?, .ipv6?, .general?:
            return local + "@" + hostname.lowercased()
        case nil:
            // Only <postmaster> gets here (RFC 5321 §4.1.1.3): this host's postmaster.
            return local + "@" + hostname.lowercased()
        }
    }
}

/// Checks of the sender address.
enum SenderSyntax {
    /// Whether the sender has a fully-qualified domain: a name with at least one dot, or a literal.
    static func isFullyQualified(_ path: SMTPPath) -> Bool {
        switch path.domain {
        case .name(let name)?: return name.contains(".") && !name.hasSuffix(".") && !name.hasPrefix(".")
        case .ipv4?, .ipv6?, .general?: return true
        case nil: return false
        }
    }
}
