/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "metald/image.h"
#include "metald/log.h"
#include "image_private.h"

#define CATALOG_DIR     "images"
#define CATALOG_LOCK    ".lock"
#define CATALOG_HIGHEST "highest"
#define CATALOG_TMP     ".import-XXXXXX"
#define HIGHEST_MAX_BYTES 128   /* "VERSION SHA256HEX\n" */

struct catalog {
        int fd;                 /* STATE_DIR/images */
        int lock_fd;
        char path[CONFIG_MAX_PATH_BYTES];
};

static void catalog_close(struct catalog *c)
{
        if (c->lock_fd >= 0)
                close(c->lock_fd);      /* drops the lock */
        if (c->fd >= 0)
                close(c->fd);
        c->fd = c->lock_fd = -1;
}

static int catalog_open(const char *state_dir, bool create, bool lock, struct catalog *c, char *why, size_t why_len)
{
        *c = (struct catalog){ .fd = -1, .lock_fd = -1 };
        if ((size_t)snprintf(c->path, sizeof(c->path), "%s/" CATALOG_DIR, state_dir) >= sizeof(c->path))
                return image_why(-ENAMETOOLONG, why, why_len, "catalog: state_dir is too long");
        if (create && (mkdir(state_dir, 0755) < 0 && errno != EEXIST))
                return image_why(-errno, why, why_len, "catalog %s: %s", state_dir, strerror(errno));
        if (create && mkdir(c->path, 0755) < 0 && errno != EEXIST)
                return image_why(-errno, why, why_len, "catalog %s: %s", c->path, strerror(errno));
        c->fd = open(c->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->fd < 0)
                return image_why(-errno, why, why_len, "catalog %s: %s", c->path, strerror(errno));
        if (!lock)
                return 0;
        c->lock_fd = openat(c->fd, CATALOG_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (c->lock_fd < 0 || flock(c->lock_fd, LOCK_EX) < 0) {
                int r = -errno;

                catalog_close(c);
                return image_why(r, why, why_len, "catalog %s: cannot lock: %s", c->path, strerror(-r));
        }
        return 0;
}

/* NAME/highest: the version and the manifest digest of the highest version ever imported. */
static int read_highest(int cat_fd, const char *name, uint64_t *ret, char ret_digest[2 * MANIFEST_SHA256_BYTES + 1])
{
        _cleanup_close_ int nfd = openat(cat_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ uint8_t *data = NULL;
        char digest[2 * MANIFEST_SHA256_BYTES + 1] = "", num[24];
        size_t len, n;
        uint64_t v;
        int r;

        if (nfd < 0 && errno == ENOENT) {
                *ret = 0;
                if (ret_digest)
                        ret_digest[0] = '\0';
                return 0;
        }
        if (nfd < 0)
                return -errno;
        r = image_read_small(nfd, CATALOG_HIGHEST, HIGHEST_MAX_BYTES, &data, &len);
        if (r == -ENOENT) {
                *ret = 0;
                if (ret_digest)
                        ret_digest[0] = '\0';
                return 0;
        }
        if (r < 0)
                return r;
        n = strcspn((char *)data, " \n");
        if (n == 0 || n >= sizeof(num))
                return -EBADMSG;
        memcpy(num, data, n);
        num[n] = '\0';
        if (parse_u64(num, 1, IMAGE_MAX_VERSION, &v) < 0)
                return -EBADMSG;
        if (data[n] == ' ' && len >= n + 1 + 2 * MANIFEST_SHA256_BYTES) {
                memcpy(digest, data + n + 1, 2 * MANIFEST_SHA256_BYTES);
                digest[2 * MANIFEST_SHA256_BYTES] = '\0';
        }
        *ret = v;
        if (ret_digest)
                memcpy(ret_digest, digest, sizeof(digest));
        return 0;
}

int image_highest(const char *state_dir, const char *name, uint64_t *ret)
{
        struct catalog c;
        int r;

        if (!image_name_valid(name))
                return -EINVAL;
        r = catalog_open(state_dir, false, false, &c, NULL, 0);
        if (r == -ENOENT) {
                *ret = 0;
                return 0;
        }
        if (r < 0)
                return r;
        r = read_highest(c.fd, name, ret, NULL);
        catalog_close(&c);
        return r;
}

static void info_from(const struct manifest *m, struct image_info *ret)
{
        *ret = (struct image_info){ .version = m->version, .created = m->created, .expires = m->expires };
        memcpy(ret->name, m->name, sizeof(ret->name));
        memcpy(ret->key_id, m->key_id, sizeof(ret->key_id));
        memcpy(ret->arch, m->arch, sizeof(ret->arch));
        for (int k = 0; k < _MANIFEST_ARTIFACT_MAX; k++)
                if (m->artifacts[k].present) {
                        ret->total_bytes += m->artifacts[k].size;
                        ret->artifacts |= 1u << k;
                }
}

/* Copies one file of a source directory into the import directory, bounded by what that file may hold. */
static int copy_file(int src_fd, const char *name, int dst_fd, uint64_t max, uint8_t *buf)
{
        _cleanup_close_ int in = openat(src_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        _cleanup_close_ int out = -1;
        uint64_t total = 0;
        struct stat st;

        if (in < 0)
                return -errno;
        if (fstat(in, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EACCES;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        out = openat(dst_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (out < 0)
                return -errno;
        for (;;) {
                ssize_t n = read(in, buf, IMAGE_IO_BUF_BYTES);
                int r;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                total += (uint64_t)n;
                if (total > max)
                        return -EFBIG;
                if ((r = image_write_all(out, buf, (size_t)n)) < 0)
                        return r;
        }
        return fsync(out) < 0 ? -errno : 0;
}

/* An image directory copied file by file: what is verified is what is stored. */
static int copy_dir(const char *src, int dst_fd, uint64_t free_bytes, char *why, size_t why_len)
{
        _cleanup_free_ uint8_t *buf = malloc(IMAGE_IO_BUF_BYTES);
        struct image_entry_state st = { 0 };
        int fd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct dirent *e;
        DIR *d;
        int r = 0;

        if (fd < 0 || !buf || !(d = fdopendir(fd))) {
                r = !buf ? -ENOMEM : -errno;
                if (fd >= 0)
                        close(fd);
                return image_why(r, why, why_len, "image %s: %s", src, strerror(-r));
        }
        while (r == 0 && (e = readdir(d))) {
                struct stat s;
                int i;

                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                if (fstatat(dirfd(d), e->d_name, &s, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = image_why(-errno, why, why_len, "image %s: %s", src, strerror(errno));
                        break;
                }
                i = image_entry_check(&st, e->d_name, S_ISREG(s.st_mode) ? IMAGE_ENTRY_FILE : IMAGE_ENTRY_OTHER,
                                      false, s.st_size, why, why_len);
                if (i < 0) {
                        r = i;
                        break;
                }
                if ((uint64_t)s.st_size > free_bytes)
                        r = image_why(-ENOSPC, why, why_len, "image %s: %s does not fit in the catalog", src, e->d_name);
                else if ((r = copy_file(dirfd(d), e->d_name, dst_fd, image_file_max_bytes((unsigned)i), buf)) < 0)
                        image_why(r, why, why_len, "image %s: %s: %s", src, e->d_name,
                                  r == -EFBIG ? "larger than it may be" : strerror(-r));
        }
        closedir(d);
        return r;
}

static uint64_t free_bytes_of(int fd)
{
        struct statvfs sv;

        if (fstatvfs(fd, &sv) < 0)
                return UINT64_MAX;
        return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static int manifest_digest_hex(int dir_fd, char out[2 * MANIFEST_SHA256_BYTES + 1])
{
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t d[MANIFEST_SHA256_BYTES];
        size_t len;
        int r = image_read_small(dir_fd, IMAGE_MANIFEST_FILE, IMAGE_MAX_MANIFEST_BYTES, &data, &len);

        if (r == 0)
                r = manifest_sha256(data, len, d);
        if (r == 0)
                manifest_hex(d, sizeof(d), out);
        return r;
}

/* The same version already in the catalog: 1 when it is this very image, -EEXIST when it differs. */
static int compare_existing(int name_fd, const char *vname, const char *digest, const struct manifest *m, char *why,
                            size_t why_len)
{
        _cleanup_close_ int vfd = openat(name_fd, vname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        char old[2 * MANIFEST_SHA256_BYTES + 1];

        if (vfd < 0 && errno == ENOENT)
                return 0;
        if (vfd < 0 || manifest_digest_hex(vfd, old) < 0 || strcmp(old, digest) != 0)
                return image_why(-EEXIST, why, why_len,
                                 "image %s: key %s: version %llu is already imported with other content", m->name,
                                 m->key_id, (unsigned long long)m->version);
        return 1;
}

struct import_ctx {
        struct catalog *cat;
        const char *tmp;        /* name of the import directory in the catalog */
        int tmp_fd;
        bool allow_downgrade;
        int64_t now;
};

/* Rollback and duplicates decided, the verified directory becomes NAME/VERSION; 1 when it was there already. */
static int commit(struct import_ctx *x, const struct manifest *m, char *why, size_t why_len)
{
        char digest[2 * MANIFEST_SHA256_BYTES + 1], high_digest[2 * MANIFEST_SHA256_BYTES + 1], vname[24], line[128];
        struct image_policy policy = { .allow_downgrade = x->allow_downgrade };
        _cleanup_close_ int nfd = -1;
        int r;

        if ((r = manifest_digest_hex(x->tmp_fd, digest)) < 0 ||
            (r = read_highest(x->cat->fd, m->name, &policy.highest_known, high_digest)) < 0)
                return image_why(r, why, why_len, "image %s: key %s: catalog: %s", m->name, m->key_id, strerror(-r));
        if ((r = image_check_policy(m, x->now, &policy, why, why_len)) < 0)
                return r;
        if (m->version == policy.highest_known && *high_digest && strcmp(digest, high_digest) != 0)
                return image_why(-EEXIST, why, why_len,
                                 "image %s: key %s: version %llu was imported before with other content", m->name,
                                 m->key_id, (unsigned long long)m->version);
        snprintf(vname, sizeof(vname), "%llu", (unsigned long long)m->version);
        if (mkdirat(x->cat->fd, m->name, 0755) < 0 && errno != EEXIST)
                return image_why(-errno, why, why_len, "image %s: catalog: %s", m->name, strerror(errno));
        nfd = openat(x->cat->fd, m->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0)
                return image_why(-errno, why, why_len, "image %s: catalog: %s", m->name, strerror(errno));
        if ((r = compare_existing(nfd, vname, digest, m, why, why_len)) != 0)
                return r;
        if ((r = image_fsync_dir(x->tmp_fd)) < 0 || (renameat(x->cat->fd, x->tmp, nfd, vname) < 0 && (r = -errno)) ||
            (r = image_fsync_dir(nfd)) < 0 || (r = image_fsync_dir(x->cat->fd)) < 0)
                return image_why(r, why, why_len, "image %s: catalog: %s", m->name, strerror(-r));
        if (m->version <= policy.highest_known)
                return 0;
        snprintf(line, sizeof(line), "%s %s\n", vname, digest);
        r = image_write_atomic(nfd, CATALOG_HIGHEST, line, strlen(line), 0644);
        return r < 0 ? image_why(r, why, why_len, "image %s: catalog: highest: %s", m->name, strerror(-r)) : 0;
}

static int import_into(struct import_ctx *x, const char *src, const struct image_keyring *kr,
                       struct image_info *ret, char *why, size_t why_len)
{
        uint64_t free_bytes = free_bytes_of(x->cat->fd);
        struct manifest m;
        struct stat st;
        int r;

        if (stat(src, &st) < 0)
                return image_why(-errno, why, why_len, "image %s: %s", src, strerror(errno));
        r = S_ISDIR(st.st_mode) ? copy_dir(src, x->tmp_fd, free_bytes, why, why_len)
                                : image_extract_archive(src, x->tmp_fd, free_bytes, why, why_len);
        if (r < 0)
                return r;
        r = image_verify_fd(x->tmp_fd, src, kr, x->now, NULL, &m, why, why_len);
        if (r < 0)
                return r;
        r = commit(x, &m, why, why_len);
        if (r >= 0) {
                info_from(&m, ret);
                ret->already = r == 1;
        }
        manifest_free(&m);
        return r < 0 ? r : 0;
}

int image_import(const char *state_dir, const char *src, const struct image_keyring *kr, int64_t now,
                 bool allow_downgrade, struct image_info *ret, char *why, size_t why_len)
{
        char tmp_path[CONFIG_MAX_PATH_BYTES + sizeof(CATALOG_TMP) + 1];
        struct import_ctx x = { .allow_downgrade = allow_downgrade, .now = now, .tmp_fd = -1 };
        struct image_info info;
        struct catalog c;
        int r = catalog_open(state_dir, true, true, &c, why, why_len);

        if (r < 0)
                return r;
        x.cat = &c;
        snprintf(tmp_path, sizeof(tmp_path), "%s/" CATALOG_TMP, c.path);
        if (!mkdtemp(tmp_path)) {
                r = image_why(-errno, why, why_len, "catalog %s: %s", c.path, strerror(errno));
                catalog_close(&c);
                return r;
        }
        x.tmp = strrchr(tmp_path, '/') + 1;
        x.tmp_fd = openat(c.fd, x.tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = x.tmp_fd < 0 ? image_why(-errno, why, why_len, "catalog %s: %s", c.path, strerror(errno))
                         : import_into(&x, src, kr, &info, why, why_len);
        if (x.tmp_fd >= 0)
                close(x.tmp_fd);
        /* anything not renamed into place goes, whatever happened */
        (void)image_remove_tree(c.fd, x.tmp);
        catalog_close(&c);
        if (r == 0)
                *ret = info;
        return r;
}

static int read_version(int name_fd, const char *vname, struct image_info *info, struct manifest *ret)
{
        _cleanup_close_ int vfd = openat(name_fd, vname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        _cleanup_free_ uint8_t *data = NULL;
        struct manifest m;
        char reason[256];
        size_t len;
        int r;

        if (vfd < 0)
                return -errno;
        r = image_read_small(vfd, IMAGE_MANIFEST_FILE, IMAGE_MAX_MANIFEST_BYTES, &data, &len);
        if (r == 0)
                r = manifest_parse(data, len, &m, reason, sizeof(reason));
        if (r < 0)
                return r;
        info_from(&m, info);
        if (ret)
                *ret = m;
        else
                manifest_free(&m);
        return 0;
}

static int info_cmp(const void *a, const void *b)
{
        const struct image_info *x = a, *y = b;
        int c = strcmp(x->name, y->name);

        return c ? c : x->version < y->version ? -1 : x->version > y->version;
}

/* The versions imported under one name, appended to *v. */
static int list_name(int cat_fd, const char *name, struct image_info *v, size_t *n)
{
        int fd = openat(cat_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct dirent *e;
        DIR *d;

        if (fd < 0)
                return -errno;
        if (!(d = fdopendir(fd))) {
                close(fd);
                return -errno;
        }
        while ((e = readdir(d)) && *n < IMAGE_MAX_CATALOG_IMAGES) {
                uint64_t ver;

                if (parse_u64(e->d_name, 1, IMAGE_MAX_VERSION, &ver) < 0)
                        continue;
                if (read_version(dirfd(d), e->d_name, &v[*n], NULL) == 0 && v[*n].version == ver &&
                    strcmp(v[*n].name, name) == 0)
                        (*n)++;
        }
        closedir(d);
        return 0;
}

int image_list(const char *state_dir, struct image_info **ret, size_t *ret_n, char *why, size_t why_len)
{
        struct image_info *v = calloc(IMAGE_MAX_CATALOG_IMAGES, sizeof(*v));
        struct catalog c;
        struct dirent *e;
        size_t n = 0;
        DIR *d;
        int r;

        if (!v)
                return -ENOMEM;
        r = catalog_open(state_dir, false, false, &c, why, why_len);
        if (r == -ENOENT) {
                *ret = v;
                *ret_n = 0;
                return 0;
        }
        if (r < 0 || !(d = fdopendir(dup(c.fd)))) {
                free(v);
                if (r == 0)
                        catalog_close(&c);
                return r < 0 ? r : image_why(-errno, why, why_len, "catalog %s: %s", c.path, strerror(errno));
        }
        while ((e = readdir(d)))
                if (image_name_valid(e->d_name))
                        (void)list_name(c.fd, e->d_name, v, &n);
        closedir(d);
        catalog_close(&c);
        qsort(v, n, sizeof(*v), info_cmp);
        *ret = v;
        *ret_n = n;
        return 0;
}

int image_show(const char *state_dir, const char *name, uint64_t version, struct image_info *ret_info,
               struct manifest *ret, char *why, size_t why_len)
{
        struct image_info *v = NULL, info;
        char vname[24];
        _cleanup_close_ int nfd = -1;
        struct catalog c;
        size_t n = 0;
        int r;

        if (!image_name_valid(name))
                return image_why(-EINVAL, why, why_len, "'%.64s' is not an image name", name);
        if (version == 0) {
                if ((r = image_list(state_dir, &v, &n, why, why_len)) < 0)
                        return r;
                for (size_t i = 0; i < n; i++)
                        if (strcmp(v[i].name, name) == 0)
                                version = v[i].version;         /* sorted: the last is the newest */
                free(v);
                if (version == 0)
                        return image_why(-ENOENT, why, why_len, "image %s: not in the catalog", name);
        }
        if ((r = catalog_open(state_dir, false, false, &c, why, why_len)) < 0)
                return r;
        snprintf(vname, sizeof(vname), "%llu", (unsigned long long)version);
        nfd = openat(c.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        r = nfd < 0 ? -errno : read_version(nfd, vname, &info, ret);
        catalog_close(&c);
        if (r < 0)
                return image_why(r, why, why_len, "image %s: version %s: %s", name, vname,
                                 r == -ENOENT ? "not in the catalog" : strerror(-r));
        *ret_info = info;
        return 0;
}

int image_remove(const char *state_dir, const char *name, uint64_t version, char *why, size_t why_len)
{
        _cleanup_close_ int nfd = -1;
        struct catalog c;
        char vname[24];
        struct stat st;
        int r;

        if (!image_name_valid(name) || version == 0)
                return image_why(-EINVAL, why, why_len, "'%.64s' is not NAME:VERSION", name);
        if ((r = catalog_open(state_dir, false, true, &c, why, why_len)) < 0)
                return r;
        snprintf(vname, sizeof(vname), "%llu", (unsigned long long)version);
        nfd = openat(c.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (nfd < 0 || fstatat(nfd, vname, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                r = image_why(-ENOENT, why, why_len, "image %s: version %s: not in the catalog", name, vname);
        else if ((r = image_remove_tree(nfd, vname)) < 0 || (r = image_fsync_dir(nfd)) < 0)
                image_why(r, why, why_len, "image %s: version %s: %s", name, vname, strerror(-r));
        catalog_close(&c);
        return r;
}

int image_newest(const char *state_dir, const char *name, uint64_t *ret)
{
        uint64_t best = 0;
        struct catalog c;
        struct dirent *e;
        DIR *d;
        int fd, r;

        if (!image_name_valid(name))
                return -EINVAL;
        if ((r = catalog_open(state_dir, false, false, &c, NULL, 0)) < 0)
                return r;
        fd = openat(c.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        catalog_close(&c);
        if (fd < 0)
                return -errno;
        if (!(d = fdopendir(fd))) {
                close(fd);
                return -errno;
        }
        while ((e = readdir(d))) {
                uint64_t v;

                if (parse_u64(e->d_name, 1, IMAGE_MAX_VERSION, &v) == 0 && v > best &&
                    (e->d_type == DT_DIR || e->d_type == DT_UNKNOWN))
                        best = v;
        }
        closedir(d);
        if (best == 0)
                return -ENOENT;
        *ret = best;
        return 0;
}

int image_read_file(const char *state_dir, const char *name, uint64_t version, const char *file, size_t max,
                    uint8_t **ret, size_t *ret_len)
{
        _cleanup_close_ int nfd = -1, vfd = -1;
        struct catalog c;
        char vname[24];
        int r;

        if (!image_name_valid(name) || version == 0 || version > IMAGE_MAX_VERSION)
                return -EINVAL;
        if ((r = catalog_open(state_dir, false, false, &c, NULL, 0)) < 0)
                return r;
        snprintf(vname, sizeof(vname), "%llu", (unsigned long long)version);
        nfd = openat(c.fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        catalog_close(&c);
        if (nfd < 0)
                return -errno;
        if ((vfd = openat(nfd, vname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
                return -errno;
        return image_read_small(vfd, file, max, ret, ret_len);
}
