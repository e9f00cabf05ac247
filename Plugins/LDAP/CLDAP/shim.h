// OpenLDAP's client library (libldap, libldap-dev) for the ldap plugin. Its macros that are casts
// (LDAP_SCOPE_*, LDAP_SASL_SIMPLE, LDAP_OPT_ON/OFF) do not import into Swift, so the few this plugin
// needs are small inline functions here.
#include <ldap.h>
#include <sys/time.h>

static inline int postern_ldap_scope_base(void) { return LDAP_SCOPE_BASE; }
static inline int postern_ldap_scope_subtree(void) { return LDAP_SCOPE_SUBTREE; }

/// Turns referral chasing off: a referral would make libldap connect to a server nobody configured.
static inline int postern_ldap_referrals_off(LDAP *ld) { return ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF); }

/// Simple bind (RFC 4513 §5.1.2) with a password of `length` bytes.
static inline int postern_ldap_simple_bind(LDAP *ld, const char *dn, const char *password, size_t length) {
    struct berval credential;
    credential.bv_val = (char *)password;
    credential.bv_len = length;
    return ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &credential, NULL, NULL, NULL);
}

/// Compare (RFC 4511 §4.10) of one attribute value: LDAP_COMPARE_TRUE, LDAP_COMPARE_FALSE or an error.
static inline int postern_ldap_compare(LDAP *ld, const char *dn, const char *attribute, const char *value, size_t length) {
    struct berval assertion;
    assertion.bv_val = (char *)value;
    assertion.bv_len = length;
    return ldap_compare_ext_s(ld, dn, attribute, &assertion, NULL, NULL);
}

/// A subtree or base search with a time limit (seconds, also sent to the server) and a size limit.
static inline int postern_ldap_search(LDAP *ld, const char *base, int scope, const char *filter, char **attributes,
                                      int seconds, int sizeLimit, LDAPMessage **result) {
    struct timeval timeout;
    timeout.tv_sec = seconds;
    timeout.tv_usec = 0;
    return ldap_search_ext_s(ld, base, scope, filter, attributes, 0, NULL, NULL, &timeout, sizeLimit, result);
}

/// Sets a timeval option (LDAP_OPT_NETWORK_TIMEOUT, LDAP_OPT_TIMEOUT) in whole seconds.
static inline int postern_ldap_set_timeout(LDAP *ld, int option, int seconds) {
    struct timeval timeout;
    timeout.tv_sec = seconds;
    timeout.tv_usec = 0;
    return ldap_set_option(ld, option, &timeout);
}

static inline int postern_ldap_set_int(LDAP *ld, int option, int value) { return ldap_set_option(ld, option, &value); }
