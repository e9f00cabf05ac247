import PluginAPI

/// A LIST/LSUB pattern (RFC 3501 §6.3.8): the reference and the mailbox name joined, with `*`
/// matching anything and `%` anything but the hierarchy delimiter. INBOX matches without case.
struct MailboxPattern {
    static let delimiter: Unicode.Scalar = "/"
    /// Patterns longer than this match nothing: matching costs the product of the lengths, and
    /// no client needs a pattern this long.
    static let maxLength = 1024

    let scalars: [Unicode.Scalar]

    init(reference: String, pattern: String) {
        var joined = reference
        if reference.hasSuffix("/") && pattern.hasPrefix("/") {
            joined += pattern.dropFirst()
        } else {
            joined += pattern
        }
        scalars = Array(joined.unicodeScalars)
    }

    init(_ pattern: String) { self.init(reference: "", pattern: pattern) }

    /// The pattern without wildcards, up to the first wildcard (to skip subtrees that cannot match).
    var literalPrefix: String {
        var out = String.UnicodeScalarView()
        for s in scalars {
            if s == "*" || s == "%" { break }
            out.append(s)
        }
        return String(out)
    }

    func matches(_ name: String) -> Bool {
        guard scalars.count <= Self.maxLength else { return false }
        let text = Array(name.unicodeScalars)
        // INBOX and its children: the first five letters compare without case.
        let inboxPrefix = text.count >= 5 && String(String.UnicodeScalarView(text[0..<5])).uppercased() == "INBOX"
            && (text.count == 5 || text[5] == Self.delimiter)
        func same(_ p: Unicode.Scalar, _ c: Unicode.Scalar, at i: Int) -> Bool {
            if p == c { return true }
            guard inboxPrefix && i < 5 else { return false }
            return String(p).uppercased() == String(c).uppercased()
        }
        // A set of pattern positions, advanced one name character at a time (no backtracking,
        // so a pattern of many wildcards costs length × length, never exponential time).
        var states = [Bool](repeating: false, count: scalars.count + 1)
        func close(_ s: inout [Bool]) {
            for j in 0..<scalars.count where s[j] && (scalars[j] == "*" || scalars[j] == "%") { s[j + 1] = true }
        }
        states[0] = true
        close(&states)
        for (i, c) in text.enumerated() {
            var next = [Bool](repeating: false, count: scalars.count + 1)
            var any = false
            for j in 0..<scalars.count where states[j] {
                let p = scalars[j]
                if p == "*" || (p == "%" && c != Self.delimiter) {
                    next[j] = true
                    any = true
                } else if p != "*" && p != "%" && same(p, c, at: i) {
                    next[j + 1] = true
                    any = true
                }
            }
            guard any else { return false }
            close(&next)
            states = next
        }
        return states[scalars.count]
    }
}

/// The mailbox tree as one user sees it: the mailboxes that exist (own and shared), the names
/// above them that do not exist (such as `Other Users` and `Other Users/alice@example.org`), and
/// which names have children.
struct MailboxTree {
    struct Node: Equatable {
        var name: String
        /// Exists (selectable); false for a name only above existing ones (\Noselect).
        var exists: Bool
        var hasChildren: Bool
        /// Special-use attributes (`\Sent`, ...).
        var specialUse: [String]
    }

    /// In display order: INBOX first, then by name.
    private(set) var nodes: [Node] = []
    private var index: [String: Int] = [:]

    init(_ mailboxes: [MailboxInfo]) {
        var all: [String: Node] = [:]
        for box in mailboxes {
            all[box.name] = Node(name: box.name, exists: true, hasChildren: false, specialUse: box.attributes.filter { $0.hasPrefix("\\") })
        }
        for box in mailboxes {
            var parts = box.name.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            while parts.count > 1 {
                parts.removeLast()
                let parent = parts.joined(separator: "/")
                if all[parent] == nil { all[parent] = Node(name: parent, exists: false, hasChildren: true, specialUse: []) }
                all[parent]!.hasChildren = true
            }
        }
        nodes = all.values.sorted { a, b in
            if a.name == "INBOX" { return b.name != "INBOX" }
            if b.name == "INBOX" { return false }
            // Personal names before the other-users namespace, each group by name.
            let aShared = a.name.hasPrefix("Other Users"), bShared = b.name.hasPrefix("Other Users")
            if aShared != bShared { return !aShared }
            return a.name < b.name
        }
        for (i, n) in nodes.enumerated() { index[n.name] = i }
    }

    func node(_ name: String) -> Node? {
        index[name.uppercased() == "INBOX" ? "INBOX" : name].map { nodes[$0] }
    }

    func exists(_ name: String) -> Bool { node(name)?.exists ?? false }

    /// Whether some name below `name` is in `names` (for CHILDINFO and LSUB's parents).
    static func hasDescendant(_ name: String, in names: Set<String>) -> Bool {
        let prefix = name + "/"
        return names.contains { $0.hasPrefix(prefix) }
    }
}
