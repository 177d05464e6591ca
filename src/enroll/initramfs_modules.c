/* SPDX-License-Identifier: Apache-2.0 */
#include <archive.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "metald/initramfs.h"
#include "metald/syntax.h"
#include "metald/log.h"
#include "metald/util.h"

#define UNPACK_CHUNK (64 * 1024)

enum mark { MARK_NEW, MARK_ACTIVE, MARK_DONE };

/* One module file of the tree. */
struct kmod {
        char name[INITRAMFS_MAX_MODULE_NAME + 1];
        char *path;                     /* below the tree */
        enum initramfs_unpack unpack;
        enum mark mark;
};

struct kmod_tree {
        const char *dir;
        struct kmod *mods;              /* sorted by name, preferred file first */
        size_t n, alloc;
        char (*builtin)[INITRAMFS_MAX_MODULE_NAME + 1];        /* sorted, unique */
        bool *builtin_seen;
        size_t n_builtin;
        size_t stack[INITRAMFS_MAX_MODULES];    /* the modules being visited, for cycle reports */
        size_t depth;
        struct initramfs_modules out;
        char *why;
        size_t why_len;
};

_printf_(2, 3) static int why_set(struct kmod_tree *t, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(t->why, t->why_len, fmt, ap);
        va_end(ap);
        return 0;
}

static const struct {
        const char *suffix;
        enum initramfs_unpack unpack;
} module_suffixes[] = {
        { ".ko", INITRAMFS_UNPACK_NONE },
        { ".ko.xz", INITRAMFS_UNPACK_XZ },
        { ".ko.zst", INITRAMFS_UNPACK_ZSTD },
        { ".ko.gz", INITRAMFS_UNPACK_GZIP },
};

/* The module name of a file name, or -EINVAL when it is not a module file. */
static int module_file_name(const char *file, char name[INITRAMFS_MAX_MODULE_NAME + 1], enum initramfs_unpack *ret)
{
        size_t len = strlen(file);

        for (size_t i = 0; i < ARRAY_SIZE(module_suffixes); i++) {
                size_t sl = strlen(module_suffixes[i].suffix);

                if (len <= sl || strcmp(file + len - sl, module_suffixes[i].suffix) != 0)
                        continue;
                if (len - sl > INITRAMFS_MAX_MODULE_NAME)
                        return -EINVAL;
                memcpy(name, file, len - sl);
                name[len - sl] = '\0';
                if (!syntax_module_name(name))
                        return -EINVAL;
                initramfs_module_name_normalize(name);
                *ret = module_suffixes[i].unpack;
                return 0;
        }
        return -EINVAL;
}

/* Directory and file names that stay one word in the module-order file /init reads. */
static bool tree_name_ok(const char *s)
{
        size_t n = strlen(s);

        return n > 0 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") == n;
}

static int tree_add(struct kmod_tree *t, const char *rel, const char *file)
{
        struct kmod m = { 0 };

        if (module_file_name(file, m.name, &m.unpack) < 0)
                return 0;
        if (t->n >= INITRAMFS_MAX_TREE_MODULES) {
                why_set(t, "%s holds more than %d module files", t->dir, INITRAMFS_MAX_TREE_MODULES);
                return -E2BIG;
        }
        if (t->n == t->alloc) {
                size_t alloc = t->alloc ? t->alloc * 2 : 1024;
                struct kmod *p = reallocarray(t->mods, alloc, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                t->mods = p;
                t->alloc = alloc;
        }
        if (asprintf(&m.path, "%s%s%s", rel, *rel ? "/" : "", file) < 0)
                return -ENOMEM;
        t->mods[t->n++] = m;
        return 0;
}

static int tree_walk(struct kmod_tree *t, int dirfd, const char *rel, unsigned depth);

static int tree_entry(struct kmod_tree *t, int dirfd, const char *rel, unsigned depth, struct dirent *de)
{
        _cleanup_free_ char *sub = NULL;
        unsigned char type = de->d_type;
        struct stat st;
        int r;

        if (!tree_name_ok(de->d_name))
                return 0;
        if (type == DT_UNKNOWN) {
                if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return 0;
                type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
        }
        if (type == DT_REG)
                return tree_add(t, rel, de->d_name);
        /* symlinks (build/, source/) are never followed */
        if (type != DT_DIR)
                return 0;
        if (depth >= INITRAMFS_MAX_TREE_DEPTH) {
                why_set(t, "%s: %s/%s is nested deeper than %d directories", t->dir, rel, de->d_name,
                        INITRAMFS_MAX_TREE_DEPTH);
                return -ELOOP;
        }
        if (asprintf(&sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0)
                return -ENOMEM;
        r = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (r < 0)
                return 0;
        return tree_walk(t, r, sub, depth + 1);
}

/* Takes ownership of dirfd. */
static int tree_walk(struct kmod_tree *t, int dirfd, const char *rel, unsigned depth)
{
        DIR *d = fdopendir(dirfd);
        struct dirent *de;
        int r = 0;

        if (!d) {
                close(dirfd);
                return -errno;
        }
        while (r == 0 && (de = readdir(d)))
                r = tree_entry(t, dirfd, rel, depth, de);
        closedir(d);
        return r;
}

static int kmod_cmp(const void *a, const void *b)
{
        const struct kmod *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        /* depmod's default search order: updates/ before the kernel's own modules */
        bool ux = str_has_prefix(x->path, "updates/"), uy = str_has_prefix(y->path, "updates/");

        if (c)
                return c;
        if (ux != uy)
                return ux ? -1 : 1;
        return strcmp(x->path, y->path);
}

static int name_cmp(const void *a, const void *b)
{
        return strcmp(a, b);
}

static int kmod_key_cmp(const void *key, const void *elem)
{
        return strcmp(key, ((const struct kmod *)elem)->name);
}

/* The first (preferred) file of a module name. */
static struct kmod *tree_find(struct kmod_tree *t, const char *name)
{
        struct kmod *m = t->n ? bsearch(name, t->mods, t->n, sizeof(*t->mods), kmod_key_cmp) : NULL;

        while (m && m > t->mods && strcmp(m[-1].name, name) == 0)
                m--;
        return m;
}

static int builtin_add_line(struct kmod_tree *t, const char *line, size_t len)
{
        const char *base = line;
        char file[NAME_MAX + 1];
        enum initramfs_unpack unpack;

        for (size_t i = 0; i < len; i++)
                if (line[i] == '/')
                        base = line + i + 1;
        len -= (size_t)(base - line);
        if (len == 0 || len > NAME_MAX)
                return 0;
        memcpy(file, base, len);
        file[len] = '\0';
        if (module_file_name(file, t->builtin[t->n_builtin], &unpack) == 0)
                t->n_builtin++;
        return 0;
}

/* modules.builtin: one path a line of a module the kernel has built in; absent means none. */
static int builtin_load(struct kmod_tree *t)
{
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0, lines = 1, start = 0;
        int r;

        if (asprintf(&path, "%s/modules.builtin", t->dir) < 0)
                return -ENOMEM;
        r = fs_read_file(path, INITRAMFS_MAX_BUILTIN_BYTES, NULL, &data, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                why_set(t, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        for (size_t i = 0; i < len; i++)
                lines += data[i] == '\n';
        t->builtin = calloc(lines, sizeof(*t->builtin));
        t->builtin_seen = calloc(lines, sizeof(*t->builtin_seen));
        if (!t->builtin || !t->builtin_seen)
                return -ENOMEM;
        for (size_t i = 0; i <= len; i++) {
                if (i < len && data[i] != '\n')
                        continue;
                builtin_add_line(t, (const char *)data + start, i - start);
                start = i + 1;
        }
        qsort(t->builtin, t->n_builtin, sizeof(*t->builtin), name_cmp);
        return 0;
}

/* Counts each built-in name once, however often it is asked for. */
static bool builtin_has(struct kmod_tree *t, const char *name)
{
        char (*b)[INITRAMFS_MAX_MODULE_NAME + 1];

        if (t->n_builtin == 0)
                return false;
        b = bsearch(name, t->builtin, t->n_builtin, sizeof(*t->builtin), name_cmp);
        if (!b)
                return false;
        if (!t->builtin_seen[b - t->builtin]) {
                t->builtin_seen[b - t->builtin] = true;
                t->out.n_builtin++;
        }
        return true;
}

static int out_add(struct kmod_tree *t, const struct kmod *k, uint64_t size, const uint8_t sha256[32])
{
        struct initramfs_module *m;

        if (!t->out.mods && !(t->out.mods = calloc(INITRAMFS_MAX_MODULES, sizeof(*t->out.mods))))
                return -ENOMEM;
        m = &t->out.mods[t->out.n];
        *m = (struct initramfs_module){ .unpack = k->unpack, .size = size };
        memcpy(m->name, k->name, sizeof(m->name));
        memcpy(m->sha256, sha256, INITRAMFS_SHA256_BYTES);
        if (!(m->path = strdup(k->path)))
                return -ENOMEM;
        t->out.n++;
        return 0;
}

static void why_cycle(struct kmod_tree *t, const struct kmod *again)
{
        struct buf b = BUF_INIT(t->why_len);
        size_t from = 0;

        for (size_t i = 0; i < t->depth; i++)
                if (&t->mods[t->stack[i]] == again)
                        from = i;
        buf_puts(&b, "kernel modules depend on each other in a cycle: ");
        for (size_t i = from; i < t->depth; i++)
                buf_printf(&b, "%s -> ", t->mods[t->stack[i]].name);
        buf_puts(&b, again->name);
        why_set(t, "%s", b.data ? b.data : "kernel modules depend on each other in a cycle");
        buf_free(&b);
}

/* Reads a module's .modinfo: its size in the image, its hash and what it depends on. */
static int kmod_info(struct kmod_tree *t, const struct kmod *k, struct elf_modinfo *mi, uint64_t *ret_size,
                     uint8_t sha256[32])
{
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        int r;

        if (asprintf(&path, "%s/%s", t->dir, k->path) < 0)
                return -ENOMEM;
        r = initramfs_module_read(path, k->unpack, sha256, &data, &len);
        if (r < 0) {
                why_set(t, "cannot read kernel module %s: %s", path, strerror(-r));
                return r;
        }
        r = elf_read_modinfo(data, len, mi);
        if (r < 0) {
                why_set(t, "%s is not a usable kernel module: %s", path,
                        r == -ENODATA ? "it has no .modinfo section" : r == -ENOEXEC ? "not a relocatable ELF64 file"
                                                                                      : strerror(-r));
                return r;
        }
        if (*mi->name && strcmp(mi->name, k->name) != 0) {
                why_set(t, "%s declares the module name %s", path, mi->name);
                return -EBADMSG;
        }
        *ret_size = len;
        return 0;
}

static int visit(struct kmod_tree *t, const char *name, const char *needed_by)
{
        _cleanup_free_ struct elf_modinfo *mi = NULL;
        uint8_t sha256[INITRAMFS_SHA256_BYTES];
        struct kmod *k;
        uint64_t size;
        int r;

        if (builtin_has(t, name))
                return 0;
        k = tree_find(t, name);
        if (!k) {
                if (needed_by)
                        why_set(t, "kernel module %s, which %s depends on, is neither in %s nor built in", name,
                                needed_by, t->dir);
                else
                        why_set(t, "kernel module %s is neither in %s nor built in (modules.builtin)", name, t->dir);
                return -ENOENT;
        }
        if (k->mark == MARK_DONE)
                return 0;
        if (k->mark == MARK_ACTIVE) {
                why_cycle(t, k);
                return -ELOOP;
        }
        if (t->depth >= INITRAMFS_MAX_MODULES || t->out.n + t->depth >= INITRAMFS_MAX_MODULES) {
                why_set(t, "more than %d kernel modules with their dependencies", INITRAMFS_MAX_MODULES);
                return -E2BIG;
        }
        if (!(mi = malloc(sizeof(*mi))))
                return -ENOMEM;
        if ((r = kmod_info(t, k, mi, &size, sha256)) < 0)
                return r;
        k->mark = MARK_ACTIVE;
        t->stack[t->depth++] = (size_t)(k - t->mods);
        for (size_t i = 0; i < mi->n_depends; i++)
                if ((r = visit(t, mi->depends[i], k->name)) < 0)
                        return r;
        t->depth--;
        k->mark = MARK_DONE;
        return out_add(t, k, size, sha256);
}

static void tree_free(struct kmod_tree *t)
{
        for (size_t i = 0; i < t->n; i++)
                free(t->mods[i].path);
        free(t->mods);
        free(t->builtin);
        free(t->builtin_seen);
}

static int tree_load(struct kmod_tree *t)
{
        int fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r;

        if (fd < 0) {
                r = -errno;
                why_set(t, "cannot open the module tree %s: %s", t->dir, strerror(errno));
                return r;
        }
        r = tree_walk(t, fd, "", 0);
        if (r < 0) {
                if (!*t->why)
                        why_set(t, "cannot read the module tree %s: %s", t->dir, strerror(-r));
                return r;
        }
        if (t->n)
                qsort(t->mods, t->n, sizeof(*t->mods), kmod_cmp);
        return builtin_load(t);
}

int initramfs_modules_resolve(const char *dir, const char *const *names, size_t n_names, size_t n_optional,
                              struct initramfs_modules *ret, char *why, size_t why_len)
{
        struct kmod_tree *t = calloc(1, sizeof(*t));
        int r;

        if (!t)
                return -ENOMEM;
        *t = (struct kmod_tree){ .dir = dir, .why = why, .why_len = why_len };
        if (why_len)
                why[0] = '\0';
        r = tree_load(t);
        for (size_t i = 0; r == 0 && i < n_names; i++) {
                char name[INITRAMFS_MAX_MODULE_NAME + 1];

                if (!syntax_module_name(names[i])) {
                        char esc[80];

                        why_set(t, "'%s' is not a kernel module name",
                                log_escape(esc, sizeof(esc), names[i], strlen(names[i])));
                        r = -EINVAL;
                        break;
                }
                str_copy(name, sizeof(name), names[i]);
                initramfs_module_name_normalize(name);
                if (i < n_optional && !builtin_has(t, name) && !tree_find(t, name)) {
                        log_warning("initramfs: kernel module %s is not in %s; the image goes without it", name, dir);
                        continue;
                }
                r = visit(t, name, NULL);
        }
        if (r == -ENOMEM)
                why_set(t, "out of memory");
        if (r == 0) {
                *ret = t->out;
                t->out = (struct initramfs_modules){ 0 };
        }
        initramfs_modules_free(&t->out);
        tree_free(t);
        free(t);
        return r;
}

void initramfs_modules_free(struct initramfs_modules *m)
{
        if (!m)
                return;
        for (size_t i = 0; i < m->n; i++)
                free(m->mods[i].path);
        free(m->mods);
        *m = (struct initramfs_modules){ 0 };
}

static int unpack_filter(enum initramfs_unpack u)
{
        switch (u) {
        case INITRAMFS_UNPACK_XZ:
                return ARCHIVE_FILTER_XZ;
        case INITRAMFS_UNPACK_ZSTD:
                return ARCHIVE_FILTER_ZSTD;
        case INITRAMFS_UNPACK_GZIP:
                return ARCHIVE_FILTER_GZIP;
        default:
                return ARCHIVE_FILTER_NONE;
        }
}

/* Decompresses one stream with libarchive's raw format; the output is capped. */
static int unpack(const uint8_t *src, size_t n, enum initramfs_unpack u, uint8_t **ret, size_t *ret_len)
{
        struct archive *a = archive_read_new();
        struct buf out = BUF_INIT(INITRAMFS_MAX_ELF_BYTES);
        struct archive_entry *e;
        char chunk[UNPACK_CHUNK];
        int r = 0;

        if (!a)
                return -ENOMEM;
        if (archive_read_support_filter_xz(a) != ARCHIVE_OK || archive_read_support_filter_zstd(a) != ARCHIVE_OK ||
            archive_read_support_filter_gzip(a) != ARCHIVE_OK || archive_read_support_format_raw(a) != ARCHIVE_OK ||
            archive_read_open_memory(a, src, n) != ARCHIVE_OK || archive_read_next_header(a, &e) != ARCHIVE_OK ||
            archive_filter_code(a, 0) != unpack_filter(u))
                r = -EBADMSG;
        while (r == 0) {
                la_ssize_t got = archive_read_data(a, chunk, sizeof(chunk));

                if (got == 0)
                        break;
                if (got < 0)
                        r = -EBADMSG;
                else
                        r = buf_append(&out, chunk, (size_t)got);
        }
        archive_read_free(a);
        if (r < 0) {
                buf_free(&out);
                return r;
        }
        *ret_len = out.len;
        *ret = (uint8_t *)buf_steal(&out);
        return *ret ? 0 : -EBADMSG;
}

int initramfs_module_read(const char *path, enum initramfs_unpack u, uint8_t sha256[INITRAMFS_SHA256_BYTES],
                          uint8_t **ret, size_t *ret_len)
{
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        int r = fs_read_file(path, INITRAMFS_MAX_ELF_BYTES, sha256, &data, &len);

        if (r < 0)
                return r;
        if (u == INITRAMFS_UNPACK_NONE) {
                *ret = TAKE_PTR(data);
                *ret_len = len;
                return 0;
        }
        return unpack(data, len, u, ret, ret_len);
}
