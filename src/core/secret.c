/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "metald/secret.h"
#include "metald/util.h"

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t encoded_len(size_t nbytes)
{
        return (nbytes * 8 + 5) / 6;
}

int secret_new(size_t nbytes, char *text, size_t cap)
{
        uint8_t raw[SECRET_SESSION_BYTES];
        size_t o = 0;
        uint32_t acc = 0;
        int bits = 0, r;

        if (nbytes > sizeof(raw) || encoded_len(nbytes) + 1 > cap)
                return -EINVAL;
        if ((r = random_bytes(raw, nbytes)) < 0)
                return r;
        for (size_t i = 0; i < nbytes; i++) {
                acc = acc << 8 | raw[i];
                bits += 8;
                while (bits >= 6) {
                        bits -= 6;
                        text[o++] = b64url[(acc >> bits) & 63];
                }
        }
        if (bits > 0)
                text[o++] = b64url[(acc << (6 - bits)) & 63];
        text[o] = '\0';
        OPENSSL_cleanse(raw, sizeof(raw));
        return 0;
}

void secret_hash(const char *text, uint8_t ret[32])
{
        unsigned int len = 32;

        if (EVP_Digest(text, strlen(text), ret, &len, EVP_sha256(), NULL) != 1)
                memset(ret, 0, 32);     /* never equal to a stored hash of a real secret */
}

bool secret_hash_equal(const uint8_t a[32], const uint8_t b[32])
{
        return CRYPTO_memcmp(a, b, 32) == 0;
}

bool secret_is_wellformed(const char *s, size_t nbytes)
{
        size_t n = encoded_len(nbytes);

        if (strnlen(s, n + 1) != n)
                return false;
        return strspn(s, b64url) == n;
}
