import Foundation
import PluginAPI

/// Not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE (RFC 3501 §6.2, SASL-IR RFC 4959).
extension IMAPSession {
    func startTLS(_ tag: String) async {
        guard transport.canStartTLS else {
            events += parser.resume(expecting: .command)
            let text = transport.isSecure ? "TLS is already active." : "TLS support isn't enabled."
            return send(.status(.tagged(tag, .bad, text)))
        }
        // RFC 3501 §6.2.1: whatever the client sent after STARTTLS, before the handshake, is
        // not to be read as commands.
        _ = parser.takeBufferedInput()
        events.removeAll()
        flush()
        awaitingLayer = true
        let reply = encoder.encode(.status(.tagged(tag, .ok, "Begin TLS negotiation now.")))
        guard await transport.startTLS(after: reply) else {
            logger.warning("STARTTLS failed")
            return close()
        }
        // Reading resumes at `.tlsStarted`, which the transport posts once TLS is in place.
    }

    /// COMPRESS DEFLATE (RFC 4978), once per connection.
    func compress(_ tag: String, _ mechanism: String) async {
        guard transport.canCompress, mechanism == "DEFLATE" else {
            events += parser.resume(expecting: .command)
            return send(.status(.tagged(tag, .bad, "Unknown compression mechanism.")))
        }
        guard !compressing else {
            events += parser.resume(expecting: .command)
            return send(.status(.tagged(tag, .no, .compressionActive, "DEFLATE active via COMPRESS.")))
        }
        // The client waits for the OK before compressing; anything it sent before is dropped.
        _ = parser.takeBufferedInput()
        events.removeAll()
        flush()
        awaitingLayer = true
        compressing = true
        let reply = encoder.encode(.status(.tagged(tag, .ok, "DEFLATE active.")))
        guard await transport.startCompression(after: reply) else {
            logger.warning("COMPRESS failed")
            return close()
        }
    }

    func login(_ tag: String, _ name: String, _ password: String) async {
        guard await !refuseThrottled(tag) else { return }
        guard plaintextAllowed else {
            return send(.status(.tagged(tag, .no, .privacyRequired,
                                        "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")))
        }
        let answer = await AuthService.ask(services.auth.backends, .password(user: name, password: password), service: "imap")
        switch answer {
        case .verified(let account):
            // A locked account answers as a wrong password would, right password or not.
            guard await !services.throttle.isLocked(account: account) else {
                return await failedLogin(tag, name: name, code: .authenticationFailed, text: "Authentication failed.", locked: true)
            }
            await loggedIn(tag, account)
        case .unavailable(let reason):
            logger.error("credential backends unavailable: \(reason)")
            send(.status(.tagged(tag, .no, .unavailable, "Temporary authentication failure.")))
        default:
            // Unknown user, wrong password and suspended account look alike (no probing).
            await failedLogin(tag, name: name, code: .authenticationFailed, text: "Authentication failed.")
        }
    }

    func authenticate(_ tag: String, _ mechanism: String, _ initial: [UInt8]?) async {
        guard await !refuseThrottled(tag) else { return }
        let offered = offeredMechanisms.contains { $0.uppercased() == mechanism }
        var certificate: [UInt8]?
        if transport.isSecure { certificate = await transport.clientCertificate() }
        let context = SASLExchangeContext(service: "imap", serverHostname: settings.hostname, isSecure: transport.isSecure,
                                          channelBindings: transport.channelBindings, clientCertificate: certificate)
        guard offered, let exchange = services.auth.begin(mechanism: mechanism, context: context) else {
            events += parser.resume(expecting: .command)
            if !plaintextAllowed && services.auth.mechanisms.contains(where: { $0.isPlaintext && $0.name == mechanism }) {
                return send(.status(.tagged(tag, .no, .privacyRequired,
                                            "Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")))
            }
            return send(.status(.tagged(tag, .no, "Unsupported authentication mechanism.")))
        }
        authentication = Authentication(tag: tag, exchange: exchange, succeeded: nil)
        await advance(await exchange.start(initialResponse: initial))
    }

    /// One client line of the exchange.
    func continueAuthentication(_ response: IMAPAuthenticationResponse) async {
        guard let auth = authentication else { return }
        switch response {
        case .cancel:
            authentication = nil
            events += parser.resume(expecting: .command)
            send(.status(.tagged(auth.tag, .bad, "Authentication aborted by client.")))
        case .data(let bytes):
            if let identity = auth.succeeded {
                authentication = nil
                events += parser.resume(expecting: .command)
                return await authenticated(auth.tag, identity.user, anonymous: identity.isAnonymous)
            }
            await advance(await auth.exchange.respond(bytes))
        }
    }

    private func advance(_ progress: AuthExchange.Progress) async {
        guard let auth = authentication else { return }
        switch progress {
        case .challenge(let bytes):
            send(.challenge(bytes))
            events += parser.resume(expecting: .authenticationResponse)
        case .success(var identity, let final):
            // Acting as another user (an authzid): only a master user (an access proxy's
            // credential) from a proxy network, as an account that exists and is enabled.
            if let target = identity.authorizationIdentity {
                guard settings.masterUsers.contains(identity.user.lowercased()), fromProxy,
                      case .verified(let account) = await AuthService.ask(services.auth.backends, .account(user: target), service: "imap") else {
                    authentication = nil
                    events += parser.resume(expecting: .command)
                    logger.notice("authorization refused", metadata: ["user": "\(identity.user)", "as": "\(target)"])
                    return send(.status(.tagged(auth.tag, .no, .authorizationFailed, "Authorization failed.")))
                }
                logger.info("master login", metadata: ["master": "\(identity.user)", "user": "\(account)"])
                identity = SASLIdentity(user: account)
            }
            if let final, !final.isEmpty {
                authentication?.succeeded = identity
                send(.challenge(final))
                events += parser.resume(expecting: .authenticationResponse)
                return
            }
            authentication = nil
            events += parser.resume(expecting: .command)
            await authenticated(auth.tag, identity.user, anonymous: identity.isAnonymous)
        case .failure(let failure):
            authentication = nil
            events += parser.resume(expecting: .command)
            switch failure {
            case .cancelled:
                send(.status(.tagged(auth.tag, .bad, "Authentication aborted by client.")))
            case .temporary(let reason):
                logger.error("authentication unavailable: \(reason)")
                send(.status(.tagged(auth.tag, .no, .unavailable, "Temporary authentication failure.")))
            case .authorizationFailed:
                send(.status(.tagged(auth.tag, .no, .authorizationFailed, "Authorization failed.")))
            case .mechanismUnavailable, .encryptionRequired:
                send(.status(.tagged(auth.tag, .no, "Unsupported authentication mechanism.")))
            case .malformed, .authenticationFailed, .accountDisabled:
                await failedLogin(auth.tag, name: auth.exchange.attemptedUser, code: .authenticationFailed, text: "Authentication failed.")
            }
        }
    }

    /// The end of a successful SASL exchange, unless the account is locked by failures.
    private func authenticated(_ tag: String, _ account: String, anonymous: Bool = false) async {
        guard await !services.throttle.isLocked(account: account) else {
            return await failedLogin(tag, name: account, code: .authenticationFailed, text: "Authentication failed.", locked: true)
        }
        await loggedIn(tag, account, anonymous: anonymous)
    }

    /// Refuses on sight a client address with too many recent failures, and closes.
    private func refuseThrottled(_ tag: String) async -> Bool {
        guard await !services.throttle.allows(clientAddress) else { return false }
        services.metrics.login("throttled")
        logger.notice("login refused: too many failures from \(clientAddress)")
        events.removeAll()
        send(.status(.tagged(tag, .no, .unavailable, "Too many failed logins from your address; try again later.")))
        close()
        return true
    }

    /// A wrong password: counted for the address, answered after a delay (guessing gets slow;
    /// other sessions go on meanwhile), and the connection closed after a few in a row.
    /// `locked`: the secret was right but the account is locked; not counted again.
    private func failedLogin(_ tag: String, name: String?, code: IMAPResponseCode, text: String, locked: Bool = false) async {
        services.metrics.login(locked ? "locked" : "failure")
        if !locked { _ = await services.throttle.failed(clientAddress, account: name) }
        failedLogins += 1
        // The session's logger carries the client's address (peer=); the user is named too, as
        // fail2ban-style tools and an administrator reading the log expect.
        logger.notice(locked ? "login refused: account locked by failed logins" : "login failed",
                      metadata: ["user": "\(name ?? "(none given)")"])
        flush()
        if settings.loginFailureDelay > 0 {
            try? await Task.sleep(nanoseconds: UInt64(settings.loginFailureDelay * 1e9))
        }
        send(.status(.tagged(tag, .no, code, text)))
        if failedLogins >= settings.maxLoginFailuresPerSession {
            send(.status(.untagged(.bye, "Too many failed logins.")))
            close()
        }
    }

    private func loggedIn(_ tag: String, _ account: String, anonymous: Bool = false) async {
        await services.throttle.succeeded(clientAddress, account: account)
        user = account
        anonymousLogin = anonymous
        state = .authenticated
        logger[metadataKey: "user"] = "\(account)"
        logger.info("logged in")
        services.metrics.login("success")
        send(.status(.tagged(tag, .ok, .capability(capabilities), "Logged in")))
    }
}
