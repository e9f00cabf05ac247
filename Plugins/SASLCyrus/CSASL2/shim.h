// Cyrus SASL (Debian libsasl2-dev): the server side of its mechanisms, for the sasl-cyrus bridge.
#include <sasl/sasl.h>
