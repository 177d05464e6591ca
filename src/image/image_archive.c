/* SPDX-License-Identifier: Apache-2.0 */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "metald/image.h"
#include "metald/log.h"
#include "image_private.h"

static const char *const file_names[IMAGE_N_FILES] = {
        IMAGE_MANIFEST_FILE, IMAGE_SIG_FILE, "kernel", "initrd", "disk", "rootfs",
};

const char *image_file_name(unsigned i)
{
        return i < IMAGE_N_FILES ? file_names[i] : NULL;
}

uint64_t image_file_max_bytes(unsigned i)
{
        if (i == 0)
                return IMAGE_MAX_MANIFEST_BYTES;
        if (i == 1)
                return MANIFEST_SIG_BYTES;
        return IMAGE_MAX_ARTIFACT_BYTES;
}

#define ENTRY_MAX_DEPTH 2       /* [top-level directory/]name */

/* Splits path into at most ENTRY_MAX_DEPTH components, dropping "." and empty ones; -EINVAL for "..", too deep. */
static int split(const char *path, char comps[ENTRY_MAX_DEPTH][IMAGE_MAX_NAME + 1], size_t *ret_n)
{
        size_t n = 0;

        for (const char *p = path; *p;) {
                size_t len = strcspn(p, "/");

                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return -EINVAL;
                if (len && !(len == 1 && p[0] == '.')) {
                        if (n == ENTRY_MAX_DEPTH || len > IMAGE_MAX_NAME)
                                return -E2BIG;
                        memcpy(comps[n], p, len);
                        comps[n++][len] = '\0';
                }
                p += len;
                p += *p == '/';
        }
        *ret_n = n;
        return 0;
}

static int file_index(const char *name)
{
        for (unsigned i = 0; i < IMAGE_N_FILES; i++)
                if (strcmp(name, file_names[i]) == 0)
                        return (int)i;
        return -1;
}

/* The directory an entry sits in: the one top-level directory, or none for all of them. */
static int place(struct image_entry_state *st, const char *dir, const char *shown, char *why, size_t why_len)
{
        if (!dir) {
                if (st->have_top)
                        return image_why(-EINVAL, why, why_len, "archive entry '%s': outside the image's directory %s",
                                         shown, st->top);
                st->have_root_files = true;
                return 0;
        }
        if (st->have_root_files)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': files both at the top and in a directory",
                                 shown);
        if (st->have_top && strcmp(st->top, dir) != 0)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': a second top-level directory", shown);
        st->have_top = true;
        memcpy(st->top, dir, strlen(dir) + 1);
        return 0;
}

int image_entry_check(struct image_entry_state *st, const char *path, enum image_entry_type type, bool hardlink,
                      int64_t size, char *why, size_t why_len)
{
        char comps[ENTRY_MAX_DEPTH][IMAGE_MAX_NAME + 1], shown[128];
        size_t n = 0;
        int i, r;

        log_escape(shown, sizeof(shown), path, strlen(path));
        if (path[0] == '/')
                return image_why(-EINVAL, why, why_len, "archive entry '%s': an absolute path", shown);
        r = split(path, comps, &n);
        if (r == -EINVAL)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': a '..' component", shown);
        if (r < 0)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': not a file of an image", shown);
        if (hardlink)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': a hard link", shown);
        if (type == IMAGE_ENTRY_OTHER)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': not a regular file", shown);
        if (type == IMAGE_ENTRY_DIR) {
                if (n == 0)
                        return IMAGE_ENTRY_SKIP;        /* "./" */
                if (n == 2)
                        return image_why(-EINVAL, why, why_len, "archive entry '%s': a directory inside the image",
                                         shown);
                r = place(st, comps[0], shown, why, why_len);
                return r < 0 ? r : IMAGE_ENTRY_SKIP;
        }
        if (n == 0)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': no file name", shown);
        r = place(st, n == 2 ? comps[0] : NULL, shown, why, why_len);
        if (r < 0)
                return r;
        i = file_index(comps[n - 1]);
        if (i < 0)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': not a file of an image", shown);
        if (st->seen & (1u << i))
                return image_why(-EINVAL, why, why_len, "archive entry '%s': a second %s", shown, file_names[i]);
        if (size >= 0 && (uint64_t)size > image_file_max_bytes((unsigned)i))
                return image_why(-EFBIG, why, why_len, "archive entry '%s': %lld bytes, more than %s may hold", shown,
                                 (long long)size, file_names[i]);
        st->seen |= 1u << i;
        return i;
}

static enum image_entry_type entry_type(struct archive_entry *e)
{
        switch (archive_entry_filetype(e)) {
        case AE_IFREG:
                return IMAGE_ENTRY_FILE;
        case AE_IFDIR:
                return IMAGE_ENTRY_DIR;
        default:
                return IMAGE_ENTRY_OTHER;
        }
}

/* Copies the entry's data, stopping at max bytes or the declared size, whichever the entry passes first. */
static int extract_data(struct archive *a, int fd, uint64_t max, int64_t declared, uint8_t *buf)
{
        uint64_t total = 0;

        for (;;) {
                la_ssize_t n = archive_read_data(a, buf, IMAGE_IO_BUF_BYTES);
                int r;

                if (n == 0)
                        break;
                if (n < 0)
                        return -EIO;
                total += (uint64_t)n;
                if (total > max || (declared >= 0 && total > (uint64_t)declared))
                        return -EFBIG;
                r = image_write_all(fd, buf, (size_t)n);
                if (r < 0)
                        return r;
        }
        return fsync(fd) < 0 ? -errno : 0;
}

static int extract_entry(struct archive *a, struct archive_entry *e, struct image_entry_state *st, int dir_fd,
                         uint64_t free_bytes, uint8_t *buf, char *why, size_t why_len)
{
        const char *path = archive_entry_pathname(e);
        int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
        char shown[128];
        int i, fd, r;

        if (!path)
                return image_why(-EINVAL, why, why_len, "archive entry without a name");
        i = image_entry_check(st, path, entry_type(e), archive_entry_hardlink(e) != NULL, size, why, why_len);
        if (i == IMAGE_ENTRY_SKIP || i < 0)
                return i == IMAGE_ENTRY_SKIP ? 0 : i;
        log_escape(shown, sizeof(shown), path, strlen(path));
        if (size > 0 && (uint64_t)size > free_bytes)
                return image_why(-ENOSPC, why, why_len, "archive entry '%s': %lld bytes do not fit in the catalog",
                                 shown, (long long)size);
        fd = openat(dir_fd, file_names[i], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0)
                return image_why(-errno, why, why_len, "archive entry '%s': %s", shown, strerror(errno));
        r = extract_data(a, fd, MIN(image_file_max_bytes((unsigned)i), free_bytes), size, buf);
        close(fd);
        if (r == -EFBIG)
                return image_why(r, why, why_len, "archive entry '%s': larger than %s may be or than it declared",
                                 shown, file_names[i]);
        if (r == -EIO)
                return image_why(-EINVAL, why, why_len, "archive entry '%s': %s", shown,
                                 archive_error_string(a) ? archive_error_string(a) : "unreadable");
        if (r < 0)
                return image_why(r, why, why_len, "archive entry '%s': %s", shown, strerror(-r));
        return 0;
}

static struct archive *reader_new(void)
{
        struct archive *a = archive_read_new();

        /* tar, plain or through gzip, xz or zstd: nothing that would run an external program */
        if (a && (archive_read_support_format_tar(a) != ARCHIVE_OK || archive_read_support_filter_none(a) != ARCHIVE_OK ||
                  archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
                  archive_read_support_filter_xz(a) != ARCHIVE_OK)) {
                archive_read_free(a);
                return NULL;
        }
        return a;
}

/* Every entry of an opened archive, checked and extracted into dir_fd. */
static int extract_all(struct archive *a, int dir_fd, uint64_t free_bytes, char *why, size_t why_len)
{
        _cleanup_free_ uint8_t *buf = malloc(IMAGE_IO_BUF_BYTES);
        struct image_entry_state st = { 0 };
        struct archive_entry *e;
        unsigned n = 0;
        int r = buf ? 0 : -ENOMEM;

        while (r == 0) {
                int h = archive_read_next_header(a, &e);
                char err[160];

                if (h == ARCHIVE_EOF)
                        break;
                if (h != ARCHIVE_OK && h != ARCHIVE_WARN) {
                        const char *s = archive_error_string(a) ? archive_error_string(a) : "unreadable";

                        log_escape(err, sizeof(err), s, strlen(s));
                        return image_why(-EINVAL, why, why_len, "archive: not a readable tar archive: %s", err);
                }
                if (++n > IMAGE_MAX_ARCHIVE_ENTRIES)
                        return image_why(-EINVAL, why, why_len, "archive: more than %d entries",
                                         IMAGE_MAX_ARCHIVE_ENTRIES);
                r = extract_entry(a, e, &st, dir_fd, free_bytes, buf, why, why_len);
        }
        return r;
}

int image_extract_archive(const char *archive_path, int dir_fd, uint64_t free_bytes, char *why, size_t why_len)
{
        _cleanup_close_ int fd = open(archive_path, O_RDONLY | O_CLOEXEC);
        struct archive *a;
        struct stat st;
        int r;

        if (fd < 0 || fstat(fd, &st) < 0)
                return image_why(-errno, why, why_len, "archive %s: %s", archive_path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return image_why(-EINVAL, why, why_len, "archive %s: not a regular file", archive_path);
        a = reader_new();
        if (!a)
                return image_why(-ENOMEM, why, why_len, "archive %s: out of memory", archive_path);
        if (archive_read_open_fd(a, fd, 64 * 1024) != ARCHIVE_OK)
                r = image_why(-EINVAL, why, why_len, "archive %s: not a readable tar archive", archive_path);
        else
                r = extract_all(a, dir_fd, free_bytes, why, why_len);
        archive_read_free(a);
        return r;
}

int image_archive_check_memory(const void *data, size_t len, char *why, size_t why_len)
{
        struct image_entry_state st = { 0 };
        struct archive *a = reader_new();
        struct archive_entry *e;
        unsigned n = 0;
        int r = 0;

        if (!a)
                return -ENOMEM;
        if (archive_read_open_memory(a, data, len) != ARCHIVE_OK)
                r = image_why(-EINVAL, why, why_len, "archive: not a readable tar archive");
        while (r == 0) {
                int h = archive_read_next_header(a, &e);
                const char *path;

                if (h == ARCHIVE_EOF)
                        break;
                if ((h != ARCHIVE_OK && h != ARCHIVE_WARN) || ++n > IMAGE_MAX_ARCHIVE_ENTRIES ||
                    !(path = archive_entry_pathname(e))) {
                        r = image_why(-EINVAL, why, why_len, "archive: unreadable or too many entries");
                        break;
                }
                r = image_entry_check(&st, path, entry_type(e), archive_entry_hardlink(e) != NULL,
                                      archive_entry_size_is_set(e) ? archive_entry_size(e) : -1, why, why_len);
                r = r == IMAGE_ENTRY_SKIP || r >= 0 ? 0 : r;
        }
        archive_read_free(a);
        return r;
}
