import Foundation
import PluginAPI
import PluginPostgres

/// Mailbox change notifications between processes and between store nodes, through PostgreSQL's
/// LISTEN/NOTIFY: every write announces its change with `pg_notify` inside its transaction, so
/// the notification leaves exactly when the change is committed, and every process with
/// subscribers LISTENs on one connection of its own and hands each notification to the
/// subscribers of that mailbox. An IMAP IDLE on node 2 sees a delivery committed by node 1 as
/// soon as PostgreSQL passes it on.
///
/// Subscribers treat a notification as "look again" (IMAP reads the mailbox state anew), so
/// when the listening connection is lost and made again, every subscriber is told to look
/// again: whatever was committed while nobody listened is found that way.
// @unchecked Sendable: handlers and task are only read and written under `lock`; the rest is let
final class ChangeListener: @unchecked Sendable {
    static let channel = "postern_mailbox"
    /// PostgreSQL refuses payloads of 8000 bytes or more: past this, the UIDs are left out
    /// (the change still says "look again").
    static let payloadLimit = 7000

    let configuration: PostgresConnection.Configuration
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    private let lock = NSLock()
    private var handlers: [String: [UUID: @Sendable (MailboxChange) -> Void]] = [:]
    private var task: Task<Void, Never>?

    init(configuration: PostgresConnection.Configuration, eventLoopGroup: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// The subscribers' key for a mailbox: its owner (without case) and own name (INBOX without case).
    static func key(owner: String, mailbox: String) -> String {
        "\(owner.lowercased())\u{0}\(mailbox.uppercased() == "INBOX" ? "INBOX" : mailbox)"
    }

    static func payload(_ change: MailboxChange) -> String {
        var change = change
        var text = (try? JSONEncoder().encode(change)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        if text.utf8.count > payloadLimit {
            change.uids = []
            text = (try? JSONEncoder().encode(change)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        }
        return text
    }

    final class Subscription: ChangeSubscription, @unchecked Sendable {
        let cancelAction: () -> Void
        init(_ cancel: @escaping () -> Void) { cancelAction = cancel }
        func cancel() { cancelAction() }
    }

    func subscribe(key: String, _ handler: @escaping @Sendable (MailboxChange) -> Void) -> any ChangeSubscription {
        let token = UUID()
        lock.withLock {
            handlers[key, default: [:]][token] = handler
            if task == nil { task = Task { [weak self] in await self?.listen() } }
        }
        return Subscription { [weak self] in
            guard let self else { return }
            self.lock.withLock {
                self.handlers[key]?[token] = nil
                if self.handlers[key]?.isEmpty == true { self.handlers[key] = nil }
            }
        }
    }

    func stop() {
        lock.withLock {
            task?.cancel()
            task = nil
        }
    }

    /// LISTENs until cancelled, connecting again a second after any failure.
    private func listen() async {
        var attempt = 0
        while !Task.isCancelled {
            do {
                attempt += 1
                let connection = try await PostgresConnection.connect(on: eventLoopGroup.any(), configuration: configuration,
                                                                      id: attempt, logger: logger)
                defer { Task { try? await connection.close() } }
                try await connection.listen(on: Self.channel) { notifications in
                    // Listening from here on: anything committed before is found by looking again.
                    self.wakeEveryone()
                    for try await notification in notifications { self.dispatch(notification.payload) }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("store-postgres: change notifications interrupted (\(error)); listening again in 1 s")
            }
            wakeEveryone()
            try? await Task.sleep(nanoseconds: 1_000_000_000)
        }
    }

    private func dispatch(_ payload: String) {
        guard let change = try? JSONDecoder().decode(MailboxChange.self, from: Data(payload.utf8)) else { return }
        let targets = lock.withLock { handlers[Self.key(owner: change.user, mailbox: change.mailbox)].map { Array($0.values) } ?? [] }
        for handler in targets { handler(change) }
    }

    private func wakeEveryone() {
        let all = lock.withLock { handlers.values.flatMap { $0.values } }
        for handler in all { handler(MailboxChange(user: "", mailbox: "", kind: .flagsChanged)) }
    }
}

extension PostgresStore: ChangeNotifier {
    /// For other plugins announcing a change they made through this store's API (the store
    /// announces its own inside its transactions).
    func post(_ change: MailboxChange) {
        let (owner, name) = MailboxNamespace.splitShared(change.mailbox) ?? (change.user, change.mailbox)
        var owned = change
        owned.user = owner
        owned.mailbox = name
        let client = client
        Task { try? await client.query("SELECT pg_notify(\(ChangeListener.channel), \(ChangeListener.payload(owned)))") }
    }

    /// Subscribers get the change under the name they subscribed with.
    func subscribe(user: String, mailbox: String, _ handler: @escaping @Sendable (MailboxChange) -> Void) -> any ChangeSubscription {
        let (owner, name) = MailboxNamespace.splitShared(mailbox) ?? (user, mailbox)
        return listener.subscribe(key: ChangeListener.key(owner: owner, mailbox: name)) { change in
            var seen = change
            seen.user = user
            seen.mailbox = mailbox
            handler(seen)
        }
    }
}
