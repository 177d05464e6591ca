/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "metald/fs.h"
#include "metald/util.h"
#include "test.h"

struct fs_case {
        const char *path;
        int r;                  /* fs_open_beneath (openat2) */
        int walk_r;             /* the fallback walk */
};

static const struct fs_case fs_cases[] = {
        { "file", 0, 0 },
        { "sub/inner", 0, 0 },
        { "./file", 0, 0 },
        { "sub//inner", 0, 0 },
        { "sub/./inner", 0, 0 },
        /* ".." that stays inside is fine for openat2; the walk refuses every ".." */
        { "sub/../file", 0, -EXDEV },
        { "../secret", -EXDEV, -EXDEV },
        { "sub/../../secret", -EXDEV, -EXDEV },
        { "/file", -EXDEV, -EXDEV },
        { "/etc/passwd", -EXDEV, -EXDEV },
        { "link_in", -ELOOP, -ELOOP },          /* a symlink inside the root */
        { "link_out", -ELOOP, -ELOOP },         /* an absolute symlink out of it */
        { "link_up", -ELOOP, -ELOOP },          /* a relative one out of it */
        { "link_dir/inner", -ELOOP, -ELOOP },   /* a symlink as a directory step */
        { "sub/link_back", -ELOOP, -ELOOP },
        { "dir", -EISDIR, -EISDIR },
        { "dir/", -EISDIR, -EISDIR },
        { ".", -EISDIR, -ENOENT },
        { "file/", -ENOTDIR, -ENOTDIR },
        { "file/x", -ENOTDIR, -ENOTDIR },
        { "fifo", -EACCES, -EACCES },           /* must not hang waiting for a writer */
        { "null", -EACCES, -EACCES },           /* a device node */
        { "missing", -ENOENT, -ENOENT },
        { "sub/missing", -ENOENT, -ENOENT },
        { "", -ENOENT, -ENOENT },
};

static int make_tree(char *root, size_t cap, int *ret_fd)
{
        const char *tmp = test_tmpdir();
        char p[512];
        int fd;

#define AT(name) (snprintf(p, sizeof(p), "%s/%s", tmp, name), p)
        if (mkdir(AT("root"), 0755) < 0 || mkdir(AT("root/sub"), 0755) < 0 || mkdir(AT("root/dir"), 0755) < 0)
                return -errno;
        fd = open(AT("root/file"), O_CREAT | O_WRONLY, 0644);
        if (fd < 0 || write(fd, "hello", 5) != 5)
                return -EIO;
        close(fd);
        fd = open(AT("root/sub/inner"), O_CREAT | O_WRONLY, 0644);
        if (fd < 0)
                return -errno;
        close(fd);
        fd = open(AT("secret"), O_CREAT | O_WRONLY, 0600);
        if (fd < 0)
                return -errno;
        close(fd);
        if (symlink("file", AT("root/link_in")) < 0 || symlink("/etc/passwd", AT("root/link_out")) < 0 ||
            symlink("../secret", AT("root/link_up")) < 0 || symlink("sub", AT("root/link_dir")) < 0 ||
            symlink("../file", AT("root/sub/link_back")) < 0 || mkfifo(AT("root/fifo"), 0644) < 0)
                return -errno;
        /* a character device like /dev/null; only root may create one */
        if (mknod(AT("root/null"), S_IFCHR | 0666, makedev(1, 3)) < 0)
                return -errno;
        snprintf(root, cap, "%s/root", tmp);
#undef AT
        fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

static void run_table(bool walk)
{
        char root[512];
        _cleanup_close_ int root_fd = -1;

        CHECK_EQ(make_tree(root, sizeof(root), &root_fd), 0);
        for (size_t i = 0; i < ARRAY_SIZE(fs_cases); i++) {
                const struct fs_case *c = &fs_cases[i];
                int want = walk ? c->walk_r : c->r, fd = -1;
                int r = walk ? fs_open_beneath_walk(root_fd, c->path, O_RDONLY, &fd)
                             : fs_open_beneath(root_fd, c->path, O_RDONLY, &fd);

                if (r != want)
                        fprintf(stderr, "  %s \"%s\"\n", walk ? "walk" : "openat2", c->path);
                CHECK_EQ(r, want);
                CHECK_EQ(fd >= 0, r == 0);
                if (fd >= 0)
                        close(fd);
        }
}

TEST(fs_open_beneath_table) { run_table(false); }

TEST(fs_open_beneath_walk_table) { run_table(true); }

TEST(fs_open_beneath_reads_and_flags)
{
        char root[512], buf[8];
        _cleanup_close_ int root_fd = -1;
        _cleanup_close_ int fd = -1;

        CHECK_EQ(make_tree(root, sizeof(root), &root_fd), 0);
        CHECK_EQ(fs_open_beneath(root_fd, "file", O_RDONLY, &fd), 0);
        CHECK_EQ(read(fd, buf, sizeof(buf)), 5);
        CHECK(memcmp(buf, "hello", 5) == 0);
        /* the O_NONBLOCK used against fifos does not leak to the caller */
        CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
        CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        closep(&fd);
        CHECK_EQ(fs_open_beneath(root_fd, "file", O_RDONLY | O_NONBLOCK, &fd), 0);
        CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
        closep(&fd);
        fd = -1;
        CHECK_EQ(fs_open_beneath(root_fd, "new", O_RDONLY | O_CREAT, &fd), -EINVAL);
        CHECK_EQ(fs_open_beneath_walk(root_fd, "new", O_RDWR | O_CREAT, &fd), -EINVAL);
        CHECK_EQ(fd, -1);
}
