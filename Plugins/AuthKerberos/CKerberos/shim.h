// MIT Kerberos (Debian libkrb5-dev): GSSAPI acceptor and initial-credential verification for
// the auth-kerberos plugin, which only `postern authproxyd` loads. Workers never map libkrb5.
#include <gssapi/gssapi.h>
#include <gssapi/gssapi_krb5.h>
#include <gssapi/gssapi_ext.h>
#include <krb5.h>

// The OID constants are mutable C globals, which Swift 6 refuses to read from concurrent code;
// these accessors return them by value.
static inline gss_OID postern_gss_nt_hostbased_service(void) { return GSS_C_NT_HOSTBASED_SERVICE; }
static inline gss_OID postern_gss_mech_krb5(void) { return (gss_OID)gss_mech_krb5; }
static inline gss_ctx_id_t postern_gss_no_context(void) { return GSS_C_NO_CONTEXT; }
static inline gss_cred_id_t postern_gss_no_credential(void) { return GSS_C_NO_CREDENTIAL; }
static inline gss_name_t postern_gss_no_name(void) { return GSS_C_NO_NAME; }
static inline OM_uint32 postern_gss_error(OM_uint32 major) { return GSS_ERROR(major); }
static inline OM_uint32 postern_gss_continue_needed(void) { return GSS_S_CONTINUE_NEEDED; }
