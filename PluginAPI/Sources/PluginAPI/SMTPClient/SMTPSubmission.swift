import Foundation

// Message submission (RFC 6409) as a mail client does it: one message, sent as a logged-in user
// to a configured server, with the answer for every recipient. It is `SMTPClientSession` over
// `SMTPClientConnection`, the same code that delivers the smtp-client plugin's mail, with the
// choices a submission client makes (no MX look-up, TLS required unless said otherwise, AUTH
// required when credentials are given), so a plugin that sends mail on a user's behalf (the
// webmail) does not write its own SMTP client.

/// Sends one message through an SMTP submission server.
///
/// ```swift
/// let result = try await SMTPSubmission.send(
///     message: bytes, from: "alice@example.org", to: ["bob@example.net"],
///     server: .init(host: "mail.example.org", port: 587, security: .starttls),
///     credentials: SASLClientCredentials(user: "alice@example.org", password: password),
///     group: eventLoopGroup, logger: logger)
/// for refusal in result.refused { ... }   // e.g. 550 5.1.1 for an unknown recipient
/// ```
///
/// Connection, TLS and login trouble throws `SMTPSubmissionError` (nothing was sent to anyone);
/// once the server answered MAIL, every recipient gets an outcome in the result instead.
public enum SMTPSubmission {
    /// How the connection is protected.
    public enum Security: String, Sendable, CaseIterable {
        /// Plaintext. Credentials then go only to a loopback server (`127.0.0.0/8`, `::1`,
        /// `localhost`), the same exception Postern's own server makes
        /// (`allow_plaintext_auth_on_loopback`); elsewhere the login fails before the password
        /// is sent.
        case none
        /// STARTTLS (RFC 3207), required: a server that does not offer it is not used.
        case starttls
        /// TLS from the first byte (RFC 8314, "submissions", usually port 465).
        case tls
    }

    /// Where to submit: a host name or address literal, a port, and how to protect the connection.
    public struct Server: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var security: Security

        /// `port` nil: 465 for `.tls`, 587 otherwise (RFC 8314, RFC 6409).
        public init(host: String, port: Int? = nil, security: Security) {
            self.host = host
            self.port = port ?? (security == .tls ? 465 : 587)
            self.security = security
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// Whether the host is on this machine: a password may then go without TLS.
        public var isLoopback: Bool {
            let name = host.lowercased()
            return name == "localhost" || name.hasPrefix("127.") || name == "::1"
        }
    }

    /// What the server said to each recipient, in the order given.
    public struct Result: Sendable, Equatable {
        /// One outcome per recipient: `.delivered` (the server took it; 2xx), `.failed` (5xx) or
        /// `.deferred` (4xx, or the connection ended before the server answered for it).
        public var recipients: [RecipientOutcome]
        /// Whether the message went over TLS.
        public var encrypted: Bool

        public init(recipients: [RecipientOutcome], encrypted: Bool) {
            self.recipients = recipients
            self.encrypted = encrypted
        }

        /// The recipients the server accepted the message for.
        public var accepted: [String] { recipients.filter { $0.status == .delivered }.map(\.recipient) }
        /// The recipients it did not, with its reply.
        public var refused: [RecipientOutcome] { recipients.filter { $0.status != .delivered } }
        /// Whether every recipient was accepted.
        public var allAccepted: Bool { recipients.allSatisfy { $0.status == .delivered } }
    }

    /// The default timeouts: an interactive sender waits less than a queue does (Postfix's are
    /// 300 s and more), but a server scanning a large message after the final dot needs time.
    public static let defaultTimeouts = SMTPClientTimeouts(connect: 30, greeting: 60, command: 60, dataBlock: 120, finalReply: 300)

    /// Sends `message` (header and body as they are; line ends are made CRLF and lines starting
    /// with `.` are stuffed on the way) from `from` to `to` through `server`.
    ///
    /// - Parameters:
    ///   - from: the envelope sender (`MAIL FROM`); "" for the null sender.
    ///   - to: the envelope recipients (`RCPT TO`), at least one.
    ///   - credentials: logged in with AUTH PLAIN (LOGIN when the server lacks PLAIN); nil sends
    ///     without logging in. With credentials, a server that does not offer AUTH (after TLS)
    ///     is an `.authentication` error: mail sent as a user must not go unauthenticated.
    ///   - verifyCertificate: check the server's certificate against `trustRoots` (default: the
    ///     system's) and its name against `server.host`. Off only for a server whose certificate
    ///     cannot verify (a self-signed one on the same host); the connection is then encrypted
    ///     but not authenticated.
    ///   - heloName: the name in EHLO; default: this host's name.
    /// - Returns: the outcome of every recipient.
    /// - Throws: `SMTPSubmissionError`: `.invalidRequest` before connecting, `.connection`,
    ///   `.tls` or `.authentication` when the session ended before the transaction.
    public static func send(message: [UInt8], from: String, to: [String], server: Server,
                            credentials: SASLClientCredentials?, verifyCertificate: Bool = true,
                            trustRoots: NIOSSLTrustRoots? = nil, heloName: String? = nil,
                            timeouts: SMTPClientTimeouts = defaultTimeouts,
                            group: any EventLoopGroup, logger: Logger) async throws -> Result {
        guard !to.isEmpty else { throw SMTPSubmissionError.invalidRequest("no recipients") }
        // Through the server's own path parser: an address with a line end, a space or `>`
        // in it would write a second command.
        for address in [from] + to {
            guard !address.contains(where: { $0.isNewline || $0 == "<" || $0 == ">" }),
                  (try? SMTPPath.parse("<\(address)>")) != nil else {
                throw SMTPSubmissionError.invalidRequest("not an address: \"\(address)\"")
            }
        }
        guard !to.contains("") else { throw SMTPSubmissionError.invalidRequest("empty recipient address") }
        guard (1...65535).contains(server.port), !server.host.isEmpty else {
            throw SMTPSubmissionError.invalidRequest("bad server \(server)")
        }
        var tls: SMTPClientTLS?
        if server.security != .none {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if verifyCertificate {
                if let trustRoots { configuration.trustRoots = trustRoots }
            } else {
                configuration.certificateVerification = .none
            }
            let context: NIOSSLContext
            do {
                context = try NIOSSLContext(configuration: configuration)
            } catch {
                throw SMTPSubmissionError.tls(MailReply(454, "4.7.5", "cannot set up TLS: \(SMTPClientConnection.describe(error))"))
            }
            // SNI carries names only; an address literal is checked against the certificate's IP entries.
            let isAddress = (try? SocketAddress(ipAddress: server.host, port: 0)) != nil
            tls = SMTPClientTLS(context: context, serverName: isAddress ? nil : server.host)
        }
        let envelope = Envelope(sender: from, recipients: to.map { EnvelopeRecipient(address: $0) })
        let settings = SMTPClientSessionSettings(
            protocolKind: .smtp, heloName: heloName ?? ProcessInfo.processInfo.hostName,
            tls: server.security == .starttls ? .encrypt : .none, peer: server.description,
            credentials: credentials, plaintextAuthAllowed: server.isLoopback,
            implicitTLS: server.security == .tls, requireAuthentication: credentials != nil)
        let session = SMTPClientSession(settings: settings, message: SMTPOutgoingMessage(
            envelope: envelope, recipients: envelope.recipients, content: MessageContentScan.scan(message)))
        let connection = SMTPClientConnection(group: group, timeouts: timeouts, tls: tls, message: .bytes(message), logger: logger)
        let (result, ended) = await connection.runSession(session, to: .host(server.host, port: server.port))
        switch result {
        case .outcomes(let outcomes):
            return Result(recipients: outcomes, encrypted: ended.isSecure)
        case .tryNextHost(let reply), .retryWithoutTLS(let reply):
            switch ended.failure ?? .connection {
            case .connection: throw SMTPSubmissionError.connection(reply)
            case .tls: throw SMTPSubmissionError.tls(reply)
            case .authentication: throw SMTPSubmissionError.authentication(reply)
            }
        }
    }
}

/// Why `SMTPSubmission.send` sent nothing. Each case carries the reply that says why in words
/// fit for a user (`host mail.example.org:587 said: 535 5.7.8 authentication credentials
/// invalid`), so a caller tells a wrong password from a server that is down without parsing text.
public enum SMTPSubmissionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The arguments cannot make a transaction (no recipients, an address with a line end).
    case invalidRequest(String)
    /// No connection, a refused greeting or EHLO, a timeout, a lost connection or a protocol
    /// error before MAIL.
    case connection(MailReply)
    /// STARTTLS not offered or refused, a failed handshake, a certificate that did not verify.
    case tls(MailReply)
    /// The login was refused, AUTH was not offered, or the password could not go without TLS.
    case authentication(MailReply)

    public var description: String {
        switch self {
        case .invalidRequest(let why): return "cannot submit: \(why)"
        case .connection(let reply), .tls(let reply), .authentication(let reply):
            return "\(reply.code) \(reply.enhanced ?? "") \(reply.text)"
        }
    }
}
