/// Access rights on a mailbox (RFC 4314 §2.1), as a set of right letters:
///
/// - `l` lookup (visible in LIST), `r` read (SELECT, FETCH, SEARCH, COPY from), `s` keep \Seen,
///   `w` write other flags, `i` insert (APPEND, COPY to), `p` post, `k` create child mailboxes,
///   `x` delete or rename the mailbox, `t` set or clear \Deleted, `e` expunge, `a` administer
///   (see and change the ACL).
///
/// The obsolete RFC 2086 letters are read as their RFC 4314 replacements: `c` as `k`, `d` as
/// `x`, `t` and `e` (§2.1.1 lets a server choose; these match what clients that still send them
/// mean). Digits (implementation-defined rights) and any other letter are refused.
public struct ACLRights: Sendable, Hashable, CustomStringConvertible {
    /// Every right this store knows, in the canonical order responses use.
    public static let letters: [Character] = ["l", "r", "s", "w", "i", "p", "k", "x", "t", "e", "a"]
    public static let all = ACLRights(set: Set(letters))
    public static let none = ACLRights(set: [])
    /// The rights the owner of a mailbox always holds: an owner cannot lock themselves out
    /// (RFC 4314 §2 lets a server grant the owner implicit rights; this store grants all).
    public static let owner = all

    public private(set) var granted: Set<Character>

    init(set: Set<Character>) { self.granted = set }

    /// Parses right letters (`lrswipkxtea`, obsolete `c`/`d` expanded); nil when any letter is
    /// unknown.
    public init?(_ text: String) {
        var set = Set<Character>()
        for c in text.lowercased() {
            switch c {
            case "c": set.insert("k")
            case "d": set.formUnion(["x", "t", "e"])
            default:
                guard Self.letters.contains(c) else { return nil }
                set.insert(c)
            }
        }
        self.granted = set
    }

    public func contains(_ right: Character) -> Bool { granted.contains(right) }
    public var isEmpty: Bool { granted.isEmpty }
    public func union(_ other: ACLRights) -> ACLRights { ACLRights(set: granted.union(other.granted)) }
    public func subtracting(_ other: ACLRights) -> ACLRights { ACLRights(set: granted.subtracting(other.granted)) }

    /// The letters in canonical order (`lrswipkxtea`).
    public var description: String { String(Self.letters.filter { granted.contains($0) }) }
}

extension ACLRights {
    /// The right needed to set or clear `flag` (RFC 4314 §4): `s` for \Seen, `t` for
    /// \Deleted, `w` for every other flag and keyword.
    public static func right(for flag: String) -> String {
        switch flag.lowercased() {
        case "\\seen": return "s"
        case "\\deleted": return "t"
        default: return "w"
        }
    }

    /// Whether these rights allow setting or clearing `flag`.
    public func mayStore(_ flag: String) -> Bool { contains(Character(Self.right(for: flag))) }
}

/// One ACL entry: an identifier and the rights it grants. Identifiers are account names, the
/// special `anyone` (every authenticated user of the store), or a negative entry (`-name`) whose
/// rights are taken away from what the positive entries give (RFC 4314 §2).
public struct ACLEntry: Sendable, Equatable, Codable {
    public var identifier: String
    public var rights: String

    public init(identifier: String, rights: ACLRights) {
        self.identifier = identifier
        self.rights = rights.description
    }

    /// `anyone`: every authenticated user.
    public static let anyone = "anyone"
}

/// How `setACL` changes an entry (the `+`/`-` prefixes of IMAP SETACL).
public enum ACLChange: Sendable, Equatable {
    case replace(ACLRights)
    case add(ACLRights)
    case remove(ACLRights)
    /// DELETEACL: the entry goes.
    case delete
}

/// Where other users' mailboxes appear in a user's mailbox list: `Other Users/OWNER/NAME`
/// (RFC 2342's "other users" namespace), with `/` as the hierarchy delimiter.
public enum MailboxNamespace {
    public static let delimiter: Character = "/"
    public static let otherUsersPrefix = "Other Users/"

    /// The owner and the owner's own name of a mailbox name in the other-users namespace; nil
    /// for a personal mailbox name.
    public static func splitShared(_ name: String) -> (owner: String, mailbox: String)? {
        guard name.hasPrefix(otherUsersPrefix) else { return nil }
        let rest = name.dropFirst(otherUsersPrefix.count)
        guard let slash = rest.firstIndex(of: delimiter) else { return nil }
        let owner = String(rest[..<slash]), mailbox = String(rest[rest.index(after: slash)...])
        guard !owner.isEmpty, !mailbox.isEmpty else { return nil }
        return (owner, mailbox)
    }

    /// `Other Users/OWNER/MAILBOX`.
    public static func shared(owner: String, mailbox: String) -> String { "\(otherUsersPrefix)\(owner)/\(mailbox)" }
}
