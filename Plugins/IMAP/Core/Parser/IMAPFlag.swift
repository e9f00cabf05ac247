/// A message flag: a system flag (`\Seen`) or a keyword (`$Forwarded`, `NonJunk`).
/// System flags are case-insensitive on the wire and are kept in their RFC 3501 spelling, so
/// `\SEEN` and `\seen` compare equal to `IMAPFlag.seen`; keywords are kept as the client wrote them.
public struct IMAPFlag: Sendable, Hashable, CustomStringConvertible {
    public let name: String

    public init(_ name: String) {
        if name.hasPrefix("\\"), let canonical = IMAPFlag.systemNames.first(where: { $0.lowercased() == name.lowercased() }) {
            self.name = canonical
        } else {
            self.name = name
        }
    }

    static let systemNames = ["\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent", "\\*"]

    public static let answered = IMAPFlag("\\Answered")
    public static let flagged = IMAPFlag("\\Flagged")
    public static let deleted = IMAPFlag("\\Deleted")
    public static let seen = IMAPFlag("\\Seen")
    public static let draft = IMAPFlag("\\Draft")
    /// Session-only; never stored by STORE or APPEND.
    public static let recent = IMAPFlag("\\Recent")
    /// In PERMANENTFLAGS: the client may create new keywords.
    public static let mayCreateKeywords = IMAPFlag("\\*")

    /// A system flag (`\...`) rather than a keyword.
    public var isSystem: Bool { name.hasPrefix("\\") }

    public var description: String { name }
}
