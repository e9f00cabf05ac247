/// What every store decides the same way, whatever keeps its data (store-sqlite, store-postgres):
/// which names are valid, how flags are kept and changed and which rights a change needs, how an
/// ACL entry changes, how passwords become secrets, what a refused recipient is told. Shared so
/// that the stores cannot drift apart; the storage conformance suite checks the rest.
public enum StoreRules {
    /// `local@domain` with the domain lower-cased; nil when it is not an address.
    public static func split(_ address: String) -> (local: String, domain: String)? {
        EnvelopeAddress(address).map { ($0.local, $0.domain) }
    }

    /// A DNS name of letters, digits and hyphens (labels of 1 to 63, 253 in all).
    public static func validDomain(_ name: String) -> Bool {
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return name.count <= 253 && labels.count >= 1 && labels.allSatisfy { label in
            !label.isEmpty && label.count <= 63 && !label.hasPrefix("-") && !label.hasSuffix("-")
                && label.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" }
        }
    }

    /// A mailbox name a user may create: no empty level, no control characters, not under the
    /// shared namespace.
    public static func validMailboxName(_ name: String) -> Bool {
        !name.isEmpty && !name.hasPrefix("/") && !name.hasSuffix("/") && !name.contains("//")
            && !name.unicodeScalars.contains { $0.value < 0x20 || $0 == "\u{7f}" }
            && !name.hasPrefix(MailboxNamespace.otherUsersPrefix)
    }

    /// A message's flags as stored: one string, space-separated.
    public static func flagWords(_ text: String) -> [String] { text.split(separator: " ").map(String.init) }

    /// Flags without duplicates (system flags compared without case), in first-seen order.
    public static func normalise(_ flags: [String]) -> [String] {
        var seen = Set<String>()
        return flags.filter { !$0.isEmpty && seen.insert($0.lowercased()).inserted }
    }

    /// RFC 4314 §4: \Seen needs `s`, \Deleted `t`, anything else `w`; a replace touches every
    /// flag, so it needs one of the three. Throws `permissionDenied` naming the missing right.
    public static func checkFlagRights(_ change: [String], mode: FlagChange, rights: ACLRights, mailbox: String) throws {
        func require(_ right: Character) throws {
            guard rights.contains(right) else { throw StorageError.permissionDenied("no '\(right)' right on \(mailbox)") }
        }
        switch mode {
        case .add, .remove:
            for flag in change where !rights.mayStore(flag) {
                for right in ACLRights.right(for: flag) { try require(right) }
            }
        case .replace:
            if !rights.contains("s") && !rights.contains("w") && !rights.contains("t") { try require("w") }
        }
    }

    /// A message's flags after a STORE, or nil when they do not change (the same set, compared
    /// without case: the same flags in another order are no change, so no new MODSEQ). On a
    /// replace, flags the user may not change keep their state.
    public static func newFlags(old: [String], change: [String], mode: FlagChange, rights: ACLRights) -> [String]? {
        let new: [String]
        switch mode {
        case .add: new = normalise(old + change)
        case .remove: new = old.filter { f in !change.contains { $0.lowercased() == f.lowercased() } }
        case .replace: new = normalise(change.filter { rights.mayStore($0) } + old.filter { !rights.mayStore($0) })
        }
        return Set(new.map { $0.lowercased() }) == Set(old.map { $0.lowercased() }) ? nil : new
    }

    /// An ACL entry's rights after SETACL/DELETEACL.
    public static func applying(_ change: ACLChange, to current: ACLRights) -> ACLRights {
        switch change {
        case .replace(let r): return r
        case .add(let r): return current.union(r)
        case .remove(let r): return current.subtracting(r)
        case .delete: return .none
        }
    }

    /// A salted, slow secret that verifies PLAIN/LOGIN passwords and serves SCRAM-SHA-256.
    public static func secret(_ password: String, iterations: Int) throws -> String {
        guard !password.isEmpty else { throw AccountError.invalidPassword("empty") }
        do {
            return try SCRAMSecret.derive(password: password, algorithm: .sha256, iterations: iterations).encoded
        } catch {
            throw AccountError.invalidPassword("\(error)")
        }
    }

    /// The account part of a recipient: the tag after the delimiter dropped (`user+tag@`).
    public static func baseAccount(_ local: String, domain: String, delimiter: String) -> String {
        let base = delimiter.isEmpty ? local : String(local.components(separatedBy: delimiter).first ?? local)
        return "\(base)@\(domain)"
    }

    /// What a recipient the store will not take is told; nil for a local one.
    public static func refusal(_ check: RecipientCheck, recipient: String) -> RecipientOutcome? {
        switch check {
        case .local: return nil
        case .disabled: return RecipientOutcome(recipient: recipient, status: .failed, reply: MailReply(550, "5.2.1", "mailbox disabled"))
        case .unknownUser: return RecipientOutcome(recipient: recipient, status: .failed, reply: MailReply(550, "5.1.1", "no such user"))
        case .notLocal: return RecipientOutcome(recipient: recipient, status: .failed, reply: MailReply(550, "5.1.2", "not a local domain"))
        }
    }

    /// The outcome for a recipient once the delivery transaction is over: delivered, or over
    /// quota (`quota_exceeded`: temporary 452 4.2.2, permanent 552 5.2.2).
    public static func outcome(recipient: String, account: String, accepted: Bool, quotaIsPermanent: Bool) -> RecipientOutcome {
        if accepted { return RecipientOutcome(recipient: recipient, status: .delivered, reply: MailReply(250, "2.0.0", "delivered to \(account)")) }
        let full = quotaIsPermanent ? MailReply(552, "5.2.2", "mailbox full") : MailReply(452, "4.2.2", "mailbox full")
        return RecipientOutcome(recipient: recipient, status: full.isPermanent ? .failed : .deferred, reply: full)
    }
}
