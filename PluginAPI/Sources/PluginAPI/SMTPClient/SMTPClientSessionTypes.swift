import Foundation

// What an SMTP client session is configured with and what it answers: its settings, the
// credentials, the message, the timeouts, the actions it asks of its driver and its result.

/// Which protocol the session speaks: SMTP greets with EHLO (HELO as a fallback) and gets one
/// final reply after DATA; LMTP greets with LHLO and gets one final reply per accepted recipient.
public enum SMTPClientProtocol: String, Sendable {
    case smtp, lmtp
}

/// STARTTLS policy, as Postfix's `smtp_tls_security_level`. Whether a certificate is verified is
/// the TLS context's business (`SMTPClientTLS`); the policy decides whether plaintext is allowed.
public enum SMTPClientTLSPolicy: String, Sendable, CaseIterable {
    /// Never STARTTLS.
    case none
    /// STARTTLS when offered, certificate not checked; plaintext when not offered or refused.
    case may
    /// STARTTLS required with a verified certificate; a host without it is skipped.
    case encrypt
}

/// What a session needs to know about its peer and what it may do there.
public struct SMTPClientSessionSettings: Sendable {
    public var protocolKind: SMTPClientProtocol
    /// The name given in EHLO/HELO/LHLO.
    public var heloName: String
    public var tls: SMTPClientTLSPolicy
    /// The peer as outcome texts name it: `mx.example.org[192.0.2.1]:25`.
    public var peer: String
    /// SASL credentials for this peer (a smarthost or a submission server that wants AUTH), if any.
    public var credentials: SASLClientCredentials? = nil
    /// Whether the password may go without TLS (the peer is on loopback, where nobody can listen
    /// in; the same exception the server side makes).
    public var plaintextAuthAllowed = false
    /// The connection is TLS from its first byte (submissions, port 465, RFC 8314): the session
    /// counts as secure from the greeting on and never sends STARTTLS. The driver puts TLS on the
    /// connection before the greeting and reports a failed handshake with `tlsFailed(_:)`.
    public var implicitTLS = false
    /// With credentials: a server that does not offer AUTH ends the session (`failure` is
    /// `.authentication`) instead of the transaction going ahead without a login. Submission wants
    /// this (mail sent as a user must be sent logged in); relaying to a smarthost does not
    /// (Postfix sends without AUTH when the server offers none).
    public var requireAuthentication = false

    public init(protocolKind: SMTPClientProtocol, heloName: String, tls: SMTPClientTLSPolicy, peer: String,
                credentials: SASLClientCredentials? = nil, plaintextAuthAllowed: Bool = false,
                implicitTLS: Bool = false, requireAuthentication: Bool = false) {
        self.protocolKind = protocolKind
        self.heloName = heloName
        self.tls = tls
        self.peer = peer
        self.credentials = credentials
        self.plaintextAuthAllowed = plaintextAuthAllowed
        self.implicitTLS = implicitTLS
        self.requireAuthentication = requireAuthentication
    }
}

/// A user name and password for AUTH PLAIN or LOGIN (RFC 4954): a smarthost's from the
/// smtp-client's `sasl_password_tables`, or the webmail user's own for submission.
public struct SASLClientCredentials: Sendable, Equatable {
    public var user: String
    public var password: String

    /// `USER:PASSWORD` as a password table holds it (the first colon separates them).
    public init?(tableValue: String) {
        guard let colon = tableValue.firstIndex(of: ":") else { return nil }
        user = String(tableValue[..<colon])
        password = String(tableValue[tableValue.index(after: colon)...])
        guard !user.isEmpty else { return nil }
    }

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// The PLAIN initial response (RFC 4616): empty authorization identity, user, password.
    public var plainResponse: String { Self.base64(Array(([0] + Array(user.utf8) + [0] + Array(password.utf8)))) }

    public static func base64(_ bytes: [UInt8]) -> String {
        String(decoding: Base64Encoder.encode(bytes, lineLength: Int.max), as: UTF8.self)
    }
}

/// The transaction a session is to carry: the envelope, the recipients of this attempt, and what
/// was found in the message.
public struct SMTPOutgoingMessage: Sendable {
    public var envelope: Envelope
    public var recipients: [EnvelopeRecipient]
    public var content: MessageContentScan

    public init(envelope: Envelope, recipients: [EnvelopeRecipient], content: MessageContentScan) {
        self.envelope = envelope
        self.recipients = recipients
        self.content = content
    }
}

/// How long each stage of a session may take (Postfix's `smtp_*_timeout` in fewer knobs).
public struct SMTPClientTimeouts: Sendable {
    public var connect: Double
    public var greeting: Double
    /// Each command's reply, STARTTLS's handshake included.
    public var command: Double
    /// Each block of message content written (the server must keep reading).
    public var dataBlock: Double
    /// The reply after the final dot (the server may be scanning the message).
    public var finalReply: Double

    public init(connect: Double, greeting: Double, command: Double, dataBlock: Double, finalReply: Double) {
        self.connect = connect
        self.greeting = greeting
        self.command = command
        self.dataBlock = dataBlock
        self.finalReply = finalReply
    }

    public func seconds(for stage: SMTPClientSession.Stage) -> Double {
        switch stage {
        case .greeting: return greeting
        case .reply, .tlsHandshake, .done: return command
        case .downgrade, .message: return dataBlock
        case .finalReply: return finalReply
        }
    }
}

/// What the driver must do next, in order. Actions rather than I/O calls, so the session can be
/// tested without sockets and driven by any transport.
public enum SMTPClientAction: Sendable, Equatable {
    /// Write these command lines, each followed by CRLF, in one write.
    case send([String])
    /// Write this line (followed by CRLF) like `send`, but never log it: it carries a password.
    case sendSecret(String)
    /// Put TLS on the connection, then call `tlsEstablished()` or `tlsFailed(_:)`.
    case startTLS
    /// Convert the message to 7-bit (`EightBitDowngrade`), then call `downgradePrepared(_:)`.
    case prepareDowngrade
    /// Write the message (the downgraded one if so) dot-stuffed with the final dot, then call
    /// `messageSent()` and read the final reply.
    case sendMessage(downgraded: Bool)
    /// The session is over: close the connection (after the writes before this action).
    case finish(SMTPClientSessionResult)
}

/// How a session ended.
public enum SMTPClientSessionResult: Sendable, Equatable {
    /// Nothing was decided for any recipient (connection, greeting, EHLO or TLS trouble): the
    /// next host may be tried.
    case tryNextHost(MailReply)
    /// The TLS handshake failed where TLS is opportunistic: the same host may be tried again
    /// without STARTTLS (as Postfix does).
    case retryWithoutTLS(MailReply)
    /// The outcome of every recipient, in the order given.
    case outcomes([RecipientOutcome])
}

/// Why a session ended before its transaction (a `.tryNextHost` or `.retryWithoutTLS` result):
/// the reply text says it for people, this says it for code (a submission caller reports a wrong
/// password differently from a server that is down).
public enum SMTPClientFailure: String, Sendable, Equatable {
    /// The connection, the greeting, EHLO/HELO, a timeout or a protocol error.
    case connection
    /// STARTTLS not offered or refused where TLS is required, or a failed TLS handshake.
    case tls
    /// AUTH refused, not offered (with `requireAuthentication`), no mechanism in common, or not
    /// allowed without TLS.
    case authentication
}

/// One SMTP or LMTP client session: feed it the server's replies (`received(_:)`) and the
/// driver's events (`tlsEstablished()`, `messageSent()`, `connectionLost(_:)`, ...), perform the
/// actions it returns. Every recipient always gets an outcome.
