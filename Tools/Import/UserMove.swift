import Foundation
import PluginAPI

/// `postern admin user move`: copies an account from any IMAP server (another Postern store, a
/// Dovecot) into this node's store as the source holds it: the same mailboxes, UIDVALIDITY, UIDs,
/// flags and (with CONDSTORE) MODSEQs, so clients resynchronise nothing. Each round makes every
/// target mailbox equal to its source (adds, flag changes, removals); the first round copies,
/// later ones catch up with what changed meanwhile, and a round that finds nothing to do ends
/// the copy. The source is only read (EXAMINE, BODY.PEEK).
public enum UserMove {
    public struct Source: Sendable {
        public var endpoint: IMAPEndpoint
        /// The account at the source.
        public var user: String
        /// Logs in as `user` with this account's password (a master login: Postern's
        /// `master_users`, Dovecot's master passdb); nil logs in as `user` itself.
        public var masterUser: String?
        public var password: String

        public init(endpoint: IMAPEndpoint, user: String, masterUser: String?, password: String) {
            self.endpoint = endpoint
            self.user = user
            self.masterUser = masterUser
            self.password = password
        }
    }

    /// What one round did.
    public struct Round: Sendable, Codable, Equatable {
        public var mailboxes = 0
        public var added = 0
        public var bytes = 0
        public var flagsChanged = 0
        public var removed = 0
        /// Mailboxes (re)started from empty: new, or their UIDVALIDITY changed at the source.
        public var reset: [String] = []
        /// Mailboxes that exist here but no longer at the source, removed.
        public var deleted: [String] = []

        public init() {}

        public var changes: Int { added + flagsChanged + removed }

        public var summary: String {
            "\(mailboxes) mailboxes, \(added) messages added (\(bytes) bytes), \(flagsChanged) flag changes, \(removed) removed"
                + (reset.isEmpty ? "" : ", started: \(reset.joined(separator: ", "))")
                + (deleted.isEmpty ? "" : ", deleted: \(deleted.joined(separator: ", "))")
        }
    }

    /// Changes a copy round may still find for the switch-over to go ahead.
    static let smallRound = 50

    /// Messages fetched per command while copying.
    static let fetchBatch = 100

    /// Logs in at the source; the caller closes the connection.
    public static func connect(_ source: Source, group: any EventLoopGroup) async throws -> IMAPClientConnection {
        let connection = try await IMAPClientConnection.connect(to: source.endpoint, group: group)
        do {
            if let master = source.masterUser {
                // RFC 4616: authorization identity (the user), authentication identity (the master).
                let response = Array("\(source.user)\u{0}\(master)\u{0}\(source.password)".utf8)
                guard await connection.capabilities.contains("SASL-IR") else {
                    throw IMAPClientError.protocolError("the source does not offer SASL-IR, which a master login through AUTHENTICATE PLAIN needs here")
                }
                try await connection.run([.text("AUTHENTICATE PLAIN " + Data(response).base64EncodedString())])
            } else {
                try await connection.run([.text("LOGIN "), .literal(Array(source.user.utf8)), .text(" "), .literal(Array(source.password.utf8))])
            }
            let known = await connection.capabilities
            if known.isEmpty || !known.contains("IMAP4REV1") {
                try await connection.run([.text("CAPABILITY")])
            }
        } catch {
            await connection.close()
            throw error
        }
        return connection
    }

    /// The whole move: rounds until one finds little to do (at most `maxRounds`); then, when
    /// given, `switchOver` (what points the account's clients and mail at this store: a routing
    /// entry changed, the proxies reloaded), a wait of `settle` seconds (sessions still open on
    /// the source end: a proxy reload lets them drain), and rounds again until quiet, which carry
    /// over whatever reached the source meanwhile (mail delivered there late gets new UIDs
    /// here, after the mail this store received since the switch; see `MoveState`). The source keeps its copy: moving back is the
    /// same command on the old store, and copies only what changed since.
    public static func run(_ source: Source, user: String, into store: any StorageBackend & MailboxReplicaStore,
                           group: any EventLoopGroup, maxRounds: Int = 5,
                           switchOver: (@Sendable () async throws -> Void)? = nil, settle: Double = 0,
                           progress: @Sendable (String) -> Void = { _ in }) async throws -> [Round] {
        var connection = try await connect(source, group: group)
        var rounds: [Round] = []
        var state = MoveState()
        /// Rounds until one changes at most `enough` things; throws past `maxRounds` when `strict`.
        func repeatRounds(_ phase: String, enough: Int, strict: Bool) async throws {
            for n in 1...max(1, maxRounds) {
                if await connection.isClosed { connection = try await connect(source, group: group) }
                let round = try await self.round(connection, user: user, into: store, state: &state)
                rounds.append(round)
                progress("\(phase) round \(n): \(round.summary)")
                if round.changes <= enough && round.reset.isEmpty && round.deleted.isEmpty { return }
            }
            if strict {
                throw IMAPClientError.protocolError("the source still changed after \(maxRounds) rounds; run the move again, or raise --rounds")
            }
        }
        do {
            // While the source still receives mail a round is never empty: before a switch-over,
            // a round with little left to copy is enough (the final rounds take the rest), and
            // stopping after maxRounds is no failure (the copy is only ahead of time).
            try await repeatRounds("copy", enough: switchOver == nil ? 0 : smallRound, strict: false)
            if switchOver == nil, let last = rounds.last, last.changes > 0 {
                progress("the source is still changing: switch the account over, then run the move again to carry the rest")
            }
            if let switchOver {
                progress("switching over")
                try await switchOver()
                // From here this store takes the account's new mail, with UIDs of its own: what
                // still reaches the source is added after it, never in its place.
                state.switched = true
                if settle > 0 {
                    progress("waiting \(settle) s for sessions on the source to end")
                    try await Task.sleep(nanoseconds: UInt64(settle * 1_000_000_000))
                }
                // Nothing reaches the source any more: these rounds end with one that finds nothing.
                try await repeatRounds("final", enough: 0, strict: true)
            }
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
        return rounds
    }
}
