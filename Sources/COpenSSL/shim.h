#ifndef CDE_COPENSSL_SHIM_H
#define CDE_COPENSSL_SHIM_H
// OpenSSL libcrypto (Debian: libssl-dev). Only the EVP digest interface is used.
#include <openssl/evp.h>
#include <openssl/crypto.h>
#endif
