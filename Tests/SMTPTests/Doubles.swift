import Foundation
import PluginAPI
import PosternTestSupport
import XCTest
@testable import PosternSMTPCore
@testable import PosternSASLPlainCore
@testable import PosternSASLLoginCore
@testable import PosternTableFileCore

// Test doubles of the services an SMTP session uses. `TestRouter` and `TestQueue` stand in for
// the queue plugin's `MailRouter` and `MailQueue` (written elsewhere): the state machine only
// relies on the protocols' contracts, which these follow.

/// Classifies from fixed sets: local domains with their users and suspended accounts, relay
/// domains, everything else remote. Records every address it was asked about.
final class TestRouter: MailRouter, @unchecked Sendable {
    var localDomains: Set<String> = ["example.org", "mx.example.org", "xn--bcher-kva.example"]
    var users: Set<String> = ["alice@example.org", "bob@example.org", "postmaster@mx.example.org", "jürgen@xn--bcher-kva.example",
                              "postmaster@example.org"]
    var disabled: Set<String> = ["dave@example.org"]
    var relayDomains: Set<String> = ["relay.example"]
    var failing = false
    private let lock = NSLock()
    private var _asked: [String] = []
    var asked: [String] { lock.withLock { _asked } }

    struct Down: Error {}

    func classify(_ recipient: String) async throws -> RecipientClass {
        lock.withLock { _asked.append(recipient) }
        if failing { throw Down() }
        let lower = recipient.lowercased()
        let domain = String(lower[lower.index(after: lower.lastIndex(of: "@")!)...])
        if localDomains.contains(domain) {
            if users.contains(lower) { return .local(expandsTo: [lower]) }
            if disabled.contains(lower) { return .disabled }
            return .unknownUser
        }
        return relayDomains.contains(domain) ? .relayDomain : .remote
    }

    func isLocalDomain(_ domain: String) async throws -> Bool { localDomains.contains(domain.lowercased()) }
}

/// Takes the spool file (reads and removes it, as the real queue moves it) and keeps what it got.
final class TestQueue: MailQueue, @unchecked Sendable {
    struct Entry {
        var envelope: Envelope
        var message: [UInt8]
        var holdReason: String? = nil
        var text: String { String(decoding: message, as: UTF8.self) }
    }

    var failing = false
    private let lock = NSLock()
    private var _entries: [Entry] = []
    var entries: [Entry] { lock.withLock { _entries } }

    struct Full: Error {}

    // Queue control is not what the session uses; the double has nothing to control.
    func list() async throws -> [QueueSummary] { [] }
    func show(id: String) async throws -> (QueueSummary, [UInt8])? { nil }
    func hold(ids: [String]) async throws -> Int { 0 }
    func release(ids: [String]) async throws -> Int { 0 }
    func delete(ids: [String]) async throws -> Int { 0 }
    func flush(ids: [String]) async throws -> Int { 0 }
    func requeue(ids: [String]) async throws -> Int { 0 }

    func enqueue(envelope: Envelope, messagePath path: String) async throws -> String {
        try await enqueue(envelope: envelope, messagePath: path, holdReason: nil)
    }

    func enqueue(envelope: Envelope, messagePath path: String, holdReason: String?) async throws -> String {
        if failing { throw Full() }
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        unlink(path)
        return lock.withLock {
            _entries.append(Entry(envelope: envelope, message: [UInt8](data), holdReason: holdReason))
            return "Q\(_entries.count)"
        }
    }
}

/// Passwords in clear for the PLAIN/LOGIN mechanisms.
struct TestBackend: CredentialBackend {
    var passwords = ["alice@example.org": "secret", "bob@example.org": "hunter2"]
    var suspended: Set<String> = ["dave@example.org"]

    func verifyPassword(user: String, password: String) async throws -> CredentialAnswer {
        if suspended.contains(user) { return .suspended(user: user) }
        guard let p = passwords[user] else { return .unknownUser }
        return p == password ? .verified(user: user) : .wrongPassword
    }

    func storedSecret(user: String, scheme: String) async throws -> CredentialAnswer { .unknownUser }
    func lookupUser(_ user: String) async throws -> UserRecord? { passwords[user].map { _ in UserRecord(name: user) } }
}

/// Answers from fixed maps; names not in them are "no such name" (empty), names in `failing` throw.
struct TestDNS: DNSResolver {
    var a: [String: [String]] = [:]
    var ptrs: [String: [String]] = [:]
    var failing: Set<String> = []
    struct ServFail: Error {}

    func mx(_ domain: String) async throws -> [MXRecord] { [] }
    func addresses(_ host: String) async throws -> [String] {
        if failing.contains(host) { throw ServFail() }
        return a[host] ?? []
    }
    func txt(_ name: String) async throws -> [String] { [] }
    func ptr(_ address: String) async throws -> [String] {
        if failing.contains(address) { throw ServFail() }
        return ptrs[address] ?? []
    }
}

struct TestTable: LookupTable {
    var entries: [String: String]
    func lookup(_ key: String) async throws -> [String]? { entries[key.lowercased()].map { [$0] } }
}

/// A filter whose verdict per stage is set by the test, recording the calls it got.
final class TestFilter: MailFilter, FilterTransaction, @unchecked Sendable {
    var verdicts: [String: FilterVerdict] = [:]
    var modifications: [FilterModification] = []
    private let lock = NSLock()
    private var _calls: [String] = []
    var calls: [String] { lock.withLock { _calls } }
    var seenHeaders: [(name: String, value: String)] = []
    var seenBody: [UInt8] = []

    private func note(_ stage: String) -> FilterVerdict {
        lock.withLock { _calls.append(stage) }
        return verdicts[stage] ?? .continue
    }

    func makeTransaction(_ connection: FilterConnection) -> any FilterTransaction { self }
    func connect() async -> FilterVerdict { note("connect") }
    func helo(_ name: String) async -> FilterVerdict { note("helo") }
    func mailFrom(_ sender: String, parameters: [String: String]) async -> FilterVerdict { note("mail") }
    func rcptTo(_ recipient: String, parameters: [String: String]) async -> FilterVerdict {
        lock.withLock { _calls.append("rcpt:\(recipient)") }
        return verdicts["rcpt:\(recipient)"] ?? verdicts["rcpt"] ?? .continue
    }
    func headers(_ fields: [(name: String, value: String)]) async -> FilterVerdict {
        seenHeaders = fields
        return note("headers")
    }
    func body(_ chunk: [UInt8]) async -> FilterVerdict {
        seenBody += chunk
        return note("body")
    }
    func endOfMessage() async -> (FilterVerdict, [FilterModification]) { (note("eom"), modifications) }
    func abort() async { _ = note("abort") }
}

/// One session over the state machine, with the replies as they would go on the wire. With
/// `lmtpStore` set, the session runs in LMTP mode on that store (the real one: `StoreFixture`).
final class SMTPHarness {
    let dir = TempDir("smtp")
    let router = TestRouter()
    let queue = TestQueue()
    var options: SMTPOptions
    var client: SMTPClient
    var mechanisms: [any SASLMechanism] = [PlainMechanism(), LoginMechanism()]
    var tables: [(name: String, table: any LookupTable)] = []
    var dns: (any DNSResolver)?
    var filters: [(name: String, filter: any MailFilter)] = []
    var lmtpStore: (any StorageBackend)?
    var hostname = "mx.example.org"
    private(set) var state: SMTPServerState!

    static let outside = SMTPClient(address: IPAddress("203.0.113.9"), localAddress: IPAddress("192.0.2.25"), isSecure: false,
                                    canStartTLS: true, isLoopback: false, peerDescription: "203.0.113.9:40000")
    static let loopback = SMTPClient(address: IPAddress("127.0.0.1"), localAddress: IPAddress("127.0.0.1"), isSecure: false,
                                     canStartTLS: true, isLoopback: true, peerDescription: "127.0.0.1:40000")

    init(options: SMTPOptions = SMTPOptions(mode: .mx), client: SMTPClient = SMTPHarness.outside) {
        self.options = options
        self.client = client
    }

    var environment: SMTPEnvironment {
        SMTPEnvironment(hostname: hostname, listenerName: "test", sessionID: "S1", options: options,
                        dialect: lmtpStore.map { .lmtp(store: $0) } ?? .smtp(router: router, queue: queue),
                        auth: AuthService(mechanisms: mechanisms, backends: [TestBackend()]), directory: Directory(tables: tables),
                        dns: dns, filters: FilterChain(filters: filters), spoolDirectory: dir.path, logger: Logger(label: "smtp-test"),
                        metrics: SMTPMetrics(counter: { Counter(label: $0, dimensions: $1) }), now: { 1_700_000_000 })
    }

    /// Starts the session; returns the greeting as sent.
    @discardableResult
    func start() async -> String {
        state = SMTPServerState(environment: environment, client: client)
        return Self.wire(await state.start())
    }

    /// Sends bytes as they are; returns everything the server answered.
    func send(bytes: [UInt8]) async -> String {
        Self.wire(await state.receive(bytes))
    }

    /// Sends `text` with CRLF line ends added after each line.
    func send(_ lines: String...) async -> String {
        await send(bytes: Array(lines.map { $0 + "\r\n" }.joined().utf8))
    }

    /// Sends the lines one by one and returns the last line of each answer.
    func each(_ lines: [String]) async -> [String] {
        var out: [String] = []
        for line in lines { out.append(await send(line).trimmedLastLine) }
        return out
    }

    /// Greets with EHLO and returns the session ready for MAIL.
    func ready(ehlo: String = "client.example.net") async {
        await start()
        _ = await send("EHLO \(ehlo)")
    }

    func login(_ user: String = "alice@example.org", _ password: String = "secret") async -> String {
        let token = Data("\0\(user)\0\(password)".utf8).base64EncodedString()
        return await send("AUTH PLAIN \(token)").trimmedLastLine
    }

    /// The spool directory's files (what is left behind).
    var spoolFiles: [String] { (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] }

    static func wire(_ outputs: [SMTPOutput]) -> String {
        outputs.map { o -> String in
            switch o {
            case .reply(let r): return r.encoded()
            case .startTLS: return "<STARTTLS>\r\n"
            case .close: return "<CLOSE>\r\n"
            }
        }.joined()
    }
}

extension String {
    /// The last line without its CRLF (the final line of a reply).
    var trimmedLastLine: String {
        split(separator: "\r\n").last.map(String.init) ?? ""
    }
    var lines: [String] { split(separator: "\r\n").map(String.init) }
}
