import PluginAPI

/// Where the webmail sends mail: a submission server (RFC 6409), as any mail client would, with
/// the user's own credentials; the server applies its own policy (sender login maps, limits).
struct SubmissionEndpoint: Sendable, Equatable {
    enum Security: String, Sendable { case none, tls, starttls }
    var host: String
    var port: Int
    var security: Security
    var verifyCertificate: Bool

    var server: SMTPSubmission.Server {
        let security: SMTPSubmission.Security = switch self.security {
        case .none: .none
        case .tls: .tls
        case .starttls: .starttls
        }
        return SMTPSubmission.Server(host: host, port: port, security: security)
    }
}

extension Webmail {
    /// Sends through submission (PluginAPI's SMTP client). Throws with the server's words when
    /// it refuses the login, the connection or every recipient (then nothing was sent and the
    /// compose page keeps the message); returns the recipients refused when others were accepted
    /// (the message went: sending it again would duplicate it for the others).
    func submit(_ message: OutgoingMessage, user: String, password: String) async throws -> [String] {
        let result = try await SMTPSubmission.send(
            message: message.rendered(includeBcc: false), from: message.from, to: message.recipients,
            server: options.submission.server, credentials: SASLClientCredentials(user: user, password: password),
            verifyCertificate: options.submission.verifyCertificate, group: plugin.context.eventLoopGroup,
            logger: plugin.context.logger)
        let refused = result.refused.map { "\($0.recipient): \($0.reply)" }
        guard !result.accepted.isEmpty else { throw SubmissionFailure(text: refused.joined(separator: "; ")) }
        return refused
    }
}

struct SubmissionFailure: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}
