import PluginAPI

/// Where the webmail sends mail: a submission server (RFC 6409), as any mail client would, with
/// the user's own credentials; the server applies its own policy (sender login maps, limits).
struct SubmissionEndpoint: Sendable, Equatable {
    enum Security: String, Sendable { case none, tls, starttls }
    var host: String
    var port: Int
    var security: Security
    var verifyCertificate: Bool
}

extension Webmail {
    /// Sends through submission; throws with the server's words when it refuses.
    func submit(_ message: OutgoingMessage, user: String, password: String) async throws {
        throw SubmissionFailure(text: "sending is not wired yet")
    }
}

struct SubmissionFailure: Error, CustomStringConvertible {
    var text: String
    var description: String { text }
}
