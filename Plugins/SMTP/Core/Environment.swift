import Foundation
import PluginAPI

/// What the session driver must do besides writing replies.
enum SMTPOutput: Sendable, Equatable {
    case reply(MailReply)
    /// Put TLS in front of the connection now, discarding any plaintext received after STARTTLS,
    /// then call `SMTPServerState.tlsStarted()`.
    case startTLS
    /// Close the connection after the replies before this are written.
    case close
}

/// The connection as the state machine sees it.
struct SMTPClient: Sendable {
    /// The client's IP address; nil on a Unix socket.
    var address: IPAddress?
    /// The address the client connected to (for address literals naming this host).
    var localAddress: IPAddress?
    var isSecure: Bool
    /// Whether the listener offers STARTTLS (tls = "starttls" with a certificate).
    var canStartTLS: Bool
    var isLoopback: Bool
    /// `IP:port` for logs and filters.
    var peerDescription: String
    /// The TLS client certificate the listener verified (DER), read when AUTH needs it (EXTERNAL).
    var clientCertificate: (@Sendable () async -> [UInt8]?)? = nil
    /// The listener's TLS channel bindings (SCRAM-*-PLUS), used once the connection is secure.
    var tlsChannelBindings: [String: [UInt8]] = [:]
    /// What SASL may bind to now: nothing before TLS.
    var channelBindings: [String: [UInt8]] { isSecure ? tlsChannelBindings : [:] }
}

/// The protocol a session speaks, with the services that decide its recipients and take its
/// messages. LMTP (RFC 2033) is a mode of the same state machine, as Dovecot's SMTP_PROTOCOL_LMTP
/// is of its SMTP server: LHLO for EHLO; no STARTTLS, AUTH or BDAT; recipients checked by the
/// store; after DATA, one reply per accepted recipient for its delivery into the store.
enum SMTPDialect: Sendable {
    /// RFC 5321: the queue plugin's router classifies recipients and its queue takes messages.
    case smtp(router: any MailRouter, queue: any MailQueue)
    /// RFC 2033: the store checks recipients and delivers messages itself.
    case lmtp(store: any StorageBackend)
}

extension SMTPDialect {
    var isLMTP: Bool {
        if case .lmtp = self { return true }
        return false
    }
}

/// The services a session works with. The queue and the router are the two PluginAPI protocols
/// the queue plugin provides; tests pass small doubles of them (and of the store, for LMTP).
struct SMTPEnvironment: Sendable {
    var hostname: String
    var listenerName: String
    var sessionID: String
    var options: SMTPOptions
    var dialect: SMTPDialect
    var auth: AuthService
    var directory: Directory
    /// Nil when no DNS plugin is loaded: DNSBL and reverse-DNS checks are skipped.
    var dns: (any DNSResolver)?
    var filters: FilterChain
    /// Where messages are written while they arrive (the queue takes the file by rename).
    var spoolDirectory: String
    var logger: Logger
    var metrics: SMTPMetrics
    /// Failed AUTH attempts, counted with IMAP's and POP3's where the store shares its table.
    var throttle = LoginThrottle(failureDelay: 0, maxFailures: 0)
    /// Seconds since 1970, for the Received: date.
    var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }
    /// The node's event log (smtp listeners; nil for LMTP and the tests' sessions).
    var events: MailEventLog?
}

extension SMTPEnvironment {
    /// An SMTP session's environment (the tests' and the smtp listeners').
    init(hostname: String, listenerName: String, sessionID: String, options: SMTPOptions, router: any MailRouter,
         queue: any MailQueue, auth: AuthService, directory: Directory, dns: (any DNSResolver)?, filters: FilterChain,
         spoolDirectory: String, logger: Logger, metrics: SMTPMetrics,
         now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }) {
        self.init(hostname: hostname, listenerName: listenerName, sessionID: sessionID, options: options,
                  dialect: .smtp(router: router, queue: queue), auth: auth, directory: directory, dns: dns, filters: filters,
                  spoolDirectory: spoolDirectory, logger: logger, metrics: metrics, now: now)
    }
}

/// The plugin's counters (labelled with the plugin by the host).
struct SMTPMetrics: Sendable {
    enum RefusalReason: String, CaseIterable, Sendable {
        case unknownUser = "unknown_user", disabled, relayDenied = "relay_denied", syntax, access, filter, limit, temporary
    }

    let messagesAccepted: Counter
    let messagesRefused: Counter
    let messagesDiscarded: Counter
    let relayDenied: Counter
    let authSucceeded: Counter
    let authFailed: Counter
    /// LMTP: recipients delivered into the store, and refused (at RCPT or by the store after DATA).
    let lmtpDelivered: Counter
    let lmtpRefused: Counter
    private let recipientsRefused: [String: Counter]

    init(counter: (String, [(String, String)]) -> Counter) {
        messagesAccepted = counter("postern_smtp_messages_total", [("result", "accepted")])
        messagesRefused = counter("postern_smtp_messages_total", [("result", "refused")])
        messagesDiscarded = counter("postern_smtp_messages_total", [("result", "discarded")])
        relayDenied = counter("postern_smtp_relay_denied_total", [])
        authSucceeded = counter("postern_smtp_auth_total", [("result", "success")])
        authFailed = counter("postern_smtp_auth_total", [("result", "failure")])
        lmtpDelivered = counter("postern_lmtp_recipients_total", [("result", "delivered")])
        lmtpRefused = counter("postern_lmtp_recipients_total", [("result", "refused")])
        var refused: [String: Counter] = [:]
        for reason in RefusalReason.allCases {
            refused[reason.rawValue] = counter("postern_smtp_recipients_refused_total", [("reason", reason.rawValue)])
        }
        recipientsRefused = refused
    }

    func recipientRefused(_ reason: RefusalReason) {
        recipientsRefused[reason.rawValue]?.increment()
    }
}

/// A message file being written.
final class SpoolFile {
    let path: String
    private var fd: CInt
    private(set) var failed = false

    init(directory: String, name: String) throws {
        path = "\(directory)/\(name)-\(UInt32.random(in: 0...UInt32.max))"
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// Appends bytes; after a failure later writes are skipped and `failed` stays set.
    func write<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        guard !failed, fd >= 0, !bytes.isEmpty else { return }
        let array = Array(bytes)
        var offset = 0
        while offset < array.count {
            let n = array.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, array.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { failed = true; return }
            offset += n
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Closes and removes the file (if the queue has not taken it).
    func discard() {
        close()
        unlink(path)
    }

    deinit { close() }
}
