import Foundation
import PluginAPI

/// Counters the session reports to; the plugin backs them with swift-metrics, tests leave them empty.
struct IMAPMetrics: Sendable {
    var command: @Sendable (String) -> Void = { _ in }
    /// `success`, `failure`, `throttled`.
    var login: @Sendable (String) -> Void = { _ in }
}

/// Where the shared, per-worker things of every session come from.
struct IMAPSessionServices: Sendable {
    var store: any StorageBackend
    var auth: AuthService
    var notifier: (any ChangeNotifier)?
    var throttle: LoginThrottle
    var recent: RecentTracker
    var metrics = IMAPMetrics()
}

/// One IMAP4rev1 session (RFC 3501 and the extensions in `capabilities`), apart from any socket:
/// bytes and events come in through `run`'s input stream, responses leave through the
/// `IMAPTransport`. States: not authenticated → authenticated → selected → logout.
///
/// One task runs `run`, handling one input at a time and each command to its end before the next
/// (commands that wait for the store hold back the rest of the pipelined input, so responses keep
/// their order). Nothing else touches the session's state, so it needs no lock.
// @unchecked Sendable: one caller at a time: only the task running run() touches its state; changePosted is under `changeFlag`
final class IMAPSession: @unchecked Sendable {
    enum State: Equatable { case notAuthenticated, authenticated, selected, logout }

    /// The selected mailbox.
    struct Selection {
        /// As the user sees it (INBOX, `Other Users/alice@example.org/Shared`).
        var name: String
        var readOnly: Bool
        var rights: ACLRights
        /// Owner and the owner's own name (for \Recent bookkeeping).
        var owner: String
        var ownName: String
        var view: MailboxView
        var subscription: (any ChangeSubscription)?

        var permanentFlags: [IMAPFlag] { imapPermanentFlags(rights: rights, readOnly: readOnly, keywords: view.keywords) }
    }

    /// An AUTHENTICATE exchange in progress.
    struct Authentication {
        var tag: String
        var exchange: AuthExchange
        /// Set when the mechanism succeeded with final server data: the client's (empty) answer
        /// to that data completes the login (RFC 3501 §6.2.2).
        var succeeded: SASLIdentity?
    }

    let settings: IMAPSessionSettings
    let transport: any IMAPTransport
    let services: IMAPSessionServices
    var logger: Logger
    /// Where `.mailboxChanged` is posted from the store's notification threads.
    let input: AsyncStream<IMAPSessionInput>.Continuation

    var parser: IMAPCommandParser
    var encoder = IMAPResponseEncoder()
    /// Responses not yet handed to the transport.
    var output: [UInt8] = []
    /// Parser events not handled yet (several commands may come in one read).
    var events: [IMAPCommandParser.Event] = []

    var state = State.notAuthenticated
    /// The client's address as an access proxy named it (ID x-originating-ip), for throttling
    /// and the log; only taken from `proxyNetworks`.
    var forwardedClient: String?
    var user: String?
    /// Logged in with ANONYMOUS (RFC 4505): every mailbox opens read-only and writes are refused.
    var anonymousLogin = false
    var selection: Selection?
    var condStore = false
    var qresync = false
    var utf8Accept = false
    /// RFC 5182: the UIDs saved by `SEARCH RETURN (SAVE)`.
    var savedSearch: [UInt32]?
    /// The tag of the IDLE in progress.
    var idleTag: String?
    var authentication: Authentication?
    var failedLogins = 0
    /// After STARTTLS or COMPRESS: input is dropped until the new layer is in place.
    var awaitingLayer = false
    /// COMPRESS=DEFLATE is on.
    var compressing = false
    var closing = false
    var draining = false
    var lastInput = Date().timeIntervalSince1970
    private var commandTimes: [Double] = []
    private let changeFlag = NSLock()
    private var changePosted = false

    init(settings: IMAPSessionSettings, transport: any IMAPTransport, services: IMAPSessionServices, logger: Logger,
         input: AsyncStream<IMAPSessionInput>.Continuation) {
        self.settings = settings
        self.transport = transport
        self.services = services
        self.logger = logger
        self.input = input
        parser = IMAPCommandParser(options: IMAPParserOptions(limits: settings.parserLimits))
    }

    var store: any StorageBackend { services.store }

    // MARK: - The loop

    /// Greets, then handles inputs until the session ends.
    func run(_ inputs: AsyncStream<IMAPSessionInput>) async {
        send(.status(.untagged(.ok, .capability(capabilities), "Postern ready.")))
        flush()
        for await item in inputs {
            await handle(item)
            flush()
            if closing { break }
        }
        end()
    }

    func handle(_ item: IMAPSessionInput) async {
        switch item {
        case .bytes(let bytes):
            transport.consumed(bytes.count)
            guard !awaitingLayer, !closing else { return }
            lastInput = Date().timeIntervalSince1970
            events += parser.feed(bytes)
            if parser.isAwaitingLineAfterLiteral { transport.acknowledgeReceipt() }
            await processEvents()
        case .tlsStarted, .compressionStarted:
            awaitingLayer = false
            events += parser.resume(expecting: .command)
            await processEvents()
        case .mailboxChanged:
            changeFlag.withLock { changePosted = false }
            // Outside IDLE the next command's answer carries the news; during IDLE it goes now.
            if idleTag != nil { await synchronize(expungesAllowed: true) }
        case .tick:
            let limit = user == nil ? settings.loginTimeout : settings.idleTimeout
            if Date().timeIntervalSince1970 - lastInput > limit {
                send(.status(.untagged(.bye, "Disconnected for inactivity.")))
                close()
            }
        case .drain:
            draining = true
            // Between commands (or idling): say goodbye now. A command in progress finishes
            // first, since inputs are handled one at a time.
            send(.status(.untagged(.bye, "Server shutting down.")))
            close()
        case .closed:
            closing = true
        }
    }

    /// Posts a change of the selected mailbox (from the store's notification thread). Several
    /// changes before the session looks count once: it reads the whole state anyway.
    func postMailboxChange() {
        let post = changeFlag.withLock { () -> Bool in
            if changePosted { return false }
            changePosted = true
            return true
        }
        if post { input.yield(.mailboxChanged) }
    }

    private func processEvents() async {
        while !events.isEmpty && !closing {
            let event = events.removeFirst()
            switch event {
            case .command(let command):
                await throttleCommands()
                await execute(command)
                // The parser pauses after AUTHENTICATE, IDLE, STARTTLS and COMPRESS; when the
                // command did not go on into its exchange (refused, or in the wrong state), the
                // next line is a command again.
                if parser.isPaused && authentication == nil && idleTag == nil && !awaitingLayer {
                    events += parser.resume(expecting: .command)
                }
            case .continuationRequest:
                send(.continuation("Ready for literal data"))
            case .error(let error):
                if let auth = authentication, error.tag == auth.tag {
                    authentication = nil
                    send(.status(error.response))
                    events += parser.resume(expecting: .command)
                } else if let tag = idleTag, error.tag == tag {
                    endIdle()
                    send(.status(error.response))
                } else {
                    send(.status(error.response))
                }
            case .authenticationResponse(let response):
                await continueAuthentication(response)
            case .idleDone:
                if let tag = idleTag {
                    endIdle()
                    await synchronize(expungesAllowed: true)
                    send(.status(.tagged(tag, .ok, "Idle completed.")))
                }
            }
            flush()
            // A client that sends without reading cannot make answers pile up here: the next
            // command waits until the client has taken this one (and while it waits, unread
            // input stops being read from the socket once it passes max_buffered_input).
            await transport.waitUntilWritable()
        }
    }

    /// Holds a client to `maxCommandsPerSecond` by waiting, not refusing.
    private func throttleCommands() async {
        guard settings.maxCommandsPerSecond > 0 else { return }
        let now = Date().timeIntervalSince1970
        commandTimes.removeAll { now - $0 >= 1 }
        if commandTimes.count >= settings.maxCommandsPerSecond, let oldest = commandTimes.first {
            flush()
            try? await Task.sleep(nanoseconds: UInt64(max(0, oldest + 1 - now) * 1e9))
        }
        commandTimes.append(Date().timeIntervalSince1970)
    }

    func end() {
        selection?.subscription?.cancel()
        selection = nil
        state = .logout
    }

    func close() {
        guard !closing else { return }
        closing = true
        flush()
        transport.close()
    }

    // MARK: - Output

    func send(_ response: IMAPResponse) {
        encoder.encode(response, into: &output)
        if output.count >= 256 * 1024 { flush() }
    }

    func send(_ responses: [IMAPResponse]) { responses.forEach(send) }

    func flush() {
        guard !output.isEmpty else { return }
        transport.send(output)
        output.removeAll(keepingCapacity: output.capacity <= 1 << 20)
    }

    /// Hands what is written so far to the transport and waits while the client is behind (used
    /// between messages of a long FETCH so an answer never piles up in memory).
    func flushAndWait() async {
        guard output.count >= 64 * 1024 else { return }
        flush()
        await transport.waitUntilWritable()
    }

    // MARK: - Capabilities

    /// The client's address: the connection's, or the one an access proxy named.
    var clientAddress: String { forwardedClient ?? transport.peerAddress }

    /// Whether the connection comes from an access proxy (`proxy_networks`).
    var fromProxy: Bool {
        guard let address = IPAddress(transport.peerAddress) else { return false }
        return settings.proxyNetworks.contains { $0.contains(address) }
    }

    var plaintextAllowed: Bool {
        transport.isSecure || (transport.isLoopback && settings.allowPlaintextOnLoopback)
    }

    var offeredMechanisms: [String] {
        services.auth.offered(secure: transport.isSecure, loopback: transport.isLoopback,
                              plaintextOnLoopback: settings.allowPlaintextOnLoopback,
                              channelBinding: !transport.channelBindings.isEmpty)
    }

    static let baseCapabilities = ["IMAP4rev1", "SASL-IR", "LITERAL+", "ID", "ENABLE", "IDLE"]

    var capabilities: [String] {
        var caps = Self.baseCapabilities
        if state == .notAuthenticated {
            if transport.canStartTLS { caps.append("STARTTLS") }
            if !plaintextAllowed { caps.append("LOGINDISABLED") }
            caps += offeredMechanisms.map { "AUTH=\($0)" }
        } else {
            caps += ["NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN", "LIST-EXTENDED", "LIST-STATUS", "SPECIAL-USE",
                     "QUOTA", "QUOTA=RES-STORAGE", "QUOTA=RES-MESSAGE", "ACL", "RIGHTS=texk", "CONDSTORE", "QRESYNC",
                     "ESEARCH", "SEARCHRES", "SORT", "MULTIAPPEND", "BINARY", "UTF8=ACCEPT", "STATUS=SIZE",
                     "APPENDLIMIT=\(settings.parserLimits.maxAppendMessageSize)"]
            if transport.canCompress { caps.append("COMPRESS=DEFLATE") }
        }
        return caps
    }

    // MARK: - Dispatch

    func execute(_ tagged: IMAPTaggedCommand) async {
        let tag = tagged.tag, command = tagged.command
        services.metrics.command(command.name)
        switch (command.requiredState, state) {
        case (.notAuthenticated, .authenticated), (.notAuthenticated, .selected):
            return send(.status(.tagged(tag, .bad, "Already logged in.")))
        case (.authenticated, .notAuthenticated), (.selected, .notAuthenticated):
            return send(.status(.tagged(tag, .bad, "Log in first.")))
        case (.selected, .authenticated):
            return send(.status(.tagged(tag, .bad, "No mailbox selected.")))
        default:
            break
        }
        if anonymousLogin && Self.changesTheStore(command) {
            return send(.status(.tagged(tag, .no, .noPerm, "Anonymous access is read-only.")))
        }
        let done: IMAPStatusResponse?
        switch command {
        case .capability:
            send(.data(.capability(capabilities)))
            done = .tagged(tag, .ok, "Capability completed.")
        case .noop:
            done = .tagged(tag, .ok, "NOOP completed.")
        case .check:
            done = .tagged(tag, .ok, "Check completed.")
        case .logout:
            send(.status(.untagged(.bye, "Logging out")))
            send(.status(.tagged(tag, .ok, "Logout completed.")))
            close()
            return
        case .id(let fields):
            // An access proxy names the client it serves (RFC 2971 ID, Dovecot's x-originating-ip).
            if state == .notAuthenticated, fromProxy,
               let ip = fields?.first(where: { $0.key.lowercased() == "x-originating-ip" })?.value, IPAddress(ip) != nil {
                forwardedClient = ip
                logger[metadataKey: "client"] = "\(ip)"
            }
            send(.data(.id([IMAPIDField("name", "Postern"), IMAPIDField("vendor", "Postern")])))
            done = .tagged(tag, .ok, "ID completed.")
        case .startTLS:
            await startTLS(tag)
            return
        case .login(let name, let password):
            await login(tag, name, password)
            return
        case .authenticate(let mechanism, let initial):
            await authenticate(tag, mechanism, initial)
            return
        case .compress(let mechanism):
            await compress(tag, mechanism)
            return
        case .enable(let names):
            done = enable(tag, names)
        case .select(let name, let parameters):
            await select(tag, name, parameters, examine: false)
            return
        case .examine(let name, let parameters):
            await select(tag, name, parameters, examine: true)
            return
        case .create(let name): done = await create(tag, name)
        case .delete(let name): done = await delete(tag, name)
        case .rename(let from, let to): done = await rename(tag, from, to)
        case .subscribe(let name): done = await subscribe(tag, name, true)
        case .unsubscribe(let name): done = await subscribe(tag, name, false)
        case .list(let command): done = await list(tag, command)
        case .lsub(let reference, let pattern): done = await lsub(tag, reference, pattern)
        case .namespace:
            send(.data(.namespace(personal: [IMAPNamespaceDescription(prefix: "", delimiter: "/")],
                                  otherUsers: [IMAPNamespaceDescription(prefix: MailboxNamespace.otherUsersPrefix, delimiter: "/")],
                                  shared: nil)))
            done = .tagged(tag, .ok, "Namespace completed.")
        case .status(let name, let items): done = await status(tag, name, items)
        case .append(let append): done = await self.append(tag, append)
        case .idle:
            await idle(tag)
            return
        case .getQuota(let root): done = await getQuota(tag, root)
        case .getQuotaRoot(let name): done = await getQuotaRoot(tag, name)
        case .setQuota:
            done = .tagged(tag, .no, .noPerm, "Quotas are set by the administrator (postern admin quota set).")
        case .setACL(let name, let identifier, let rights): done = await setACL(tag, name, identifier, rights)
        case .deleteACL(let name, let identifier): done = await deleteACL(tag, name, identifier)
        case .getACL(let name): done = await getACL(tag, name)
        case .listRights(let name, let identifier): done = await listRights(tag, name, identifier)
        case .myRights(let name): done = await myRights(tag, name)
        case .close:
            await closeMailbox(expunge: true)
            return send(.status(.tagged(tag, .ok, "Close completed.")))
        case .unselect:
            await closeMailbox(expunge: false)
            return send(.status(.tagged(tag, .ok, "Unselect completed.")))
        case .expunge: done = await expunge(tag, uids: nil)
        case .uidExpunge(let set): done = await expunge(tag, uids: set)
        case .search(let search): done = await self.search(tag, search)
        case .sort(let sort): done = await self.sort(tag, sort)
        case .fetch(let fetch): done = await self.fetch(tag, fetch)
        case .store(let store): done = await self.store(tag, store)
        case .copy(let set, let target, let byUID): done = await copy(tag, set, target, byUID: byUID, move: false)
        case .move(let set, let target, let byUID): done = await copy(tag, set, target, byUID: byUID, move: true)
        }
        guard let done, !closing else { return }
        if selection != nil {
            await synchronize(expungesAllowed: command.row.expungeResponses)
        }
        send(.status(done))
    }

    // MARK: - Keeping the selected mailbox's view current

    /// Reads the store's state of the selected mailbox when it changed (HIGHESTMODSEQ moves with
    /// every change: arrivals, flags, expunges) and sends what the client has not heard yet.
    func synchronize(expungesAllowed: Bool) async {
        guard var sel = selection, let user else { return }
        do {
            let status = try await store.changeStamp(user: user, mailbox: sel.name)
            guard status.uidValidity == sel.view.uidValidity else { throw StorageError.noSuchMailbox(sel.name) }
            if status.highestModseq != sel.view.syncedModseq || status.uidNext != sel.view.uidNext {
                // Usually a few messages changed: read those, and the whole mailbox only when
                // the count says some the view numbers were expunged.
                let changes = try await store.changes(user: user, mailbox: sel.name, since: sel.view.syncedModseq)
                guard changes.uidValidity == sel.view.uidValidity else { throw StorageError.noSuchMailbox(sel.name) }
                var added: [UInt32]
                if let fresh = sel.view.absorb(changes: changes.changed, messageCount: changes.messageCount,
                                               highestModseq: changes.highestModseq, uidNext: changes.uidNext) {
                    added = fresh
                } else {
                    let listing = try await store.messages(user: user, mailbox: sel.name, uids: 1...UInt32.max)
                    added = sel.view.absorb(listing: listing, highestModseq: status.highestModseq, uidNext: status.uidNext)
                }
                if !added.isEmpty {
                    // New arrivals: \Recent for the first read-write session that sees them.
                    let mark = services.recent.mark(owner: sel.owner, mailbox: sel.ownName, uidValidity: sel.view.uidValidity,
                                                    claimUpTo: sel.readOnly ? nil : status.uidNext)
                    sel.view.markRecent(added.filter { $0 >= mark })
                }
            }
            send(sel.view.takeUpdates(MailboxView.Announcing(expungesAllowed: expungesAllowed, condStore: condStore,
                                                              qresync: qresync, permanentFlags: sel.permanentFlags)))
            selection = sel
        } catch StorageError.noSuchMailbox {
            // Deleted or renamed by another session: the client's numbering means nothing now.
            send(.status(.untagged(.bye, "Selected mailbox was deleted, have to disconnect.")))
            close()
        } catch {
            logger.error("cannot read the selected mailbox: \(error)")
        }
    }

    // MARK: - Shared helpers

    /// A store error as a tagged NO (never a connection error: other sessions are unaffected).
    func failure(_ tag: String, _ error: any Error, tryCreate: String? = nil) -> IMAPStatusResponse {
        switch error as? StorageError {
        case .noSuchMailbox(let name)?:
            if let target = tryCreate, name == target {
                return .tagged(tag, .no, .tryCreate, "Mailbox doesn't exist: \(name)")
            }
            return .tagged(tag, .no, .nonExistent, "Mailbox doesn't exist: \(name)")
        case .mailboxExists?:
            return .tagged(tag, .no, .alreadyExists, "Mailbox already exists")
        case .overQuota?:
            return .tagged(tag, .no, .overQuota, "Quota exceeded (mailbox for user is full)")
        case .permissionDenied(let why)?:
            return .tagged(tag, .no, .noPerm, "Permission denied: \(why)")
        case .hasChildren?:
            return .tagged(tag, .no, .hasChildren, "Mailbox has children, delete them first")
        case .noSuchUser?:
            return .tagged(tag, .no, .unavailable, "Account not available")
        case .expunged?:
            return .tagged(tag, .no, .expungeIssued, "Some messages were expunged by another session.")
        case .temporary(let why)?:
            logger.warning("store temporarily unavailable: \(why)")
            return .tagged(tag, .no, .unavailable, "Temporary failure, try again later.")
        case nil:
            logger.error("store failure: \(error)")
            return .tagged(tag, .no, .serverBug, "Internal error occurred. Refer to server log for more information.")
        }
    }

    /// A mailbox name the store takes: INBOX in any case is INBOX; a trailing delimiter dropped.
    static func canonical(_ name: String) -> String {
        var n = name
        while n.count > 1 && n.hasSuffix("/") { n.removeLast() }
        return n.uppercased() == "INBOX" ? "INBOX" : n
    }
}
