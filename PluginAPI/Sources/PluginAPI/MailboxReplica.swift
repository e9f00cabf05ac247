/// Writing a mailbox as another server holds it, UIDs and all: what `postern admin user move`
/// needs so that clients keep their caches (same UIDVALIDITY, the same UID for the same message,
/// flags and MODSEQs carried over; RFC 3501 §2.3.1.1, RFC 7162). IMAP APPEND cannot do this (the
/// server picks the UID), so stores that can be the target of a move implement it; both of
/// Postern's stores do. Reads use the ordinary `StorageBackend` methods (`changeStamp`,
/// `messages`).
public protocol MailboxReplicaStore: Sendable {
    /// Makes `user`'s mailbox `name` an empty mailbox with `uidValidity` (creating it and any
    /// missing parents; removing every message it held): the start of a copy, or what follows
    /// when the source's UIDVALIDITY changed.
    func resetReplica(user: String, mailbox: String, uidValidity: UInt32, specialUse: String?) async throws

    /// Applies one batch of differences in one transaction: messages added with their own UIDs
    /// (each above every UID the mailbox has held), flags replaced, messages removed; then
    /// UIDNEXT raised to at least `uidNext` and HIGHESTMODSEQ to at least `highestModseq`.
    /// Sessions watching the mailbox are told, as for any change.
    func applyReplica(user: String, mailbox: String, _ changes: ReplicaChanges) async throws
}

/// One message as the source holds it.
public struct ReplicatedMessage: Sendable, Equatable {
    public var uid: UInt32
    public var flags: [String]
    /// The source's MODSEQ (CONDSTORE); nil when it has none, and the store assigns its own.
    public var modseq: UInt64?
    public var internalDate: Int64
    public var content: [UInt8]

    public init(uid: UInt32, flags: [String], modseq: UInt64?, internalDate: Int64, content: [UInt8]) {
        self.uid = uid
        self.flags = flags
        self.modseq = modseq
        self.internalDate = internalDate
        self.content = content
    }
}

/// A message whose flags changed at the source.
public struct ReplicatedFlags: Sendable, Equatable {
    public var uid: UInt32
    public var flags: [String]
    public var modseq: UInt64?

    public init(uid: UInt32, flags: [String], modseq: UInt64?) {
        self.uid = uid
        self.flags = flags
        self.modseq = modseq
    }
}

/// What `applyReplica` writes.
public struct ReplicaChanges: Sendable, Equatable {
    public var add: [ReplicatedMessage]
    public var flags: [ReplicatedFlags]
    public var remove: [UInt32]
    public var uidNext: UInt32
    public var highestModseq: UInt64?

    public init(add: [ReplicatedMessage] = [], flags: [ReplicatedFlags] = [], remove: [UInt32] = [], uidNext: UInt32, highestModseq: UInt64?) {
        self.add = add
        self.flags = flags
        self.remove = remove
        self.uidNext = uidNext
        self.highestModseq = highestModseq
    }

    public var isEmpty: Bool { add.isEmpty && flags.isEmpty && remove.isEmpty }
}
