/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <sys/stat.h>

#include "metald/image.h"
#include "image_private.h"

int image_why(int r, char *why, size_t why_len, const char *fmt, ...)
{
        va_list ap;

        if (why && why_len) {
                va_start(ap, fmt);
                vsnprintf(why, why_len, fmt, ap);
                va_end(ap);
        }
        return r;
}

int image_write_all(int fd, const void *data, size_t len)
{
        const uint8_t *p = data;

        while (len) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int image_read_full(int fd, void *buf, size_t len)
{
        size_t got = 0;
        int r = read_full(fd, buf, len, &got);

        return r < 0 ? r : got == len ? 0 : -EIO;
}

int image_fsync_dir(int dir_fd)
{
        return fsync(dir_fd) < 0 ? -errno : 0;
}

int image_write_atomic(int dir_fd, const char *name, const void *data, size_t len, mode_t mode)
{
        char tmp[256];
        int fd, r;

        if ((size_t)snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= sizeof(tmp))
                return -ENAMETOOLONG;
        (void)unlinkat(dir_fd, tmp, 0);
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        r = image_write_all(fd, data, len);
        if (r == 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(dir_fd, tmp, 0);
                return r;
        }
        return image_fsync_dir(dir_fd);
}

static int open_regular(int dir_fd, const char *name, struct stat *st)
{
        int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

        if (fd < 0)
                return -errno;
        if (fstat(fd, st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(st->st_mode)) {
                close(fd);
                return S_ISDIR(st->st_mode) ? -EISDIR : -EACCES;
        }
        return fd;
}

int image_read_small(int dir_fd, const char *name, size_t max, uint8_t **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -1;
        uint8_t *data;
        struct stat st;
        int r;

        fd = open_regular(dir_fd, name, &st);
        if (fd < 0)
                return fd;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        data = malloc((size_t)st.st_size + 1);
        if (!data)
                return -ENOMEM;
        r = image_read_full(fd, data, (size_t)st.st_size);
        if (r < 0) {
                free(data);
                return r;
        }
        data[st.st_size] = 0;
        *ret = data;
        *ret_len = (size_t)st.st_size;
        return 0;
}

int image_remove_tree(int dir_fd, const char *name)
{
        struct dirent *e;
        DIR *d;
        int fd, r = 0;

        if (unlinkat(dir_fd, name, 0) == 0)
                return 0;
        if (errno == ENOENT)
                return 0;
        if (errno != EISDIR && errno != EPERM)
                return -errno;
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        while ((e = readdir(d))) {
                int k;

                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                k = image_remove_tree(dirfd(d), e->d_name);
                if (k < 0 && r == 0)
                        r = k;
        }
        closedir(d);
        if (unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && r == 0)
                r = -errno;
        return r;
}

int image_sha256_new(struct image_sha256 **ret)
{
        EVP_MD_CTX *c = EVP_MD_CTX_new();

        if (!c)
                return -ENOMEM;
        if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(c);
                return -EIO;
        }
        *ret = (struct image_sha256 *)c;
        return 0;
}

int image_sha256_update(struct image_sha256 *h, const void *p, size_t n)
{
        return EVP_DigestUpdate((EVP_MD_CTX *)h, p, n) == 1 ? 0 : -EIO;
}

int image_sha256_final(struct image_sha256 *h, uint8_t out[MANIFEST_SHA256_BYTES])
{
        unsigned n = 0;

        if (EVP_DigestFinal_ex((EVP_MD_CTX *)h, out, &n) != 1 || n != MANIFEST_SHA256_BYTES)
                return -EIO;
        return EVP_DigestInit_ex((EVP_MD_CTX *)h, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

void image_sha256_free(struct image_sha256 *h)
{
        EVP_MD_CTX_free((EVP_MD_CTX *)h);
}

bool image_name_valid(const char *name)
{
        size_t n = strlen(name);

        if (n < 1 || n > IMAGE_MAX_NAME || !strchr("abcdefghijklmnopqrstuvwxyz0123456789", name[0]))
                return false;
        return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int image_parse_ref(const char *s, char name[IMAGE_MAX_NAME + 1], uint64_t *ret_version)
{
        const char *colon = strchr(s, ':');
        char n[IMAGE_MAX_NAME + 1];
        size_t len = colon ? (size_t)(colon - s) : strlen(s);
        uint64_t v = 0;

        if (len > IMAGE_MAX_NAME)
                return -EINVAL;
        memcpy(n, s, len);
        n[len] = '\0';
        if (!image_name_valid(n))
                return -EINVAL;
        if (colon && parse_u64(colon + 1, 1, IMAGE_MAX_VERSION, &v) < 0)
                return -EINVAL;
        memcpy(name, n, len + 1);
        *ret_version = v;
        return 0;
}
