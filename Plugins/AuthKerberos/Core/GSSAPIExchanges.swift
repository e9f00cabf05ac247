import Foundation
import PluginAPI

// The server side of SASL GSSAPI (RFC 4752) as authproxyd runs it: context establishment with the
// service keytab, then the security-layer offer (wrapped) and the client's wrapped choice. The
// context has to survive several SASL steps, which reach authproxyd as separate requests, so each
// exchange is kept under a random id the worker sends back, for `lifetime` seconds at most.

/// Where one exchange is.
enum GSSPhase: Equatable {
    /// gss_accept_sec_context until GSS_S_COMPLETE.
    case establishing
    /// Established with a final token sent to the client: its (empty) answer comes next.
    case awaitingEmptyResponse
    /// The wrapped offer was sent: the client's wrapped choice comes next.
    case awaitingLayerChoice
}

final class GSSAPIExchange {
    let context: GSSAcceptorContext
    var phase = GSSPhase.establishing
    let expires: Date

    init(context: GSSAcceptorContext, expires: Date) {
        self.context = context
        self.expires = expires
    }
}

/// The exchanges in progress. An exchange is taken out of the table while a request works on it,
/// so two requests naming the same id cannot use one context at once (the second finds nothing).
// @unchecked Sendable: the table is only touched under `lock`; an exchange taken out belongs to one request
final class GSSAPIExchanges: @unchecked Sendable {
    let keytab: String
    let map: PrincipalMap
    let services: Set<String>
    let lifetime: TimeInterval
    let capacity: Int
    let logger: Logger
    private let lock = NIOLock()
    private var table: [String: GSSAPIExchange] = [:]

    init(keytab: String, map: PrincipalMap, services: Set<String>, lifetime: TimeInterval = 60, capacity: Int = 4096, logger: Logger) {
        self.keytab = keytab
        self.map = map
        self.services = services
        self.lifetime = lifetime
        self.capacity = capacity
        self.logger = logger
    }

    var count: Int { lock.withLock { table.count } }

    func start(service: String, hostname: String, token: [UInt8]) -> AuthProxyReply {
        guard services.contains(service) else { return .refused(.authenticationFailed, reason: "service '\(service)' is not configured") }
        guard !hostname.isEmpty, !hostname.contains("@"), !hostname.contains("/") else {
            return .refused(.malformed, reason: "bad host name")
        }
        let now = Date()
        let room: Bool = lock.withLock {
            table = table.filter { $0.value.expires > now }
            return table.count < capacity
        }
        guard room else { return .refused(.temporary, reason: "too many GSSAPI exchanges in progress") }
        let context: GSSAcceptorContext
        do {
            context = try GSSAcceptorContext(service: service, hostname: hostname, keytab: keytab)
        } catch {
            logger.error("cannot acquire acceptor credentials: \(error)")
            return .refused(.temporary, reason: "no acceptor credentials for \(service)@\(hostname)")
        }
        return advance(GSSAPIExchange(context: context, expires: now.addingTimeInterval(lifetime)), token)
    }

    func step(exchange id: String, token: [UInt8]) -> AuthProxyReply {
        let found: GSSAPIExchange? = lock.withLock { table.removeValue(forKey: id) }
        guard let exchange = found, exchange.expires > Date() else {
            return .refused(.temporary, reason: "no such GSSAPI exchange (expired, or authproxyd restarted)")
        }
        return advance(exchange, token)
    }

    private func keep(_ exchange: GSSAPIExchange, _ token: [UInt8]) -> AuthProxyReply {
        var id = ""
        lock.withLock {
            repeat {
                var rng = SystemRandomNumberGenerator()
                id = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
            } while table[id] != nil
            table[id] = exchange
        }
        return .gssContinue(exchange: id, token: token)
    }

    private func advance(_ exchange: GSSAPIExchange, _ token: [UInt8]) -> AuthProxyReply {
        do {
            switch exchange.phase {
            case .establishing:
                let (output, complete) = try exchange.context.accept(token)
                guard complete else { return keep(exchange, output) }
                if !output.isEmpty {
                    exchange.phase = .awaitingEmptyResponse
                    return keep(exchange, output)
                }
                exchange.phase = .awaitingLayerChoice
                return keep(exchange, try exchange.context.wrap(SecurityLayer.offer))
            case .awaitingEmptyResponse:
                guard token.isEmpty else { return .refused(.malformed, reason: "expected an empty response after the context was established") }
                exchange.phase = .awaitingLayerChoice
                return keep(exchange, try exchange.context.wrap(SecurityLayer.offer))
            case .awaitingLayerChoice:
                let message = try exchange.context.unwrap(token)
                switch SecurityLayer.parseChoice(message) {
                case .failure(let refusal):
                    return .refused(.malformed, reason: "security layer: \(refusal)")
                case .success(let choice):
                    guard let principal = exchange.context.initiator else { return .refused(.temporary, reason: "no initiator name") }
                    guard let user = map.account(forPrincipal: principal) else {
                        logger.notice("principal not mapped to an account", metadata: ["principal": "\(principal)"])
                        return .refused(.authenticationFailed, reason: "principal \(principal) maps to no account")
                    }
                    return .gssComplete(principal: principal, user: user, authzid: choice.authzid)
                }
            }
        } catch let error as GSSError {
            logger.notice("GSSAPI exchange failed: \(error)")
            return .refused(.authenticationFailed, reason: error.description)
        } catch {
            return .refused(.temporary, reason: "\(error)")
        }
    }
}
