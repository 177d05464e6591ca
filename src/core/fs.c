/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <limits.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "metald/fs.h"
#include "metald/limits.h"
#include "metald/util.h"

static int open_openat2(int root_fd, const char *path, int flags)
{
        struct open_how how = {
                .flags = (uint64_t)flags,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };

        for (unsigned i = 0; i < FS_OPEN_RETRIES; i++) {
                long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof(how));

                if (fd >= 0)
                        return (int)fd;
                if (errno != EAGAIN)
                        return -errno;
        }
        return -EAGAIN;
}

/* Copies the next component of *p into comp, skipping empty and "." ones: 1, 0 at the end, or -errno. */
static int next_component(const char **p, char *comp, size_t cap)
{
        for (;;) {
                const char *s = *p + strspn(*p, "/");
                size_t n = strcspn(s, "/");

                *p = s + n;
                if (n == 0)
                        return 0;
                if (n == 1 && s[0] == '.')
                        continue;
                if (n >= cap)
                        return -ENAMETOOLONG;
                memcpy(comp, s, n);
                comp[n] = '\0';
                return 1;
        }
}

/* One directory step of the walk, refusing symlinks like RESOLVE_NO_SYMLINKS does. */
static int open_dir_step(int dir_fd, const char *name)
{
        _cleanup_close_ int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISLNK(st.st_mode))
                return -ELOOP;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        return TAKE_FD(fd);
}

static int open_walk(int root_fd, const char *path, int flags)
{
        char comp[NAME_MAX + 1], next[NAME_MAX + 1];
        _cleanup_close_ int dir = -1;
        bool trailing_slash = *path && path[strlen(path) - 1] == '/';
        const char *p = path;
        int r, fd;

        if (path[0] == '/')
                return -EXDEV;
        r = next_component(&p, comp, sizeof(comp));
        if (r <= 0)
                return r < 0 ? r : -ENOENT;
        for (;;) {
                if (strcmp(comp, "..") == 0)
                        return -EXDEV;
                r = next_component(&p, next, sizeof(next));
                if (r < 0)
                        return r;
                if (r == 0)
                        break;
                fd = open_dir_step(dir >= 0 ? dir : root_fd, comp);
                if (fd < 0)
                        return fd;
                closep(&dir);
                dir = fd;
                memcpy(comp, next, sizeof(comp));
        }
        fd = openat(dir >= 0 ? dir : root_fd, comp, flags | O_NOFOLLOW | (trailing_slash ? O_DIRECTORY : 0));
        return fd < 0 ? -errno : fd;
}

int fs_check_regular(int fd, struct stat *ret_st)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EACCES;
        if (ret_st)
                *ret_st = st;
        return 0;
}

static int open_checked(int root_fd, const char *path, int flags, bool walk, int *ret_fd)
{
        /* O_NONBLOCK so that opening a fifo cannot hang the caller before fstat refuses it */
        int open_flags = flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC;
        _cleanup_close_ int fd = walk ? open_walk(root_fd, path, open_flags) : open_openat2(root_fd, path, open_flags);
        int r;

        if (fd < 0)
                return fd;
        r = fs_check_regular(fd, NULL);
        if (r < 0)
                return r;
        if (!(flags & O_NONBLOCK)) {
                int fl = fcntl(fd, F_GETFL);

                if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
                        return -errno;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static bool flags_create(int flags)
{
        return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

int fs_open_beneath(int root_fd, const char *path, int flags, int *ret_fd)
{
        int r;

        if (flags_create(flags))
                return -EINVAL;
        r = open_checked(root_fd, path, flags, false, ret_fd);
        if (r == -ENOSYS)
                r = open_checked(root_fd, path, flags, true, ret_fd);
        return r;
}

int fs_open_beneath_walk(int root_fd, const char *path, int flags, int *ret_fd)
{
        if (flags_create(flags))
                return -EINVAL;
        return open_checked(root_fd, path, flags, true, ret_fd);
}

int fs_sha256(const void *p, size_t n, uint8_t out[FS_SHA256_BYTES])
{
        unsigned len = 0;

        return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == FS_SHA256_BYTES ? 0 : -EIO;
}

int fs_read_file(const char *path, size_t max, uint8_t sha256[FS_SHA256_BYTES], uint8_t **ret,
                        size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        struct stat st;
        int r;

        if (fd < 0)
                return -errno;
        if ((r = fs_check_regular(fd, &st)) < 0)
                return r;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        /* one byte more than the size, to see a file that grew while we read it */
        if (!(data = malloc((size_t)st.st_size + 1)))
                return -ENOMEM;
        if ((r = read_full(fd, data, (size_t)st.st_size + 1, &len)) < 0)
                return r;
        if (len > (size_t)st.st_size)
                return -ESTALE;
        if (sha256 && fs_sha256(data, len, sha256) < 0)
                return -EIO;
        *ret = TAKE_PTR(data);
        *ret_len = len;
        return 0;
}
