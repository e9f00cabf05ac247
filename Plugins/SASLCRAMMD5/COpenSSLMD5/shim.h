// The system OpenSSL's MD5 with access to its chaining state (MD5_CTX.A..D): CRAM-MD5's stored
// secret is the HMAC-MD5 inner and outer states after one block, and checking a response means
// continuing MD5 from them, which swift-crypto's Insecure.MD5 cannot do. The low-level MD5 API is
// deprecated in OpenSSL 3 but kept; the deprecation attributes are silenced here only.
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/md5.h>
