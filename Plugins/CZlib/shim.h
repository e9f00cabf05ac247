// The system zlib (raw DEFLATE for IMAP COMPRESS=DEFLATE, RFC 4978).
#include <zlib.h>
