// libxcrypt's crypt_r (Debian libcrypt-dev): the system crypt(3) hashes ($1$, $5$, $6$, $2y$,
// $y$, DES) that imported legacy passwords may be stored in (LegacyPasswordHash.swift).
#include <crypt.h>
