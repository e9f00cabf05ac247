import CLDAP
import Foundation

// One libldap handle (`LDAP*`) and the blocking calls this plugin makes on it. libldap blocks the
// calling thread, so these run only on the plugin's own thread pool (LDAPPool), never on a NIO
// event loop, and a handle is used by one thread at a time (the pool hands it out exclusively).

/// What went wrong talking to a directory server.
enum LDAPError: Error, Equatable, CustomStringConvertible {
    /// The server cannot be reached or stopped answering (connection refused, closed, timed out,
    /// TLS failed): try another server, and tell the client to come back later.
    case unavailable(String)
    /// The server answered with an error result code (other than the expected ones).
    case result(code: Int32, operation: String, message: String)
    /// The configuration cannot work (bad URI, unreadable CA file).
    case configuration(String)

    var description: String {
        switch self {
        case .unavailable(let why): return "directory unavailable: \(why)"
        case .result(let code, let op, let message): return "\(op): LDAP result \(code) (\(message))"
        case .configuration(let why): return "LDAP configuration: \(why)"
        }
    }

    /// libldap's result codes that mean the connection, not the question, failed.
    static func isConnectionFailure(_ code: Int32) -> Bool {
        [LDAP_SERVER_DOWN, LDAP_TIMEOUT, LDAP_CONNECT_ERROR, LDAP_UNAVAILABLE, LDAP_BUSY].contains(code)
    }
}

/// One entry of a search result: its DN and the values of the attributes asked for, by lower-cased
/// attribute name.
struct LDAPEntry: Sendable, Equatable {
    var dn: String
    var attributes: [String: [String]]

    /// The values of `name` (any case), empty when the entry has none.
    func values(_ name: String) -> [String] { attributes[name.lowercased()] ?? [] }
    func first(_ name: String) -> String? { values(name).first }
}

/// How connections are made: URI, TLS and timeouts. One per configured server.
struct LDAPConnectionSettings: Sendable {
    var uri: String
    /// StartTLS (RFC 4511 §4.14) after connecting; `ldaps://` URIs use implicit TLS instead.
    var startTLS: Bool
    /// CA certificates to verify the server with (PEM); empty: the system's.
    var caFile: String
    /// Certificate and host name checks (on unless the configuration turns them off).
    var verifyCertificates: Bool
    /// Connect timeout and the limit on every operation, in seconds.
    var connectTimeout: Int
    var operationTimeout: Int
}

// @unchecked Sendable: the handle is used by one thread at a time; LDAPPool hands it out exclusively
final class LDAPConnection: @unchecked Sendable {
    let settings: LDAPConnectionSettings
    private var handle: OpaquePointer?
    /// The DN the handle is bound as (nil: anonymous or the user's own bind since the last service bind).
    var boundAs: String?
    /// Whether the last bind was a user's password check: the next service operation binds again.
    var needsServiceBind = false

    /// Connects (and starts TLS when asked). Throws `.unavailable` when the server cannot be reached.
    init(settings: LDAPConnectionSettings) throws {
        self.settings = settings
        var ld: OpaquePointer?
        let rc = ldap_initialize(&ld, settings.uri)
        guard rc == LDAP_SUCCESS, let ld else { throw LDAPError.configuration("bad server URI \(settings.uri): \(Self.text(rc))") }
        handle = ld
        do {
            try configure(ld)
            if settings.startTLS && !settings.uri.lowercased().hasPrefix("ldaps:") {
                let tls = ldap_start_tls_s(ld, nil, nil)
                guard tls == LDAP_SUCCESS else { throw LDAPError.unavailable("\(settings.uri): StartTLS failed: \(Self.text(tls))\(diagnostic(ld))") }
            } else {
                // ldap_initialize does not connect; an anonymous "who am I" would cost a round trip,
                // so the first bind or search connects. ldap_connect makes that happen here, so a
                // dead server is found while choosing one, not in the middle of a question.
                let connected = ldap_connect(ld)
                guard connected == LDAP_SUCCESS else { throw LDAPError.unavailable("\(settings.uri): \(Self.text(connected))\(diagnostic(ld))") }
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    func close() {
        if let h = handle { ldap_unbind_ext_s(h, nil, nil) }
        handle = nil
    }

    private func configure(_ ld: OpaquePointer) throws {
        var version = LDAP_VERSION3
        ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version)
        postern_ldap_referrals_off(ld)
        postern_ldap_set_timeout(ld, LDAP_OPT_NETWORK_TIMEOUT, Int32(settings.connectTimeout))
        postern_ldap_set_timeout(ld, LDAP_OPT_TIMEOUT, Int32(settings.operationTimeout))
        // TLS options on this handle only (not libldap's process-wide defaults), applied by NEWCTX.
        if !settings.caFile.isEmpty {
            guard FileManager.default.isReadableFile(atPath: settings.caFile) else {
                throw LDAPError.configuration("cannot read ca_file \(settings.caFile)")
            }
            settings.caFile.withCString { _ = ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, $0) }
        }
        postern_ldap_set_int(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, settings.verifyCertificates ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER)
        postern_ldap_set_int(ld, LDAP_OPT_X_TLS_NEWCTX, 0)
    }

    private var ld: OpaquePointer {
        get throws {
            guard let h = handle else { throw LDAPError.unavailable("connection closed") }
            return h
        }
    }

    /// Simple bind. Returns true for success, false for invalid credentials (result 49); throws
    /// for everything else. An empty password is refused here, before the server sees it: RFC
    /// 4513 §5.1.2 makes such a bind an *unauthenticated* one, which servers accept.
    func bind(dn: String, password: String) throws -> Bool {
        // NUL cannot be in a password (SASL PLAIN separates fields with it); refused rather than cut short.
        let bytes = Array(password.utf8)
        guard !bytes.isEmpty, !bytes.contains(0) else { return false }
        let ld = try self.ld
        let rc = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { postern_ldap_simple_bind(ld, dn, $0.baseAddress, $0.count) }
        }
        switch rc {
        case LDAP_SUCCESS:
            boundAs = dn
            return true
        case LDAP_INVALID_CREDENTIALS:
            boundAs = nil
            return false
        default:
            boundAs = nil
            throw try failure(rc, "bind")
        }
    }

    /// Compares one attribute value: true, false, or throws (no such entry or attribute included).
    func compare(dn: String, attribute: String, value: String) throws -> Bool {
        let bytes = Array(value.utf8)
        guard !bytes.contains(0) else { return false }
        let ld = try self.ld
        let rc = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { postern_ldap_compare(ld, dn, attribute, $0.baseAddress, $0.count) }
        }
        switch rc {
        case LDAP_COMPARE_TRUE: return true
        case LDAP_COMPARE_FALSE: return false
        default: throw try failure(rc, "compare")
        }
    }

    /// A search; a size limit exceeded returns what arrived (as white pages wants).
    func search(base: String, subtree: Bool, filter: String, attributes: [String], sizeLimit: Int) throws -> [LDAPEntry] {
        let ld = try self.ld
        var cAttributes: [UnsafeMutablePointer<CChar>?] = attributes.map { strdup($0) } + [nil]
        defer { for a in cAttributes { free(a) } }
        var result: OpaquePointer?
        let rc = cAttributes.withUnsafeMutableBufferPointer { attrs in
            postern_ldap_search(ld, base, subtree ? postern_ldap_scope_subtree() : postern_ldap_scope_base(), filter,
                                attrs.baseAddress, Int32(settings.operationTimeout), Int32(sizeLimit), &result)
        }
        defer { if let result { ldap_msgfree(result) } }
        guard rc == LDAP_SUCCESS || rc == LDAP_SIZELIMIT_EXCEEDED || rc == LDAP_NO_SUCH_OBJECT else { throw try failure(rc, "search") }
        var entries: [LDAPEntry] = []
        var entry = ldap_first_entry(ld, result)
        while let e = entry {
            var dn = ""
            if let cdn = ldap_get_dn(ld, e) {
                dn = String(cString: cdn)
                ldap_memfree(cdn)
            }
            var values: [String: [String]] = [:]
            for attribute in attributes {
                guard let bervals = ldap_get_values_len(ld, e, attribute) else { continue }
                var list: [String] = []
                var i = 0
                while let bv = bervals[i] {
                    let buffer = UnsafeRawBufferPointer(start: bv.pointee.bv_val, count: Int(bv.pointee.bv_len))
                    list.append(String(decoding: buffer, as: UTF8.self))
                    i += 1
                }
                ldap_value_free_len(bervals)
                values[attribute.lowercased()] = list
            }
            entries.append(LDAPEntry(dn: dn, attributes: values))
            entry = ldap_next_entry(ld, e)
        }
        return entries
    }

    private func failure(_ rc: Int32, _ operation: String) throws -> LDAPError {
        let ld = try self.ld
        if LDAPError.isConnectionFailure(rc) {
            return .unavailable("\(settings.uri): \(operation): \(Self.text(rc))\(diagnostic(ld))")
        }
        return .result(code: rc, operation: operation, message: Self.text(rc) + diagnostic(ld))
    }

    /// libldap's extra text for the last error on the handle, if any.
    private func diagnostic(_ ld: OpaquePointer) -> String {
        var message: UnsafeMutablePointer<CChar>?
        ldap_get_option(ld, LDAP_OPT_DIAGNOSTIC_MESSAGE, &message)
        defer { if let message { ldap_memfree(message) } }
        guard let message, message.pointee != 0 else { return "" }
        return ": " + String(cString: message)
    }

    static func text(_ rc: Int32) -> String { String(cString: ldap_err2string(rc)) }
}
