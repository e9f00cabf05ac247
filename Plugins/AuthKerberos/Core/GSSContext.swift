import CKerberos
import Foundation

// Thin Swift wrappers over the GSSAPI calls the acceptor needs (MIT libgssapi_krb5). Errors carry
// gss_display_status text for the log; nothing here decides policy.

struct GSSError: Error, CustomStringConvertible {
    let call: String
    let major: OM_uint32
    let minor: OM_uint32
    let text: String

    init(_ call: String, _ major: OM_uint32, _ minor: OM_uint32) {
        self.call = call
        self.major = major
        self.minor = minor
        text = GSSError.display(major, type: 1) + "; " + GSSError.display(minor, type: 2)  // GSS_C_GSS_CODE, GSS_C_MECH_CODE
    }

    var description: String { "\(call): \(text)" }

    static func display(_ status: OM_uint32, type: Int32) -> String {
        var parts: [String] = []
        var context: OM_uint32 = 0
        repeat {
            var minor: OM_uint32 = 0
            var buffer = gss_buffer_desc()
            let major = gss_display_status(&minor, status, type, nil, &context, &buffer)
            if major != 0 { break }
            parts.append(GSSBuffer.string(buffer))
            gss_release_buffer(&minor, &buffer)
        } while context != 0 && parts.count < 8
        return parts.joined(separator: ", ")
    }
}

enum GSSBuffer {
    static func bytes(_ buffer: gss_buffer_desc) -> [UInt8] {
        guard buffer.length > 0, let value = buffer.value else { return [] }
        return Array(UnsafeRawBufferPointer(start: value, count: buffer.length))
    }

    static func string(_ buffer: gss_buffer_desc) -> String { String(decoding: bytes(buffer), as: UTF8.self) }

    /// Calls `body` with a gss_buffer_t over `bytes` (valid only during the call).
    static func with<R>(_ bytes: [UInt8], _ body: (gss_buffer_t) throws -> R) rethrows -> R {
        var copy = bytes
        return try copy.withUnsafeMutableBytes { raw in
            var buffer = gss_buffer_desc(length: raw.count, value: raw.baseAddress)
            return try withUnsafeMutablePointer(to: &buffer) { try body($0) }
        }
    }
}

/// One acceptor security context and the credential it accepts with. Used by one request at a
/// time (the exchange table hands it out exclusively).
final class GSSAcceptorContext {
    private var credential: gss_cred_id_t?
    private var context: gss_ctx_id_t?
    /// `user@REALM` of the initiator, once the context is established.
    private(set) var initiator: String?

    /// Acquires acceptor credentials for `service@hostname` from `keytab` only (never the default
    /// keytab, never another principal's key).
    init(service: String, hostname: String, keytab: String) throws {
        var minor: OM_uint32 = 0
        var name: gss_name_t?
        let major = GSSBuffer.with(Array("\(service)@\(hostname)".utf8)) {
            gss_import_name(&minor, $0, postern_gss_nt_hostbased_service(), &name)
        }
        guard postern_gss_error(major) == 0 else { throw GSSError("gss_import_name \(service)@\(hostname)", major, minor) }
        defer { gss_release_name(&minor, &name) }
        var cred: gss_cred_id_t?
        let acquired: OM_uint32 = "keytab".withCString { key in
            keytab.withCString { value in
                var element = gss_key_value_element_desc(key: key, value: value)
                return withUnsafeMutablePointer(to: &element) { elements in
                    var store = gss_key_value_set_desc(count: 1, elements: elements)
                    return gss_acquire_cred_from(&minor, name, OM_uint32.max /* GSS_C_INDEFINITE */, nil, gss_cred_usage_t(GSS_C_ACCEPT),
                                                 &store, &cred, nil, nil)
                }
            }
        }
        guard postern_gss_error(acquired) == 0 else { throw GSSError("gss_acquire_cred_from \(service)@\(hostname)", acquired, minor) }
        credential = cred
    }

    deinit {
        var minor: OM_uint32 = 0
        if context != nil { gss_delete_sec_context(&minor, &context, nil) }
        if credential != nil { gss_release_cred(&minor, &credential) }
    }

    /// One gss_accept_sec_context step: the token for the client, and whether the context is
    /// established.
    func accept(_ token: [UInt8]) throws -> (output: [UInt8], complete: Bool) {
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc()
        var source: gss_name_t?
        let major = GSSBuffer.with(token) { input in
            gss_accept_sec_context(&minor, &context, credential, input, nil, &source, nil, &output, nil, nil, nil)
        }
        defer {
            var m: OM_uint32 = 0
            gss_release_buffer(&m, &output)
            if source != nil { gss_release_name(&m, &source) }
        }
        guard postern_gss_error(major) == 0 else { throw GSSError("gss_accept_sec_context", major, minor) }
        let out = GSSBuffer.bytes(output)
        if major & postern_gss_continue_needed() != 0 { return (out, false) }
        var display = gss_buffer_desc()
        let shown = gss_display_name(&minor, source, &display, nil)
        guard postern_gss_error(shown) == 0 else { throw GSSError("gss_display_name", shown, minor) }
        initiator = GSSBuffer.string(display)
        gss_release_buffer(&minor, &display)
        return (out, true)
    }

    /// gss_wrap without confidentiality (RFC 4752's security-layer messages are integrity-protected only).
    func wrap(_ message: [UInt8]) throws -> [UInt8] {
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc()
        let major = GSSBuffer.with(message) { gss_wrap(&minor, context, 0, 0 /* GSS_C_QOP_DEFAULT */, $0, nil, &output) }
        defer { gss_release_buffer(&minor, &output) }
        guard postern_gss_error(major) == 0 else { throw GSSError("gss_wrap", major, minor) }
        return GSSBuffer.bytes(output)
    }

    func unwrap(_ token: [UInt8]) throws -> [UInt8] {
        var minor: OM_uint32 = 0
        var output = gss_buffer_desc()
        let major = GSSBuffer.with(token) { gss_unwrap(&minor, context, $0, &output, nil, nil) }
        defer { gss_release_buffer(&minor, &output) }
        guard postern_gss_error(major) == 0 else { throw GSSError("gss_unwrap", major, minor) }
        return GSSBuffer.bytes(output)
    }
}
