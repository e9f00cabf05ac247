import Foundation
import PluginAPI

/// What reaches a session from outside, in order: bytes from the client and events. One task
/// consumes these one at a time, so the session never needs a lock for its own state.
enum IMAPSessionInput: Sendable {
    /// Bytes read from the connection (decrypted when TLS is on).
    case bytes([UInt8])
    /// The store announced a change to the selected mailbox (maybe from another process).
    case mailboxChanged
    /// TLS was put in place: bytes before this were sent in plaintext after STARTTLS and are
    /// dropped (RFC 3501 §6.2.1); bytes after it come through TLS.
    case tlsStarted
    /// COMPRESS=DEFLATE was put in place: bytes before this were sent uncompressed after COMPRESS
    /// (the client must wait for the OK, RFC 4978 §3) and are dropped; bytes after it are inflated.
    case compressionStarted
    /// A periodic wake-up to check the inactivity timeout.
    case tick
    /// The worker is draining (reload or stop): finish the command and say BYE.
    case drain
    /// The client went away.
    case closed
}

/// The connection as the session sees it: where responses go and what the socket layer does.
/// Implemented over a NIO channel by the plugin and by an in-memory fake in the tests.
protocol IMAPTransport: AnyObject, Sendable {
    /// Queues bytes for the client, in call order.
    func send(_ bytes: [UInt8])
    /// Returns once the client has taken enough of what was sent (flow control for big answers).
    func waitUntilWritable() async
    /// Sends `reply` in plaintext, then puts TLS in place before anything else is read, and
    /// posts `.tlsStarted` into the input at that point. False when TLS cannot start.
    func startTLS(after reply: [UInt8]) async -> Bool
    /// Sends `reply` uncompressed, then puts DEFLATE in both directions before anything else is
    /// read, and posts `.compressionStarted` into the input at that point. False when it cannot.
    func startCompression(after reply: [UInt8]) async -> Bool
    /// Sends what is queued, then closes.
    func close()
    /// The session has taken `count` bytes of input (for reading back-pressure).
    func consumed(_ count: Int)
    /// Has what was received acknowledged now rather than after the kernel's ACK delay.
    func acknowledgeReceipt()

    var isSecure: Bool { get }
    var canStartTLS: Bool { get }
    /// Whether COMPRESS=DEFLATE can be offered.
    var canCompress: Bool { get }
    var isLoopback: Bool { get }
    /// The client's address without port, for the login throttle and logs.
    var peerAddress: String { get }
    /// The TLS client certificate (DER) the listener verified, for SASL EXTERNAL; nil if none.
    func clientCertificate() async -> [UInt8]?
    /// The TLS channel bindings by type while the connection is secure (SCRAM-*-PLUS).
    var channelBindings: [String: [UInt8]] { get }
}

extension IMAPTransport {
    func clientCertificate() async -> [UInt8]? { nil }
    /// A transport without TLS material binds to nothing (no -PLUS mechanisms).
    var channelBindings: [String: [UInt8]] { [:] }
}

/// Settings of one session: the plugin's section and the listener's options together.
struct IMAPSessionSettings: Sendable {
    var hostname = "localhost"
    /// Pause after a failed login before answering (slows password guessing).
    var loginFailureDelay: Double = 2
    /// Autologout after this long without input once logged in (RFC 3501 §5.4: at least 30 minutes).
    var idleTimeout: Double = 30 * 60
    /// ... and before login.
    var loginTimeout: Double = 60
    /// Plaintext LOGIN and mechanisms without TLS when the client is on loopback.
    var allowPlaintextOnLoopback = false
    var parserLimits = IMAPParserLimits()
    /// Commands taken per second at most (0: no limit); faster clients are slowed, not refused.
    var maxCommandsPerSecond = 0
    /// Failed logins per failure window after which a session is refused on sight.
    var maxLoginFailuresPerSession = 3
    /// Accounts that may act as any user (an access proxy's credential), lower-cased.
    var masterUsers: Set<String> = []
    /// Where access proxies connect from: master logins and ID x-originating-ip are taken from
    /// these addresses only.
    var proxyNetworks: [IPNetwork] = []
}

/// \Recent across sessions and processes (RFC 3501 §2.3.2.): the first session to see a message
/// claims it. Per mailbox a file holds the lowest UID no read-write session has been shown yet;
/// a SELECT (or a selected session noticing arrivals) marks messages at or above that UID as
/// recent for itself and moves the mark to UIDNEXT, under an exclusive `flock`, so two sessions
/// never both claim a message. EXAMINE looks without moving the mark. This is Dovecot's rule; a
/// renamed mailbox starts again (its messages may show as recent once more).
// @unchecked Sendable: its only stored property is a let directory; the marks live in files, shared under flock
final class RecentTracker: @unchecked Sendable {
    let directory: String

    init(directory: String) {
        self.directory = directory
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// The file of one mailbox: its owner, own name and UIDVALIDITY (a recreated mailbox starts
    /// afresh).
    private func path(owner: String, mailbox: String, uidValidity: UInt32) -> String {
        let key = Array("\(owner.lowercased())\u{0}\(mailbox)\u{0}\(uidValidity)".utf8)
        let digest = SHA256.hash(data: key).prefix(16).map { String(format: "%02x", $0) }.joined()
        return "\(directory)/\(digest)"
    }

    /// The lowest unclaimed UID; with `claimUpTo`, moves it to that UID (when higher) and returns
    /// the value from before.
    func mark(owner: String, mailbox: String, uidValidity: UInt32, claimUpTo: UInt32?) -> UInt32 {
        let file = path(owner: owner, mailbox: mailbox, uidValidity: uidValidity)
        let fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return 1 }
        defer { close(fd) }
        flock(fd, claimUpTo == nil ? LOCK_SH : LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = pread(fd, &buffer, buffer.count, 0)
        let current = n > 0 ? UInt32(String(decoding: buffer[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1 : 1
        if let claim = claimUpTo, claim > current {
            let text = Array("\(claim)\n".utf8)
            _ = ftruncate(fd, 0)
            _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        }
        return current
    }
}

/// The rights-dependent PERMANENTFLAGS (RFC 3501 §7.1, RFC 4314 §4): \Seen with `s`, \Deleted
/// with `t`, the other flags and new keywords with `w`.
func imapPermanentFlags(rights: ACLRights, readOnly: Bool, keywords: [String]) -> [IMAPFlag] {
    guard !readOnly else { return [] }
    var flags: [IMAPFlag] = []
    if rights.contains("w") { flags += [.answered, .flagged] }
    if rights.contains("t") { flags.append(.deleted) }
    if rights.contains("s") { flags.append(.seen) }
    if rights.contains("w") { flags += [.draft] + keywords.map(IMAPFlag.init) + [.mayCreateKeywords] }
    return flags
}
