import CSASL2
import Foundation
import PluginAPI

// One libsasl2 mechanism as a Postern `SASLMechanism`. libsasl2 checks the credentials itself
// (sasldb2 through its auxprop plug-in, saslauthd, any Cyrus plug-in), so the exchange never asks
// Postern's credential backends for a password; it asks them only whether the account libsasl2
// named exists and may log in (unless `require_account = false`).

/// What the bridge was configured with, per exchange.
struct CyrusSettings: Sendable {
    /// libsasl2's user realm (DIGEST-MD5's realm, sasldb2's `-u REALM`); empty: the server name.
    var realm: String
    /// The Postern domain of a name libsasl2 returns without `@`, or with `@realm`.
    var domain: String
    /// The server name for digest-uri checks; empty: the listener's hostname.
    var serverFQDN: String
    var requireAccount: Bool
    /// Seconds one libsasl2 call may take (a saslauthd that hangs) before the attempt fails.
    var timeout: Double

    /// The Postern account for the name libsasl2 authenticated: `user` becomes `user@domain`,
    /// `user@REALM` too; any other `user@host` is taken as it is, with the host lower-cased.
    func accountName(_ saslName: String) -> String {
        if let at = saslName.lastIndex(of: "@") {
            let local = saslName[..<at], host = saslName[saslName.index(after: at)...]
            if !domain.isEmpty, !realm.isEmpty, host.lowercased() == realm.lowercased() { return "\(local)@\(domain)" }
            return "\(local)@\(host.lowercased())"
        }
        return domain.isEmpty ? saslName : "\(saslName)@\(domain)"
    }
}

/// Answers whether an account exists and may log in; the plugin looks up the credential backends
/// per call (never captured at activation).
typealias AccountLookup = @Sendable (String) async -> AccountLookupResult

enum AccountLookupResult: Sendable, Equatable {
    case found(canonical: String, enabled: Bool)
    case unknown
    case unavailable(String)
}

struct CyrusMechanism: SASLMechanism {
    let name: String
    let settings: CyrusSettings
    let lookup: AccountLookup

    /// PLAIN and LOGIN carry the password in the clear: offered only under TLS (or on an allowed
    /// loopback listener), as the native plugins are.
    var isPlaintext: Bool { name == "PLAIN" || name == "LOGIN" }

    func makeExchange(_ context: SASLExchangeContext) -> any SASLServerExchange {
        CyrusExchange(mechanism: name, settings: settings, context: context, lookup: lookup)
    }
}

/// One attempt: `sasl_server_new` + `sasl_server_start`, then `sasl_server_step` per response, each
/// on the libsasl2 thread (CyrusLibrary) and bounded by the timeout; `sasl_dispose` at the end.
// @unchecked Sendable: its session drives it one step at a time (AuthExchange awaits each), and
// `conn` is touched only inside closures that run one after another on the serial libsasl2 queue.
final class CyrusExchange: AsyncSASLServerExchange, @unchecked Sendable {
    private enum State { case initial, running, finished }

    let mechanism: String
    let settings: CyrusSettings
    let context: SASLExchangeContext
    let lookup: AccountLookup
    private var state = State.initial
    /// The libsasl2 connection; created and used on the libsasl2 queue only.
    private var conn: OpaquePointer?

    init(mechanism: String, settings: CyrusSettings, context: SASLExchangeContext, lookup: @escaping AccountLookup) {
        self.mechanism = mechanism
        self.settings = settings
        self.context = context
        self.lookup = lookup
    }

    deinit {
        // Disposed on the libsasl2 queue, after any call still running there (a timed-out one).
        let box = ConnectionBox(conn)
        CyrusLibrary.shared.queue.async { box.dispose() }
    }

    // The synchronous entry points are never used: AuthExchange prefers the async ones.
    func start(initialResponse: [UInt8]?) -> SASLStep { .failure(.temporary("the sasl-cyrus exchange runs asynchronously only")) }
    func respond(_ response: [UInt8]) -> SASLStep { .failure(.temporary("the sasl-cyrus exchange runs asynchronously only")) }
    func credentialAnswer(_ answer: CredentialAnswer) -> SASLStep { .failure(.temporary("credential answer without a pending check")) }

    func startAsync(initialResponse: [UInt8]?) async -> SASLStep {
        guard state == .initial else { return finish(.failure(.malformed("exchange already started"))) }
        state = .running
        let service = context.service, fqdn = settings.serverFQDN.isEmpty ? context.serverHostname : settings.serverFQDN
        let realm = settings.realm, mechanism = self.mechanism
        let result = await CyrusLibrary.shared.run(timeout: settings.timeout) { [self] in
            var newConn: OpaquePointer?
            let created = sasl_server_new(service, fqdn, realm.isEmpty ? nil : realm, nil, nil, nil, 0, &newConn)
            guard created == SASL_OK, let newConn else {
                return CyrusResult(code: created, output: [], username: nil, detail: "sasl_server_new failed")
            }
            conn = newConn
            // No SASL security layer: Postern's protocols do not wrap the stream after AUTH
            // (DIGEST-MD5 is limited to qop=auth); TLS is the protection.
            var properties = sasl_security_properties_t(min_ssf: 0, max_ssf: 0, maxbufsize: 0, security_flags: 0,
                                                        property_names: nil, property_values: nil)
            _ = sasl_setprop(newConn, SASL_SEC_PROPS, &properties)
            var out: UnsafePointer<CChar>?
            var outLength: UInt32 = 0
            let code: Int32
            if let initialResponse {
                // NUL-terminated as libsasl2 expects; an empty initial response is a non-NULL
                // pointer with length 0 (NULL means "none").
                let chars = initialResponse.map { CChar(bitPattern: $0) } + [0]
                code = sasl_server_start(newConn, mechanism, chars, UInt32(initialResponse.count), &out, &outLength)
            } else {
                code = sasl_server_start(newConn, mechanism, nil, 0, &out, &outLength)
            }
            return Self.collect(newConn, code, out, outLength)
        }
        return await settle(result)
    }

    func respondAsync(_ response: [UInt8]) async -> SASLStep {
        guard state == .running else { return finish(.failure(.malformed("unexpected response"))) }
        let result = await CyrusLibrary.shared.run(timeout: settings.timeout) { [self] in
            guard let conn else { return CyrusResult(code: SASL_FAIL, output: [], username: nil, detail: "no connection") }
            var out: UnsafePointer<CChar>?
            var outLength: UInt32 = 0
            let chars = response.map { CChar(bitPattern: $0) } + [0]
            let code = sasl_server_step(conn, chars, UInt32(response.count), &out, &outLength)
            return Self.collect(conn, code, out, outLength)
        }
        return await settle(result)
    }

    /// Copies what libsasl2 answered out of its buffers (valid only until the next call).
    private static func collect(_ conn: OpaquePointer, _ code: Int32, _ out: UnsafePointer<CChar>?, _ length: UInt32) -> CyrusResult {
        let output = out.map { pointer in
            Array(UnsafeRawBufferPointer(start: pointer, count: Int(length)))
        } ?? []
        var username: String?
        if code == SASL_OK {
            var value: UnsafeRawPointer?
            if sasl_getprop(conn, SASL_USERNAME, &value) == SASL_OK, let value {
                username = String(cString: value.assumingMemoryBound(to: CChar.self))
            }
        }
        let detail = code == SASL_OK || code == SASL_CONTINUE ? "" : (sasl_errdetail(conn).map { String(cString: $0) } ?? "")
        return CyrusResult(code: code, output: output, username: username, detail: detail)
    }

    /// libsasl2's answer as the next step: a challenge, or the end (with the account check).
    private func settle(_ result: CyrusResult?) async -> SASLStep {
        guard let result else {
            CyrusLibrary.shared.log("libsasl2 call timed out", mechanism: mechanism)
            return finish(.failure(.temporary("libsasl2 did not answer within \(settings.timeout) s")))
        }
        switch result.code {
        case SASL_CONTINUE:
            return .challenge(result.output)
        case SASL_OK:
            guard let username = result.username, !username.isEmpty else {
                return finish(.failure(.temporary("libsasl2 authenticated nobody (no SASL_USERNAME)")))
            }
            let account = settings.accountName(username)
            let final: [UInt8]? = result.output.isEmpty ? nil : result.output
            guard settings.requireAccount else { return finish(.success(SASLIdentity(user: account), serverFinal: final)) }
            switch await lookup(account) {
            case .found(let canonical, true): return finish(.success(SASLIdentity(user: canonical), serverFinal: final))
            case .found: return finish(.failure(.accountDisabled))
            // Authenticated by libsasl2 but no Postern account: the same answer as a wrong password.
            case .unknown:
                CyrusLibrary.shared.log("libsasl2 authenticated a user with no Postern account", mechanism: mechanism, user: account)
                return finish(.failure(.authenticationFailed))
            case .unavailable(let why): return finish(.failure(.temporary(why)))
            }
        default:
            if !result.detail.isEmpty { CyrusLibrary.shared.log("libsasl2: \(result.detail)", mechanism: mechanism) }
            return finish(.failure(Self.failure(result.code)))
        }
    }

    /// libsasl2's error codes as Postern's failures (and so as each protocol's reply).
    static func failure(_ code: Int32) -> SASLFailure {
        switch code {
        case SASL_BADAUTH, SASL_NOUSER, SASL_NOVERIFY, SASL_EXPIRED, SASL_TOOWEAK, SASL_WEAKPASS, SASL_NOUSERPASS:
            return .authenticationFailed
        case SASL_DISABLED: return .accountDisabled
        case SASL_NOAUTHZ: return .authorizationFailed
        case SASL_BADPROT, SASL_BADPARAM: return .malformed("the mechanism refused the client's message")
        case SASL_NOMECH: return .mechanismUnavailable
        case SASL_ENCRYPT: return .encryptionRequired
        default: return .temporary("libsasl2 error \(code)")
        }
    }

    private func finish(_ step: SASLStep) -> SASLStep {
        state = .finished
        return step
    }
}

/// A libsasl2 connection handed to the queue for disposal.
private final class ConnectionBox: @unchecked Sendable {   // @unchecked Sendable: used once, on the libsasl2 queue
    var conn: OpaquePointer?
    init(_ conn: OpaquePointer?) { self.conn = conn }
    func dispose() {
        if conn != nil { sasl_dispose(&conn) }
    }
}

extension CyrusLibrary {
    func log(_ message: String, mechanism: String, user: String? = nil) {
        var metadata: Logger.Metadata = ["mechanism": "\(mechanism)"]
        if let user { metadata["user"] = "\(user)" }
        logger.notice("\(message)", metadata: metadata)
    }
}
