/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "metald/image.h"
#include "metald/log.h"
#include "image_private.h"

int image_keyring_add(struct image_keyring *kr, const char *pem_path, bool revoked, char *why, size_t why_len)
{
        struct manifest_key *list = revoked ? kr->revoked : kr->trusted;
        size_t *n = revoked ? &kr->n_revoked : &kr->n_trusted;
        struct manifest_key k;
        int r;

        if (*n >= IMAGE_MAX_KEYS)
                return image_why(-E2BIG, why, why_len, "key %s: more than %d %s keys", pem_path, IMAGE_MAX_KEYS,
                                 revoked ? "revoked" : "trusted");
        r = manifest_key_load(pem_path, &k);
        if (r < 0)
                return image_why(r, why, why_len, "key %s: %s", pem_path,
                                 r == -EINVAL ? "not a PEM Ed25519 public key" : strerror(-r));
        list[(*n)++] = k;
        return 0;
}

static bool key_revoked(const struct image_keyring *kr, const struct manifest_key *k)
{
        for (size_t i = 0; i < kr->n_revoked; i++)
                if (memcmp(kr->revoked[i].pub, k->pub, MANIFEST_KEY_BYTES) == 0)
                        return true;
        return false;
}

/* The signature over the exact bytes, by a trusted, unrevoked key with the id the bytes name. */
static int check_signature(int dir_fd, const char *label, const struct image_keyring *kr, const uint8_t *data,
                           size_t len, char *why, size_t why_len)
{
        _cleanup_free_ uint8_t *sig = NULL;
        char id[MANIFEST_KEY_ID_HEX + 1];
        bool known = false;
        size_t sig_len;
        int r;

        if (manifest_peek_key_id(data, len, id) < 0)
                return image_why(-EINVAL, why, why_len, "image %s: key (none): manifest.json names no key id", label);
        r = image_read_small(dir_fd, IMAGE_SIG_FILE, MANIFEST_SIG_BYTES, &sig, &sig_len);
        if (r == 0 && sig_len != MANIFEST_SIG_BYTES)
                r = -EBADMSG;
        if (r < 0)
                return image_why(r == -EFBIG ? -EBADMSG : r, why, why_len, "image %s: key %s: manifest.json.sig: %s",
                                 label, id, r == -EFBIG || r == -EBADMSG ? "not 64 bytes" : strerror(-r));
        for (size_t i = 0; i < kr->n_trusted; i++) {
                const struct manifest_key *k = &kr->trusted[i];

                if (strcmp(k->id, id) != 0)
                        continue;
                known = true;
                if (key_revoked(kr, k))
                        return image_why(-EKEYREJECTED, why, why_len, "image %s: key %s: the key is revoked", label, id);
                if (manifest_signature_check(k, data, len, sig) == 0)
                        return 0;
        }
        for (size_t i = 0; !known && i < kr->n_revoked; i++)
                if (strcmp(kr->revoked[i].id, id) == 0)
                        return image_why(-EKEYREJECTED, why, why_len, "image %s: key %s: the key is revoked", label, id);
        if (!known)
                return image_why(-EKEYREJECTED, why, why_len, "image %s: key %s: not a trusted key", label, id);
        return image_why(-EBADMSG, why, why_len, "image %s: key %s: the signature does not match manifest.json",
                         label, id);
}

static bool name_expected(const struct manifest *m, const char *name)
{
        int k;

        if (strcmp(name, IMAGE_MANIFEST_FILE) == 0 || strcmp(name, IMAGE_SIG_FILE) == 0)
                return true;
        k = manifest_artifact_from_name(name);
        return k >= 0 && k < _MANIFEST_ARTIFACT_MAX && m->artifacts[k].present;
}

static int check_no_extra(int dir_fd, const struct manifest *m, char *why, size_t why_len)
{
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *e;
        char shown[96];
        DIR *d;
        int r = 0;

        if (fd < 0 || !(d = fdopendir(fd))) {
                r = -errno;
                if (fd >= 0)
                        close(fd);
                return image_why(r, why, why_len, "image %s: key %s: cannot list the image: %s", m->name, m->key_id,
                                 strerror(-r));
        }
        while (r == 0 && (e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || name_expected(m, e->d_name))
                        continue;
                log_escape(shown, sizeof(shown), e->d_name, strlen(e->d_name));
                r = image_why(-EEXIST, why, why_len, "image %s: key %s: unexpected file '%s' in the image", m->name,
                              m->key_id, shown);
        }
        closedir(d);
        return r;
}

struct stream {
        struct image_sha256 *whole, *part;
        uint8_t *buf;
};

/* One pass over the file: every chunk's digest and the whole file's. */
static int check_bytes(int fd, const struct manifest *m, enum manifest_artifact_kind k, struct stream *s,
                       char *why, size_t why_len)
{
        const struct manifest_artifact *a = &m->artifacts[k];
        const char *name = manifest_artifact_name(k);
        uint8_t digest[MANIFEST_SHA256_BYTES];
        uint64_t done = 0;
        int r = 0;

        for (size_t i = 0; r == 0 && i < a->n_chunks; i++) {
                const struct manifest_chunk *c = &a->chunks[i];

                if (c->file_offset != done)
                        return image_why(-EBADMSG, why, why_len, "image %s: key %s: %s: chunk %zu is out of place",
                                         m->name, m->key_id, name, i);
                for (uint64_t left = c->size; r == 0 && left;) {
                        size_t n = (size_t)MIN(left, (uint64_t)IMAGE_IO_BUF_BYTES);

                        r = image_read_full(fd, s->buf, n);
                        if (r == 0)
                                r = image_sha256_update(s->whole, s->buf, n);
                        if (r == 0)
                                r = image_sha256_update(s->part, s->buf, n);
                        left -= n;
                }
                done += c->size;
                if (r == 0)
                        r = image_sha256_final(s->part, digest);
                if (r < 0)
                        return image_why(r == -EIO ? -EBADMSG : r, why, why_len, "image %s: key %s: %s: %s", m->name,
                                         m->key_id, name, r == -EIO ? "shorter than its manifest says" : strerror(-r));
                if (memcmp(digest, c->sha256, sizeof(digest)) != 0)
                        return image_why(-EBADMSG, why, why_len,
                                         "image %s: key %s: %s: chunk %zu (bytes %llu-%llu) does not match its digest",
                                         m->name, m->key_id, name, i, (unsigned long long)c->file_offset,
                                         (unsigned long long)(done - 1));
        }
        if (done != a->size || image_sha256_final(s->whole, digest) < 0 || memcmp(digest, a->sha256, sizeof(digest)) != 0)
                return image_why(-EBADMSG, why, why_len, "image %s: key %s: %s does not match its digest", m->name,
                                 m->key_id, name);
        return 0;
}

static int check_artifact(int dir_fd, const struct manifest *m, enum manifest_artifact_kind k, struct stream *s,
                          char *why, size_t why_len)
{
        const char *name = manifest_artifact_name(k);
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        struct stat st;

        if (fd < 0)
                return image_why(-errno, why, why_len, "image %s: key %s: %s: %s", m->name, m->key_id, name,
                                 errno == ELOOP ? "a symbolic link" : errno == ENOENT ? "missing" : strerror(errno));
        if (fstat(fd, &st) < 0)
                return image_why(-errno, why, why_len, "image %s: key %s: %s: %s", m->name, m->key_id, name,
                                 strerror(errno));
        if (!S_ISREG(st.st_mode))
                return image_why(-EACCES, why, why_len, "image %s: key %s: %s: not a regular file", m->name,
                                 m->key_id, name);
        if ((uint64_t)st.st_size != m->artifacts[k].size)
                return image_why(-EBADMSG, why, why_len, "image %s: key %s: %s: %llu bytes, the manifest says %llu",
                                 m->name, m->key_id, name, (unsigned long long)st.st_size,
                                 (unsigned long long)m->artifacts[k].size);
        return check_bytes(fd, m, k, s, why, why_len);
}

static int check_artifacts(int dir_fd, const struct manifest *m, char *why, size_t why_len)
{
        struct stream s = { 0 };
        int r = image_sha256_new(&s.whole);

        if (r == 0)
                r = image_sha256_new(&s.part);
        if (r == 0 && !(s.buf = malloc(IMAGE_IO_BUF_BYTES)))
                r = -ENOMEM;
        if (r < 0)
                image_why(r, why, why_len, "image %s: key %s: %s", m->name, m->key_id, strerror(-r));
        for (int k = 0; r == 0 && k < _MANIFEST_ARTIFACT_MAX; k++)
                if (m->artifacts[k].present)
                        r = check_artifact(dir_fd, m, (enum manifest_artifact_kind)k, &s, why, why_len);
        image_sha256_free(s.whole);
        image_sha256_free(s.part);
        free(s.buf);
        return r;
}

int image_check_policy(const struct manifest *m, int64_t now, const struct image_policy *policy, char *why,
                       size_t why_len)
{
        char when[32];
        time_t t = (time_t)m->expires;
        struct tm tm;

        if (now >= m->expires) {
                if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
                        snprintf(when, sizeof(when), "%lld", (long long)m->expires);
                return image_why(-EKEYEXPIRED, why, why_len, "image %s: key %s: version %llu expired at %s", m->name,
                                 m->key_id, (unsigned long long)m->version, when);
        }
        if (policy && !policy->allow_downgrade && m->version < policy->highest_known)
                return image_why(-ESTALE, why, why_len,
                                 "image %s: key %s: version %llu is lower than version %llu imported before "
                                 "(rollback refused; --allow-downgrade overrides)",
                                 m->name, m->key_id, (unsigned long long)m->version,
                                 (unsigned long long)policy->highest_known);
        return 0;
}

int image_verify_fd(int dir_fd, const char *label, const struct image_keyring *kr, int64_t now,
                    const struct image_policy *policy, struct manifest *ret, char *why, size_t why_len)
{
        _cleanup_free_ uint8_t *data = NULL;
        struct manifest m;
        char reason[256];
        size_t len = 0;
        int r;

        r = image_read_small(dir_fd, IMAGE_MANIFEST_FILE, IMAGE_MAX_MANIFEST_BYTES, &data, &len);
        if (r < 0)
                return image_why(r, why, why_len, "image %s: key (unknown): manifest.json: %s", label,
                                 r == -EFBIG ? "larger than 1 MiB, refused unread" : r == -ELOOP ? "a symbolic link" :
                                 strerror(-r));
        r = check_signature(dir_fd, label, kr, data, len, why, why_len);
        if (r < 0)
                return r;
        r = manifest_parse(data, len, &m, reason, sizeof(reason));
        if (r < 0) {
                char id[MANIFEST_KEY_ID_HEX + 1] = "(unknown)";

                (void)manifest_peek_key_id(data, len, id);
                return image_why(r, why, why_len, "image %s: key %s: manifest.json refused: %s", label, id, reason);
        }
        r = image_check_policy(&m, now, policy, why, why_len);
        if (r == 0)
                r = check_no_extra(dir_fd, &m, why, why_len);
        if (r == 0)
                r = check_artifacts(dir_fd, &m, why, why_len);
        if (r < 0 || !ret)
                manifest_free(&m);
        else
                *ret = m;
        return r;
}

int image_verify_dir(const char *dir, const struct image_keyring *kr, int64_t now, const struct image_policy *policy,
                     struct manifest *ret, char *why, size_t why_len)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0)
                return image_why(-errno, why, why_len, "image %s: %s", dir, strerror(errno));
        return image_verify_fd(fd, dir, kr, now, policy, ret, why, why_len);
}
