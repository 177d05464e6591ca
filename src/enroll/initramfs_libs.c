/* SPDX-License-Identifier: Apache-2.0 */
#include <elf.h>
#include <stdarg.h>
#include <stdio.h>

#include "metald/initramfs.h"
#include "metald/log.h"
#include "metald/util.h"

#define LIBS_MAX_SEARCH_DIRS 64         /* run path elements and standard directories of one lookup */

/* An object whose DT_NEEDED entries still have to be found. */
struct pending {
        char *path;                     /* for messages */
        char *origin;                   /* $ORIGIN: the directory it was found in */
        char *runpath;                  /* NULL when none */
        char **needed;
        size_t n_needed;
};

struct libs_ctx {
        uint16_t machine;
        const char *const *dirs;
        size_t n_dirs;
        struct initramfs_libs out;
        struct pending *queue;          /* one per object: the binary and every library */
        size_t n_queue, next;
        char *why;
        size_t why_len;
};

_printf_(2, 3) static void why_set(struct libs_ctx *c, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(c->why, c->why_len, fmt, ap);
        va_end(ap);
}

static const struct {
        uint16_t machine;
        const char *lib, *usr_lib;
} multiarch[] = {
        { EM_X86_64, "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu" },
        { EM_AARCH64, "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu" },
        { EM_RISCV, "/lib/riscv64-linux-gnu", "/usr/lib/riscv64-linux-gnu" },
        { EM_PPC64, "/lib/powerpc64le-linux-gnu", "/usr/lib/powerpc64le-linux-gnu" },
        { EM_S390, "/lib/s390x-linux-gnu", "/usr/lib/s390x-linux-gnu" },
};

/* The multiarch directories of machine, then the generic ones; NULLs for an unknown machine. */
static size_t standard_dirs(uint16_t machine, const char *dirs[6])
{
        size_t n = 0;

        for (size_t i = 0; i < ARRAY_SIZE(multiarch); i++)
                if (multiarch[i].machine == machine) {
                        dirs[n++] = multiarch[i].lib;
                        dirs[n++] = multiarch[i].usr_lib;
                }
        dirs[n++] = "/lib64";
        dirs[n++] = "/usr/lib64";
        dirs[n++] = "/lib";
        dirs[n++] = "/usr/lib";
        return n;
}

/* Lexically normalised absolute path: no "//", "." or ".."; "/" stays "/". */
static int path_normalize(const char *in, char *out, size_t cap)
{
        size_t o = 0;

        if (in[0] != '/' || cap < 2)
                return -EINVAL;
        out[o++] = '/';
        for (const char *p = in; *p;) {
                size_t len;

                while (*p == '/')
                        p++;
                len = strcspn(p, "/");
                if (len == 0 || (len == 1 && p[0] == '.')) {
                        p += len;
                        continue;
                }
                if (len == 2 && p[0] == '.' && p[1] == '.') {
                        while (o > 1 && out[o - 1] != '/')
                                o--;
                        if (o > 1)
                                o--;
                        p += len;
                        continue;
                }
                if (o + (o > 1) + len + 1 > cap)
                        return -ENAMETOOLONG;
                if (o > 1)
                        out[o++] = '/';
                memcpy(out + o, p, len);
                o += len;
                p += len;
        }
        out[o] = '\0';
        return 0;
}

static char *dir_of(const char *path)
{
        const char *slash = strrchr(path, '/');

        if (!slash)
                return strdup(".");
        if (slash == path)
                return strdup("/");
        return strndup(path, (size_t)(slash - path));
}

static const char *base_of(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash ? slash + 1 : path;
}

static bool have_soname(const struct libs_ctx *c, const char *name)
{
        for (size_t i = 0; i < c->out.n; i++)
                if (strcmp(base_of(c->out.libs[i].dest), name) == 0)
                        return true;
        return false;
}

static void pending_free(struct pending *p)
{
        for (size_t i = 0; i < p->n_needed; i++)
                free(p->needed[i]);
        free(p->needed);
        free(p->path);
        free(p->origin);
        free(p->runpath);
}

/* Queues an object's DT_NEEDED names, copied out of its (soon freed) bytes. */
static int queue_object(struct libs_ctx *c, const char *path, const struct elf_dynamic *d)
{
        struct pending *p;

        if (c->n_queue > INITRAMFS_MAX_LIBRARIES)
                return -E2BIG;
        p = &c->queue[c->n_queue];
        *p = (struct pending){ .path = strdup(path), .origin = dir_of(path) };
        if (!p->path || !p->origin || (d->runpath && !(p->runpath = strdup(d->runpath))) ||
            (d->n_needed && !(p->needed = calloc(d->n_needed, sizeof(*p->needed))))) {
                pending_free(p);
                return -ENOMEM;
        }
        c->n_queue++;
        for (size_t i = 0; i < d->n_needed; i++) {
                if (!(p->needed[i] = strdup(d->needed[i])))
                        return -ENOMEM;
                p->n_needed++;
        }
        return 0;
}

static int out_add(struct libs_ctx *c, const char *dest, const char *source, bool interp, size_t size,
                   const uint8_t sha256[32])
{
        struct initramfs_lib *l;

        if (c->out.n >= INITRAMFS_MAX_LIBRARIES) {
                why_set(c, "metald-agent needs more than %d shared libraries", INITRAMFS_MAX_LIBRARIES);
                return -E2BIG;
        }
        l = &c->out.libs[c->out.n];
        *l = (struct initramfs_lib){ .interp = interp, .size = size, .dest = strdup(dest), .source = strdup(source) };
        memcpy(l->sha256, sha256, INITRAMFS_SHA256_BYTES);
        c->out.n++;
        return l->dest && l->source ? 0 : -ENOMEM;
}

/*
 * Tries dir/name as ld.so would: 1 when it is a shared object for our
 * machine (added and queued), 0 to keep searching, <0 on error.
 */
static int try_candidate(struct libs_ctx *c, const char *dir, const char *name, const struct pending *by)
{
        _cleanup_free_ uint8_t *data = NULL;
        char path[CONFIG_MAX_PATH_BYTES], dest[CONFIG_MAX_PATH_BYTES];
        uint8_t sha256[INITRAMFS_SHA256_BYTES];
        struct elf_dynamic d;
        size_t len = 0;
        int r;

        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
            path_normalize(path, dest, sizeof(dest)) < 0)
                return 0;
        r = fs_read_file(path, INITRAMFS_MAX_ELF_BYTES, sha256, &data, &len);
        if (r == -ENOENT || r == -ENOTDIR || r == -EISDIR || r == -ELOOP || r == -EACCES)
                return 0;
        if (r < 0) {
                why_set(c, "cannot read %s (needed by %s): %s", path, by->path, strerror(-r));
                return r;
        }
        r = elf_read_dynamic(data, len, &d);
        if (r == -ENOEXEC || (r == 0 && (d.type != ET_DYN || d.machine != c->machine)))
                return 0;
        if (r < 0) {
                why_set(c, "%s (needed by %s) is a malformed ELF file: %s", path, by->path, strerror(-r));
                return r;
        }
        if ((r = out_add(c, dest, path, false, len, sha256)) < 0 || (r = queue_object(c, path, &d)) < 0)
                return r;
        return 1;
}

/* The run path elements of an object, $ORIGIN expanded; others with '$' or relative ones are skipped. */
static size_t runpath_dirs(const struct pending *p, char bufs[][CONFIG_MAX_PATH_BYTES], size_t max)
{
        const char *s = p->runpath;
        size_t n = 0;

        while (s && *s && n < max) {
                size_t len = strcspn(s, ":");
                char el[CONFIG_MAX_PATH_BYTES];

                if (len > 0 && len < sizeof(el)) {
                        memcpy(el, s, len);
                        el[len] = '\0';
                        if (str_has_prefix(el, "$ORIGIN") || str_has_prefix(el, "${ORIGIN}")) {
                                const char *rest = el + (el[1] == '{' ? 9 : 7);

                                if ((*rest == '/' || !*rest) && !strchr(rest, '$') &&
                                    (size_t)snprintf(bufs[n], sizeof(bufs[n]), "%s%s", p->origin, rest) < sizeof(bufs[n]))
                                        n++;
                        } else if (el[0] == '/' && !strchr(el, '$')) {
                                memcpy(bufs[n++], el, len + 1);
                        }
                }
                s += len + (s[len] == ':');
        }
        return n;
}

static int find_needed(struct libs_ctx *c, const struct pending *by, const char *name)
{
        _cleanup_free_ char (*rp)[CONFIG_MAX_PATH_BYTES] = malloc(LIBS_MAX_SEARCH_DIRS * CONFIG_MAX_PATH_BYTES);
        char esc[300];
        size_t n_rp;
        int r;

        if (!rp)
                return -ENOMEM;
        n_rp = runpath_dirs(by, rp, LIBS_MAX_SEARCH_DIRS);
        for (size_t i = 0; i < n_rp + c->n_dirs; i++) {
                r = try_candidate(c, i < n_rp ? rp[i] : c->dirs[i - n_rp], name, by);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        why_set(c, "shared library %s, needed by %s, is not in its run path nor in the standard directories",
                log_escape(esc, sizeof(esc), name, strlen(name)), by->path);
        return -ENOENT;
}

static int add_interp(struct libs_ctx *c, const char *interp)
{
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t sha256[INITRAMFS_SHA256_BYTES];
        char dest[CONFIG_MAX_PATH_BYTES];
        size_t len = 0;
        int r;

        if (path_normalize(interp, dest, sizeof(dest)) < 0) {
                why_set(c, "the ELF interpreter path of the agent is not usable");
                return -EINVAL;
        }
        r = fs_read_file(interp, INITRAMFS_MAX_ELF_BYTES, sha256, &data, &len);
        if (r < 0) {
                why_set(c, "cannot read the ELF interpreter %s: %s", interp, strerror(-r));
                return r;
        }
        return out_add(c, dest, interp, true, len, sha256);
}

/* Breadth first over the queue: every object's needs, each library added once by soname. */
static int libs_close(struct libs_ctx *c)
{
        int r;

        for (; c->next < c->n_queue; c->next++) {
                struct pending *p = &c->queue[c->next];

                for (size_t i = 0; i < p->n_needed; i++) {
                        if (have_soname(c, p->needed[i]))
                                continue;
                        if ((r = find_needed(c, p, p->needed[i])) < 0)
                                return r;
                }
        }
        return 0;
}

static int libs_start(struct libs_ctx *c, const char *binary)
{
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_free_ char *abs = NULL;
        struct elf_dynamic d;
        size_t len = 0;
        int r = fs_read_file(binary, INITRAMFS_MAX_ELF_BYTES, NULL, &data, &len);

        if (r < 0) {
                why_set(c, "cannot read %s: %s", binary, strerror(-r));
                return r;
        }
        r = elf_read_dynamic(data, len, &d);
        if (r < 0) {
                why_set(c, "%s is not a usable ELF64 executable: %s", binary,
                        r == -ENOEXEC ? "not an ELF64 executable or shared object" : strerror(-r));
                return r;
        }
        c->machine = d.machine;
        if (d.interp && (r = add_interp(c, d.interp)) < 0)
                return r;
        /* $ORIGIN of a binary named by a relative path is still an absolute directory */
        abs = realpath(binary, NULL);
        return queue_object(c, abs ? abs : binary, &d);
}

int initramfs_libs_resolve(const char *binary, const char *const *dirs, size_t n_dirs,
                           struct initramfs_libs *ret, char *why, size_t why_len)
{
        struct libs_ctx c = { .dirs = dirs, .n_dirs = n_dirs, .why = why, .why_len = why_len };
        const char *std[6];
        int r;

        if (why_len)
                why[0] = '\0';
        c.out.libs = calloc(INITRAMFS_MAX_LIBRARIES, sizeof(*c.out.libs));
        c.queue = calloc(INITRAMFS_MAX_LIBRARIES + 1, sizeof(*c.queue));
        r = c.out.libs && c.queue ? libs_start(&c, binary) : -ENOMEM;
        if (r == 0 && !dirs) {
                c.n_dirs = standard_dirs(c.machine, std);
                c.dirs = std;
        }
        if (r == 0)
                r = libs_close(&c);
        if (r == -ENOMEM)
                why_set(&c, "out of memory");
        else if (r == -E2BIG && !*why)
                why_set(&c, "%s needs more than %d shared libraries", binary, INITRAMFS_MAX_LIBRARIES);
        for (size_t i = 0; i < c.n_queue; i++)
                pending_free(&c.queue[i]);
        free(c.queue);
        if (r < 0) {
                initramfs_libs_free(&c.out);
                return r;
        }
        *ret = c.out;
        return 0;
}

void initramfs_libs_free(struct initramfs_libs *l)
{
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->libs[i].dest);
                free(l->libs[i].source);
        }
        free(l->libs);
        *l = (struct initramfs_libs){ 0 };
}
