import CKerberos
import Foundation
import PluginAPI

// Password checks for PLAIN/LOGIN users whose backend is Kerberos: get initial credentials from
// the KDC with the password (kinit), then verify them with the service keytab
// (krb5_verify_init_creds): the KDC's answer alone proves nothing, since whoever answers on the
// KDC's address could issue a ticket for any password; a ticket for one of our own service keys
// can only come from the real KDC.

struct PasswordVerifier: Sendable {
    let keytab: String
    /// The service principal to verify against; nil: any key in the keytab.
    let verifyPrincipal: String?

    enum Outcome: Equatable {
        case verified
        case unknownPrincipal
        case wrongPassword
        case unavailable(String)
    }

    func check(principal name: String, password: String) -> Outcome {
        var context: krb5_context?
        guard krb5_init_context(&context) == 0, let ctx = context else { return .unavailable("krb5_init_context failed") }
        defer { krb5_free_context(ctx) }
        func message(_ code: krb5_error_code) -> String {
            guard let text = krb5_get_error_message(ctx, code) else { return "error \(code)" }
            defer { krb5_free_error_message(ctx, text) }
            return String(cString: text)
        }

        var principal: krb5_principal?
        var rc = krb5_parse_name(ctx, name, &principal)
        guard rc == 0 else { return .unknownPrincipal }
        defer { krb5_free_principal(ctx, principal) }

        var options: UnsafeMutablePointer<krb5_get_init_creds_opt>?
        guard krb5_get_init_creds_opt_alloc(ctx, &options) == 0 else { return .unavailable("cannot allocate options") }
        defer { krb5_get_init_creds_opt_free(ctx, options) }
        // A password check, not a login session: short, not forwardable, no addresses.
        krb5_get_init_creds_opt_set_tkt_life(options, 300)
        krb5_get_init_creds_opt_set_forwardable(options, 0)
        krb5_get_init_creds_opt_set_proxiable(options, 0)

        var creds = krb5_creds()
        rc = krb5_get_init_creds_password(ctx, &creds, principal, password, nil, nil, 0, nil, options)
        if rc != 0 {
            switch Int(rc) {
            case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN: return .unknownPrincipal
            case KRB5KDC_ERR_PREAUTH_FAILED, KRB5KRB_AP_ERR_BAD_INTEGRITY, KRB5KDC_ERR_CLIENT_REVOKED, KRB5KDC_ERR_KEY_EXP:
                return .wrongPassword
            default: return .unavailable("getting initial credentials: \(message(rc))")
            }
        }
        defer { krb5_free_cred_contents(ctx, &creds) }

        var keytab: krb5_keytab?
        rc = krb5_kt_resolve(ctx, "FILE:" + self.keytab, &keytab)
        guard rc == 0 else { return .unavailable("keytab: \(message(rc))") }
        defer { krb5_kt_close(ctx, keytab) }
        var server: krb5_principal?
        if let verifyPrincipal {
            rc = krb5_parse_name(ctx, verifyPrincipal, &server)
            guard rc == 0 else { return .unavailable("verify_principal: \(message(rc))") }
        } else {
            // MIT's default (server nil) tries only host/ keys, and a mail keytab holds imap/,
            // smtp/ and pop/ ones: take the first key of the client's realm instead.
            rc = Self.firstPrincipal(ctx, keytab: keytab, realmOf: principal, into: &server)
            guard rc == 0 else { return .unavailable("no key of the user's realm in the keytab \(self.keytab): \(message(rc))") }
        }
        defer { if server != nil { krb5_free_principal(ctx, server) } }
        var verifyOptions = krb5_verify_init_creds_opt()
        krb5_verify_init_creds_opt_init(&verifyOptions)
        // Fail when the keytab cannot be used, rather than trusting the KDC's answer alone.
        krb5_verify_init_creds_opt_set_ap_req_nofail(&verifyOptions, 1)
        rc = krb5_verify_init_creds(ctx, &creds, server, keytab, nil, &verifyOptions)
        guard rc == 0 else {
            switch Int(rc) {
            case KRB5KRB_AP_ERR_BAD_INTEGRITY, KRB5KRB_AP_ERR_MODIFIED:
                // The ticket was not made with our service key: not our KDC.
                return .wrongPassword
            default: return .unavailable("verifying the credentials with the keytab: \(message(rc))")
            }
        }
        return .verified
    }

    /// The first principal in `keytab` whose realm is the realm of `client`.
    static func firstPrincipal(_ ctx: krb5_context, keytab: krb5_keytab?, realmOf client: krb5_principal?,
                               into server: inout krb5_principal?) -> krb5_error_code {
        var cursor: krb5_kt_cursor?
        var rc = krb5_kt_start_seq_get(ctx, keytab, &cursor)
        guard rc == 0 else { return rc }
        defer { krb5_kt_end_seq_get(ctx, keytab, &cursor) }
        var entry = krb5_keytab_entry()
        while krb5_kt_next_entry(ctx, keytab, &entry, &cursor) == 0 {
            defer { krb5_free_keytab_entry_contents(ctx, &entry) }
            if krb5_realm_compare(ctx, entry.principal, client) != 0 {
                rc = krb5_copy_principal(ctx, entry.principal, &server)
                return rc
            }
        }
        return krb5_error_code(KRB5_KT_NOTFOUND)
    }
}
