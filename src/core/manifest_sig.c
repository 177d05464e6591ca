/* SPDX-License-Identifier: Apache-2.0 */
/* The verifying side of signed images: Ed25519 public keys, key ids, signatures and digests (OpenSSL EVP). */
#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#include "metald/fs.h"
#include "metald/manifest.h"

int manifest_sha256(const void *data, size_t len, uint8_t ret[MANIFEST_SHA256_BYTES])
{
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned n = 0;

        if (EVP_Digest(len ? data : "", len, md, &n, EVP_sha256(), NULL) != 1 || n != MANIFEST_SHA256_BYTES) {
                ERR_clear_error();
                return -EIO;
        }
        memcpy(ret, md, MANIFEST_SHA256_BYTES);
        return 0;
}

void manifest_hex(const uint8_t *bytes, size_t n, char *ret)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                ret[2 * i] = digits[bytes[i] >> 4];
                ret[2 * i + 1] = digits[bytes[i] & 0xf];
        }
        ret[2 * n] = '\0';
}

/* An empty id (SHA-256 unavailable) matches no manifest's key_id. */
void manifest_key_id(const uint8_t pub[MANIFEST_KEY_BYTES], char ret[MANIFEST_KEY_ID_HEX + 1])
{
        uint8_t md[MANIFEST_SHA256_BYTES];

        if (manifest_sha256(pub, MANIFEST_KEY_BYTES, md) < 0) {
                ret[0] = '\0';
                return;
        }
        manifest_hex(md, MANIFEST_KEY_ID_BYTES, ret);
}

/* Public keys are never encrypted: refuse to ask for a passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
        return -1;
}

int manifest_key_from_pem(const void *pem, size_t len, struct manifest_key *ret)
{
        struct manifest_key k;
        size_t n = sizeof(k.pub);
        EVP_PKEY *pkey;
        BIO *bio;
        int r = 0;

        if (!pem || len == 0)
                return -EINVAL;
        if (len > IMAGE_MAX_KEY_FILE_BYTES)
                return -EFBIG;
        bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return -ENOMEM;
        pkey = PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
        if (!pkey || EVP_PKEY_id(pkey) != EVP_PKEY_ED25519 || EVP_PKEY_get_raw_public_key(pkey, k.pub, &n) != 1 ||
            n != MANIFEST_KEY_BYTES)
                r = -EINVAL;
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        if (r < 0)
                return r;
        manifest_key_id(k.pub, k.id);
        if (!k.id[0])
                return -EIO;
        *ret = k;
        return 0;
}

int manifest_key_load(const char *path, struct manifest_key *ret)
{
        uint8_t *data;
        size_t len;
        int r;

        r = fs_read_file(path, IMAGE_MAX_KEY_FILE_BYTES, NULL, &data, &len);
        if (r < 0)
                return r;
        r = manifest_key_from_pem(data, len, ret);
        free(data);
        return r;
}

int manifest_signature_check(const struct manifest_key *key, const void *data, size_t len,
                             const uint8_t sig[MANIFEST_SIG_BYTES])
{
        EVP_MD_CTX *ctx = NULL;
        EVP_PKEY *pkey;
        int r = -ENOMEM;

        pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, key->pub, MANIFEST_KEY_BYTES);
        if (!pkey)
                goto out;
        ctx = EVP_MD_CTX_new();
        if (!ctx)
                goto out;
        if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
                r = -EIO;
                goto out;
        }
        r = EVP_DigestVerify(ctx, sig, MANIFEST_SIG_BYTES, len ? data : (const void *)"", len) == 1 ? 0 : -EBADMSG;
out:
        EVP_MD_CTX_free(ctx);
        EVP_PKEY_free(pkey);
        ERR_clear_error();
        return r;
}

int manifest_verify(const struct manifest_key *keys, size_t n_keys, const void *data, size_t len,
                    const void *sig, size_t sig_len, size_t *ret_key)
{
        char id[MANIFEST_KEY_ID_HEX + 1];
        bool named = false;
        int r;

        if (len > IMAGE_MAX_MANIFEST_BYTES)
                return -EFBIG;
        if (!sig || sig_len != MANIFEST_SIG_BYTES)
                return -EINVAL;
        r = manifest_peek_key_id(data, len, id);
        if (r < 0)
                return r;
        /* two trusted keys may share an id: each one that does is tried */
        for (size_t i = 0; i < n_keys; i++) {
                if (strcmp(keys[i].id, id) != 0)
                        continue;
                named = true;
                r = manifest_signature_check(&keys[i], data, len, sig);
                if (r == 0) {
                        *ret_key = i;
                        return 0;
                }
                if (r != -EBADMSG)
                        return r;
        }
        return named ? -EBADMSG : -ENOKEY;
}

int manifest_chunk_check(const struct manifest_chunk *c, const void *data, size_t len)
{
        uint8_t md[MANIFEST_SHA256_BYTES];
        int r;

        if (len != c->size)
                return -EBADMSG;
        r = manifest_sha256(data, len, md);
        if (r < 0)
                return r;
        return CRYPTO_memcmp(md, c->sha256, sizeof(md)) == 0 ? 0 : -EBADMSG;
}

struct manifest_sha256_state {
        EVP_MD_CTX *ctx;
};

int manifest_sha256_begin(struct manifest_sha256_state **ret)
{
        struct manifest_sha256_state *st = calloc(1, sizeof(*st));

        if (!st)
                return -ENOMEM;
        st->ctx = EVP_MD_CTX_new();
        if (!st->ctx || EVP_DigestInit_ex(st->ctx, EVP_sha256(), NULL) != 1) {
                int r = st->ctx ? -EIO : -ENOMEM;

                manifest_sha256_free(st);
                ERR_clear_error();
                return r;
        }
        *ret = st;
        return 0;
}

int manifest_sha256_add(struct manifest_sha256_state *st, const void *data, size_t len)
{
        if (len == 0)
                return 0;
        if (EVP_DigestUpdate(st->ctx, data, len) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        return 0;
}

int manifest_sha256_end(struct manifest_sha256_state *st, uint8_t ret[MANIFEST_SHA256_BYTES])
{
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        int r = 0;

        if (EVP_DigestFinal_ex(st->ctx, md, &n) != 1 || n != MANIFEST_SHA256_BYTES) {
                ERR_clear_error();
                r = -EIO;
        } else
                memcpy(ret, md, MANIFEST_SHA256_BYTES);
        manifest_sha256_free(st);
        return r;
}

void manifest_sha256_free(struct manifest_sha256_state *st)
{
        if (!st)
                return;
        EVP_MD_CTX_free(st->ctx);
        free(st);
}
