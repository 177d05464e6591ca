/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <sys/stat.h>

#include "metald/fs.h"
#include "metald/image.h"
#include "image_private.h"

struct image_signer {
        EVP_PKEY *pkey;
        struct manifest_key key;
};

static int key_of(EVP_PKEY *pkey, struct manifest_key *ret)
{
        size_t n = MANIFEST_KEY_BYTES;
        struct manifest_key k;

        if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
                return -EINVAL;
        if (EVP_PKEY_get_raw_public_key(pkey, k.pub, &n) != 1 || n != MANIFEST_KEY_BYTES)
                return -EINVAL;
        manifest_key_id(k.pub, k.id);
        *ret = k;
        return 0;
}

/* The PEM text of a key; a private key's text lives in secure memory, cleansed when the BIO is freed. */
static int write_pem(int fd, EVP_PKEY *pkey, bool private_key)
{
        BIO *b = BIO_new(private_key ? BIO_s_secmem() : BIO_s_mem());
        char *p = NULL;
        long n;
        int r;

        if (!b)
                return -ENOMEM;
        if (private_key)
                r = PEM_write_bio_PKCS8PrivateKey(b, pkey, NULL, NULL, 0, NULL, NULL);
        else
                r = PEM_write_bio_PUBKEY(b, pkey);
        if (r != 1) {
                BIO_free(b);
                return -EIO;
        }
        n = BIO_get_mem_data(b, &p);
        r = n > 0 ? image_write_all(fd, p, (size_t)n) : -EIO;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        BIO_free(b);
        return r;
}

static int create_file(const char *path, mode_t mode, EVP_PKEY *pkey, bool private_key)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        int r;

        if (fd < 0)
                return -errno;
        r = fchmod(fd, mode) < 0 ? -errno : write_pem(fd, pkey, private_key);
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r < 0)
                unlink(path);
        return r;
}

static int generate(EVP_PKEY **ret)
{
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
        EVP_PKEY *pkey = NULL;
        int ok;

        if (!ctx)
                return -ENOMEM;
        ok = EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_keygen(ctx, &pkey) == 1;
        EVP_PKEY_CTX_free(ctx);
        if (!ok)
                return -EIO;
        *ret = pkey;
        return 0;
}

int image_keygen(const char *prefix, char ret_key_id[MANIFEST_KEY_ID_HEX + 1], char *why, size_t why_len)
{
        char priv[CONFIG_MAX_PATH_BYTES], pub[CONFIG_MAX_PATH_BYTES];
        struct manifest_key k;
        EVP_PKEY *pkey = NULL;
        int r;

        if (!*prefix || (size_t)snprintf(priv, sizeof(priv), "%s" IMAGE_KEY_SUFFIX, prefix) >= sizeof(priv) ||
            (size_t)snprintf(pub, sizeof(pub), "%s" IMAGE_PUB_SUFFIX, prefix) >= sizeof(pub))
                return image_why(-ENAMETOOLONG, why, why_len, "keygen: '%.64s' is not a usable path prefix", prefix);
        r = generate(&pkey);
        if (r == 0)
                r = key_of(pkey, &k);
        if (r < 0) {
                EVP_PKEY_free(pkey);
                return image_why(r, why, why_len, "keygen: cannot generate an Ed25519 key");
        }
        r = create_file(priv, 0600, pkey, true);
        if (r < 0) {
                EVP_PKEY_free(pkey);
                return image_why(r, why, why_len, "keygen: %s: %s", priv, strerror(-r));
        }
        r = create_file(pub, 0644, pkey, false);
        EVP_PKEY_free(pkey);
        if (r < 0) {
                unlink(priv);
                return image_why(r, why, why_len, "keygen: %s: %s", pub, strerror(-r));
        }
        memcpy(ret_key_id, k.id, sizeof(k.id));
        return 0;
}

/* An encrypted key would make OpenSSL ask for a passphrase on the terminal: refuse it instead. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
        return 0;
}

int image_signer_load(const char *path, struct image_signer **ret, char *why, size_t why_len)
{
        struct image_signer *s;
        uint8_t *pem = NULL;
        size_t len = 0;
        EVP_PKEY *pkey = NULL;
        BIO *b;
        int r;

        r = fs_read_file(path, IMAGE_MAX_KEY_FILE_BYTES, NULL, &pem, &len);
        if (r < 0)
                return image_why(r, why, why_len, "key %s: %s", path, r == -EFBIG ? "too large for a key file" : strerror(-r));
        b = BIO_new_mem_buf(pem, (int)len);
        if (b)
                pkey = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
        BIO_free(b);
        OPENSSL_cleanse(pem, len);
        free(pem);
        s = calloc(1, sizeof(*s));
        if (!pkey || !s || key_of(pkey, &s->key) < 0) {
                EVP_PKEY_free(pkey);
                free(s);
                return image_why(-EINVAL, why, why_len, "key %s: not an unencrypted PEM Ed25519 private key", path);
        }
        s->pkey = pkey;
        *ret = s;
        return 0;
}

void image_signer_free(struct image_signer *s)
{
        if (!s)
                return;
        EVP_PKEY_free(s->pkey);
        free(s);
}

void image_signer_key(const struct image_signer *s, struct manifest_key *ret)
{
        *ret = s->key;
}

int image_sign(const struct image_signer *s, const void *data, size_t len, uint8_t ret[MANIFEST_SIG_BYTES])
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t sig[MANIFEST_SIG_BYTES];
        size_t n = sizeof(sig);
        int ok;

        if (!ctx)
                return -ENOMEM;
        ok = EVP_DigestSignInit(ctx, NULL, NULL, NULL, s->pkey) == 1 &&
             EVP_DigestSign(ctx, sig, &n, data, len) == 1 && n == sizeof(sig);
        EVP_MD_CTX_free(ctx);
        if (!ok)
                return -EIO;
        memcpy(ret, sig, sizeof(sig));
        return 0;
}

int image_sign_dir(const char *dir, const struct image_signer *s, char *why, size_t why_len)
{
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t sig[MANIFEST_SIG_BYTES];
        struct manifest m;
        char reason[256];
        size_t len;
        int r;

        if (dfd < 0)
                return image_why(-errno, why, why_len, "image %s: %s", dir, strerror(errno));
        r = image_read_small(dfd, IMAGE_MANIFEST_FILE, IMAGE_MAX_MANIFEST_BYTES, &data, &len);
        if (r < 0)
                return image_why(r, why, why_len, "image %s: %s: %s", dir, IMAGE_MANIFEST_FILE,
                                 r == -EFBIG ? "larger than 1 MiB" : strerror(-r));
        r = manifest_parse(data, len, &m, reason, sizeof(reason));
        if (r < 0)
                return image_why(r, why, why_len, "image %s: key %s: manifest refused: %s", dir, s->key.id, reason);
        if (strcmp(m.key_id, s->key.id) != 0) {
                r = image_why(-EKEYREJECTED, why, why_len, "image %s: key %s: the manifest names key %s", m.name,
                              s->key.id, m.key_id);
                manifest_free(&m);
                return r;
        }
        r = image_sign(s, data, len, sig);
        if (r == 0)
                r = image_write_atomic(dfd, IMAGE_SIG_FILE, sig, sizeof(sig), 0644);
        if (r < 0)
                image_why(r, why, why_len, "image %s: key %s: cannot sign: %s", m.name, s->key.id, strerror(-r));
        manifest_free(&m);
        return r;
}
