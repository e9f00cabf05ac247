import Foundation
import PluginAPI

// AUTH (RFC 4954): SASL exchanges through the host's auth service.
extension SMTPServerState {
    // MARK: - AUTH (RFC 4954)

    func auth(_ mechanism: String, _ initial: String?) async -> [SMTPOutput] {
        attemptedMechanism = mechanism
        guard heloName != nil && extended else { return reply(503, "5.5.1", "send EHLO first") }
        guard authenticatedUser == nil else { return reply(503, "5.5.1", "already authenticated") }
        guard transaction == nil else { return reply(503, "5.5.1", "AUTH not permitted during a mail transaction") }
        // ANONYMOUS (RFC 4505) is refused like an unknown mechanism: submission needs an identity.
        guard let m = env.auth.mechanisms.first(where: { $0.name.uppercased() == mechanism }), !m.isAnonymous else {
            return reply(504, "5.5.4", "unrecognized authentication type")
        }
        if m.isPlaintext && !client.isSecure && !(client.isLoopback && options.allowPlaintextAuthOnLoopback) {
            return authFailed(MailReply(538, "5.7.11", "encryption required for requested authentication mechanism"))
        }
        guard await env.throttle.allows(throttleAddress) else {
            env.metrics.authFailed.increment()
            env.logger.notice("authentication refused: too many failed logins from this address")
            return reply(454, "4.7.0", "too many failed logins from your address, try again later")
        }
        var certificate: [UInt8]?
        if client.isSecure { certificate = await client.clientCertificate?() }
        guard let exchange = env.auth.begin(mechanism: mechanism, context: SASLExchangeContext(
            service: "smtp", serverHostname: env.hostname, isSecure: client.isSecure,
            channelBindings: client.channelBindings, clientCertificate: certificate)) else {
            return reply(504, "5.5.4", "unrecognized authentication type")
        }
        var response: [UInt8]?
        if let initial {
            if initial == "=" {
                response = []
            } else {
                guard let decoded = Base64.decode(initial) else { return authFailed(MailReply(501, "5.5.2", "cannot decode the initial response")) }
                response = decoded
            }
        }
        return await settle(await exchange.start(initialResponse: response), exchange)
    }

    func authResponse(_ exchange: AuthExchange, _ bytes: [UInt8]) async -> [SMTPOutput] {
        let text = String(decoding: bytes, as: UTF8.self)
        if text == "*" {
            phase = .command
            return authFailed(MailReply(501, "5.0.0", "authentication cancelled"))
        }
        guard let decoded = Base64.decode(text) else { return abortAuth(MailReply(501, "5.5.2", "cannot decode the response")) }
        return await settle(await exchange.respond(decoded), exchange)
    }

    func settle(_ progress: AuthExchange.Progress, _ exchange: AuthExchange) async -> [SMTPOutput] {
        switch progress {
        case .challenge(let bytes):
            phase = .auth(exchange)
            return reply(334, nil, Base64.encode(bytes))
        case .success(let identity, let serverFinal?):
            phase = .authFinal(identity)
            return reply(334, nil, Base64.encode(serverFinal))
        case .success(let identity, nil):
            return await authSucceeded(identity)
        case .failure(let failure):
            phase = .command
            switch failure {
            case .temporary(let why):
                env.logger.warning("authentication backend unavailable: \(why)")
                return authFailed(MailReply(454, "4.7.0", "temporary authentication failure"))
            case .cancelled: return authFailed(MailReply(501, "5.0.0", "authentication cancelled"))
            case .malformed: return authFailed(MailReply(501, "5.5.2", "malformed authentication response"))
            case .mechanismUnavailable: return authFailed(MailReply(504, "5.5.4", "unrecognized authentication type"))
            case .encryptionRequired: return authFailed(MailReply(538, "5.7.11", "encryption required for requested authentication mechanism"))
            case .authenticationFailed, .accountDisabled, .authorizationFailed:
                return await credentialsRefused(user: exchange.attemptedUser)
            }
        }
    }

    func authSucceeded(_ identity: SASLIdentity) async -> [SMTPOutput] {
        phase = .command
        // A locked account answers as a wrong password would, right password or not.
        if await env.throttle.isLocked(account: identity.user) {
            return await credentialsRefused(user: identity.user, locked: true)
        }
        // Acting as someone else (a SASL authzid) is not something SMTP submission grants.
        if identity.isAnonymous {
            return authFailed(MailReply(535, "5.7.8", "authentication credentials invalid"))
        }
        if let other = identity.authorizationIdentity {
            env.logger.notice("authorization identity refused", metadata: ["user": "\(identity.user)", "authzid": "\(other)"])
            return authFailed(MailReply(535, "5.7.8", "authentication credentials invalid"))
        }
        authenticatedUser = identity.user
        authenticationMechanism = attemptedMechanism
        await env.throttle.succeeded(throttleAddress, account: identity.user)
        env.metrics.authSucceeded.increment()
        env.logger.info("authenticated", metadata: ["user": "\(identity.user)"])
        return reply(235, "2.7.0", "authentication successful")
    }

    /// `user`: who the client tried to be, when the mechanism got that far (the logger names the
    /// client's address).
    func authFailed(_ r: MailReply, user: String? = nil) -> [SMTPOutput] {
        env.metrics.authFailed.increment()
        env.logger.notice("authentication failed", metadata: ["reply": "\(r)", "user": "\(user ?? "(none given)")"])
        return [.reply(r)]
    }

    /// Wrong secret (or a locked account): counted in the login throttle, answered after its delay.
    func credentialsRefused(user: String?, locked: Bool = false) async -> [SMTPOutput] {
        let delay = locked ? env.throttle.failureDelay : await env.throttle.failed(throttleAddress, account: user)
        if locked { env.logger.notice("authentication refused: account locked by failed logins", metadata: ["user": "\(user ?? "")"]) }
        if delay > 0 { try? await Task.sleep(nanoseconds: UInt64(delay * 1e9)) }
        return authFailed(MailReply(535, "5.7.8", "authentication credentials invalid"), user: user)
    }

    /// The client's address as the login throttle counts it.
    var throttleAddress: String { client.address.map { "\($0)" } ?? "local" }

    func abortAuth(_ r: MailReply) -> [SMTPOutput] {
        phase = .command
        return authFailed(r)
    }
}
