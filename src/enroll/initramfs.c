/* SPDX-License-Identifier: Apache-2.0 */
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "metald/fs.h"
#include "metald/initramfs.h"
#include "metald/log.h"
#include "metald/manifest.h"
#include "metald/util.h"

/* Bumped whenever the same inputs would give different bytes: it is part of the digest. */
#define INITRAMFS_BUILDER_VERSION "1"
#define INITRAMFS_READ_CHUNK      (1024 * 1024)
#define INITRAMFS_DIGEST_NAME_HEX 16            /* hex digits of the digest in the file name */

#ifndef METALD_PREFIX
#define METALD_PREFIX "/usr/local"
#endif

/* NICs, then disk controllers, then file systems: the order /init loads them in. */
const char *const initramfs_default_modules[INITRAMFS_DEFAULT_MODULES] = {
        "e1000", "e1000e", "igb", "ixgbe", "i40e", "ice", "mlx4_en", "mlx5_core", "bnxt_en", "tg3", "qede",
        "be2net", "sfc", "virtio_net", "virtio_pci", "virtio_blk", "virtio_scsi", "ata_piix", "ahci", "nvme",
        "megaraid_sas", "mpt3sas", "hpsa", "smartpqi", "sd_mod", "vfat", "ext4",
};

_printf_(3, 4) static void why_set(char *why, size_t len, const char *fmt, ...)
{
        va_list ap;

        if (!len)
                return;
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
}

static bool agent_exists(const char *path)
{
        return access(path, R_OK) == 0;
}

/* Next to the running metald (the build tree), then the install layout, then the configured prefix. */
static void agent_default(char *dst, size_t cap)
{
        char exe[CONFIG_MAX_PATH_BYTES], *dir;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

        if (n > 0) {
                exe[n] = '\0';
                dir = dirname(exe);
                if ((size_t)snprintf(dst, cap, "%s/metald-agent", dir) < cap && agent_exists(dst))
                        return;
                if ((size_t)snprintf(dst, cap, "%s/../lib/metald/metald-agent", dir) < cap && agent_exists(dst))
                        return;
        }
        snprintf(dst, cap, "%s/lib/metald/metald-agent", METALD_PREFIX);
}

void initramfs_spec_from_config(const struct boot_enroll_build *b, struct initramfs_spec *ret)
{
        *ret = (struct initramfs_spec){ .modules_dir = b->modules, .busybox = b->busybox,
                                        .compression = b->compression };
        for (size_t i = 0; i < INITRAMFS_DEFAULT_MODULES; i++)
                ret->modules[ret->n_modules++] = initramfs_default_modules[i];
        ret->n_optional = ret->n_modules;
        for (size_t i = 0; i < b->n_extra_modules && i < CONFIG_MAX_EXTRA_MODULES; i++)
                ret->modules[ret->n_modules++] = b->extra_modules[i];
        if (*b->agent)
                str_copy(ret->agent, sizeof(ret->agent), b->agent);
        else
                agent_default(ret->agent, sizeof(ret->agent));
}

void initramfs_spec_keys_from_config(const struct images_config *c, struct initramfs_spec *spec)
{
        spec->n_trusted_keys = MIN(c->n_trusted_keys, (size_t)IMAGE_MAX_KEYS);
        for (size_t i = 0; i < spec->n_trusted_keys; i++)
                spec->trusted_keys[i] = c->trusted_keys[i];
        spec->n_revoked_keys = MIN(c->n_revoked_keys, (size_t)IMAGE_MAX_KEYS);
        for (size_t i = 0; i < spec->n_revoked_keys; i++)
                spec->revoked_keys[i] = c->revoked_keys[i];
}

/* Planning: every entry of the image, with the hash of what it will hold */

static struct initramfs_entry *plan_add(struct initramfs_plan *p, enum initramfs_kind kind, const char *path,
                                        uint32_t mode)
{
        struct initramfs_entry *e;

        if (p->n_entries >= INITRAMFS_MAX_FILES)
                return NULL;
        if (p->n_entries == p->alloc) {
                size_t alloc = p->alloc ? p->alloc * 2 : 256;
                struct initramfs_entry *n = reallocarray(p->entries, alloc, sizeof(*n));

                if (!n)
                        return NULL;
                p->entries = n;
                p->alloc = alloc;
        }
        e = &p->entries[p->n_entries];
        *e = (struct initramfs_entry){ .kind = kind, .mode = mode, .path = strdup(path) };
        if (!e->path)
                return NULL;
        p->n_entries++;
        return e;
}

/* The error of a failed plan_add: the cap, or memory. */
static int plan_add_error(const struct initramfs_plan *p, char *why, size_t why_len)
{
        if (p->n_entries >= INITRAMFS_MAX_FILES) {
                why_set(why, why_len, "the image would hold more than %d files", INITRAMFS_MAX_FILES);
                return -E2BIG;
        }
        why_set(why, why_len, "out of memory");
        return -ENOMEM;
}

static bool plan_has(const struct initramfs_plan *p, const char *path)
{
        for (size_t i = 0; i < p->n_entries; i++)
                if (strcmp(p->entries[i].path, path) == 0)
                        return true;
        return false;
}

static int plan_dir(struct initramfs_plan *p, const char *path, uint32_t mode)
{
        if (plan_has(p, path))
                return 0;
        return plan_add(p, INITRAMFS_DIR, path, mode) ? 0 : -ENOMEM;
}

/* Every directory above every entry, so the kernel never unpacks into a missing one. */
static int plan_parents(struct initramfs_plan *p)
{
        for (size_t i = 0; i < p->n_entries; i++) {
                char dir[CONFIG_MAX_PATH_BYTES];
                char *slash;

                if (str_copy(dir, sizeof(dir), p->entries[i].path) < 0)
                        return -ENAMETOOLONG;
                while ((slash = strrchr(dir, '/'))) {
                        *slash = '\0';
                        if (plan_dir(p, dir, 0755) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

static int plan_generated(struct initramfs_plan *p, const char *path, uint32_t mode, const char *text)
{
        struct initramfs_entry *e = plan_add(p, INITRAMFS_FILE, path, mode);

        if (!e || !(e->data = strdup(text)))
                return -ENOMEM;
        e->size = strlen(text);
        return fs_sha256(text, e->size, e->sha256);
}

static int plan_source(struct initramfs_plan *p, const char *path, uint32_t mode, const char *source,
                       enum initramfs_unpack unpack, uint64_t size, const uint8_t sha256[32])
{
        struct initramfs_entry *e = plan_add(p, INITRAMFS_FILE, path, mode);

        if (!e || !(e->source = strdup(source)))
                return -ENOMEM;
        e->unpack = unpack;
        e->size = size;
        memcpy(e->sha256, sha256, INITRAMFS_SHA256_BYTES);
        return 0;
}

static int plan_symlink(struct initramfs_plan *p, const char *path, const char *target)
{
        struct initramfs_entry *e = plan_add(p, INITRAMFS_SYMLINK, path, 0777);

        if (!e || !(e->data = strdup(target)))
                return -ENOMEM;
        return fs_sha256(target, strlen(target), e->sha256);
}

static int plan_busybox(struct initramfs_plan *p, const char *busybox, char *why, size_t why_len)
{
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t sha256[INITRAMFS_SHA256_BYTES];
        char link[64];
        struct elf_dynamic d;
        size_t len = 0;
        int r = fs_read_file(busybox, INITRAMFS_MAX_ELF_BYTES, sha256, &data, &len);

        if (r < 0) {
                why_set(why, why_len, "cannot read busybox %s: %s", busybox, strerror(-r));
                return r;
        }
        r = elf_read_dynamic(data, len, &d);
        if (r < 0) {
                why_set(why, why_len, "busybox %s is not an ELF64 executable: %s", busybox, strerror(-r));
                return r;
        }
        if (d.interp || d.n_needed) {
                why_set(why, why_len, "busybox %s is dynamically linked; a static one is needed (busybox-static)",
                        busybox);
                return -EINVAL;
        }
        if ((r = plan_source(p, INITRAMFS_BUSYBOX_PATH, 0755, busybox, INITRAMFS_UNPACK_NONE, len, sha256)) < 0)
                return r;
        for (size_t i = 0; i < initramfs_n_applets; i++) {
                snprintf(link, sizeof(link), "bin/%s", initramfs_applets[i]);
                if ((r = plan_symlink(p, link, "busybox")) < 0)
                        return r;
        }
        return 0;
}

static char *dir_of_dup(const char *path)
{
        const char *slash = strrchr(path, '/');

        return slash && slash != path ? strndup(path, (size_t)(slash - path)) : strdup("/");
}

static int dir_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* LD_LIBRARY_PATH for the agent: the sorted, distinct directories its libraries were stored in. */
static int library_path(const struct initramfs_libs *l, struct buf *out)
{
        _cleanup_free_ char **dirs = calloc(l->n ? l->n : 1, sizeof(*dirs));
        size_t n = 0;
        int r = 0;

        if (!dirs)
                return -ENOMEM;
        for (size_t i = 0; i < l->n; i++)
                if (!l->libs[i].interp && !(dirs[n++] = dir_of_dup(l->libs[i].dest)))
                        r = -ENOMEM;
        qsort(dirs, n, sizeof(*dirs), dir_cmp);
        for (size_t i = 0; r == 0 && i < n; i++)
                if (i == 0 || strcmp(dirs[i], dirs[i - 1]) != 0)
                        r = buf_printf(out, "%s%s", out->len ? ":" : "", dirs[i]);
        if (r == 0 && out->len)
                r = buf_puts(out, "\n");
        for (size_t i = 0; i < n; i++)
                free(dirs[i]);
        return r;
}

static int plan_agent(struct initramfs_plan *p, const char *agent, char *why, size_t why_len)
{
        struct initramfs_libs libs = { 0 };
        struct buf lp = BUF_INIT(64 * 1024);
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t sha256[INITRAMFS_SHA256_BYTES];
        size_t len = 0;
        int r = fs_read_file(agent, INITRAMFS_MAX_ELF_BYTES, sha256, &data, &len);

        if (r < 0) {
                why_set(why, why_len, "cannot read metald-agent %s: %s (see boot.enroll.build.agent)", agent,
                        strerror(-r));
                return r;
        }
        if ((r = plan_source(p, INITRAMFS_AGENT_PATH, 0755, agent, INITRAMFS_UNPACK_NONE, len, sha256)) < 0 ||
            (r = initramfs_libs_resolve(agent, NULL, 0, &libs, why, why_len)) < 0)
                return r;
        for (size_t i = 0; r == 0 && i < libs.n; i++) {
                const struct initramfs_lib *l = &libs.libs[i];

                r = plan_source(p, l->dest + 1, l->interp ? 0755 : 0644, l->source, INITRAMFS_UNPACK_NONE, l->size,
                                l->sha256);
        }
        if (r == 0)
                r = library_path(&libs, &lp);
        if (r == 0 && lp.len)
                r = plan_generated(p, INITRAMFS_LIBRARY_PATH, 0644, lp.data);
        p->n_libraries = libs.n;
        initramfs_libs_free(&libs);
        buf_free(&lp);
        return r;
}

/* One PEM public key file: its key, and its bytes when it is text (the caller frees them). */
static int read_key(const char *path, struct manifest_key *ret, char **ret_text, char *why, size_t why_len)
{
        _cleanup_free_ uint8_t *data = NULL;
        size_t len = 0;
        int r = fs_read_file(path, IMAGE_MAX_KEY_FILE_BYTES, NULL, &data, &len);

        if (r == 0 && (memchr(data, '\0', len) || (r = manifest_key_from_pem(data, len, ret)) < 0))
                r = -EINVAL;
        if (r < 0) {
                why_set(why, why_len, "cannot use image key %s: %s", path,
                        r == -EINVAL ? "not an Ed25519 public key in PEM" : strerror(-r));
                return r;
        }
        if (!(*ret_text = strndup((const char *)data, len)))
                return -ENOMEM;
        return 0;
}

/* Every trusted key that is not revoked, as INITRAMFS_KEYS_DIR/<key id>.pub, the file's bytes as they are. */
static int plan_keys(struct initramfs_plan *p, const struct initramfs_spec *spec, char *why, size_t why_len)
{
        struct manifest_key revoked[IMAGE_MAX_KEYS];
        int r;

        for (size_t i = 0; i < spec->n_revoked_keys; i++) {
                _cleanup_free_ char *text = NULL;

                if ((r = read_key(spec->revoked_keys[i], &revoked[i], &text, why, why_len)) < 0)
                        return r;
        }
        for (size_t i = 0; i < spec->n_trusted_keys; i++) {
                _cleanup_free_ char *text = NULL;
                struct manifest_key k;
                char path[sizeof(INITRAMFS_KEYS_DIR) + MANIFEST_KEY_ID_HEX + 8];
                bool out = false;

                if ((r = read_key(spec->trusted_keys[i], &k, &text, why, why_len)) < 0)
                        return r;
                for (size_t j = 0; j < spec->n_revoked_keys; j++)
                        out |= memcmp(k.pub, revoked[j].pub, MANIFEST_KEY_BYTES) == 0;
                snprintf(path, sizeof(path), "%s/%s.pub", INITRAMFS_KEYS_DIR, k.id);
                if (out || plan_has(p, path))
                        continue;       /* revoked, or the same key listed twice */
                if ((r = plan_generated(p, path, 0644, text)) < 0)
                        return r;
        }
        return 0;
}

static bool version_ok(const char *s)
{
        size_t n = strlen(s);

        return n > 0 && n < 128 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-") == n;
}

/* The kernel version a module tree is for: the last component of its path. */
static int module_version(const char *dir, char *dst, size_t cap)
{
        char tmp[CONFIG_MAX_PATH_BYTES];
        size_t n;
        char *base;

        if (str_copy(tmp, sizeof(tmp), dir) < 0)
                return -ENAMETOOLONG;
        for (n = strlen(tmp); n > 1 && tmp[n - 1] == '/'; n--)
                tmp[n - 1] = '\0';
        base = strrchr(tmp, '/') ? strrchr(tmp, '/') + 1 : tmp;
        if (!version_ok(base))
                return -EINVAL;
        return str_copy(dst, cap, base);
}

static int plan_modules(struct initramfs_plan *p, const struct initramfs_spec *spec, char *why, size_t why_len)
{
        struct initramfs_modules mods = { 0 };
        struct buf list = BUF_INIT((size_t)INITRAMFS_MAX_MODULES * (CONFIG_MAX_PATH_BYTES + 2));
        char version[128], moddir[160], src[CONFIG_MAX_PATH_BYTES];
        int r;

        if (module_version(spec->modules_dir, version, sizeof(version)) < 0) {
                why_set(why, why_len, "the module tree %s does not end in a kernel version (/lib/modules/VERSION)",
                        spec->modules_dir);
                return -EINVAL;
        }
        snprintf(moddir, sizeof(moddir), "lib/modules/%s", version);
        r = initramfs_modules_resolve(spec->modules_dir, spec->modules, spec->n_modules, spec->n_optional, &mods, why,
                                      why_len);
        for (size_t i = 0; r == 0 && i < mods.n; i++) {
                _cleanup_free_ char *dest = NULL;
                const struct initramfs_module *m = &mods.mods[i];

                if ((size_t)snprintf(src, sizeof(src), "%s/%s", spec->modules_dir, m->path) >= sizeof(src)) {
                        why_set(why, why_len, "the path of kernel module %s is too long", m->name);
                        r = -ENAMETOOLONG;
                        break;
                }
                if ((r = initramfs_module_image_path(moddir, m, &dest)) == 0)
                        r = plan_source(p, dest, 0644, src, m->unpack, m->size, m->sha256);
        }
        if (r == 0)
                r = initramfs_module_list(&mods, moddir, &list);
        if (r == 0)
                r = plan_generated(p, INITRAMFS_MODULE_LIST, 0644, list.data ? list.data : "");
        p->n_modules = mods.n;
        initramfs_modules_free(&mods);
        buf_free(&list);
        return r;
}

static int plan_base(struct initramfs_plan *p)
{
        static const struct {
                const char *path;
                uint32_t mode;
        } dirs[] = {
                { "bin", 0755 }, { "dev", 0755 }, { "etc", 0755 }, { "etc/metald", 0755 }, { "proc", 0755 },
                { "root", 0700 }, { "run", 0755 }, { "sys", 0755 }, { "tmp", 01777 }, { "usr", 0755 },
                { "usr/bin", 0755 },
        };
        struct initramfs_entry *console;
        int r;

        for (size_t i = 0; i < ARRAY_SIZE(dirs); i++)
                if ((r = plan_dir(p, dirs[i].path, dirs[i].mode)) < 0)
                        return r;
        /* the kernel opens it for /init's stdin, stdout and stderr before anything is mounted */
        if (!(console = plan_add(p, INITRAMFS_CHARDEV, "dev/console", 0600)))
                return -ENOMEM;
        console->rdev_major = 5;
        console->rdev_minor = 1;
        if ((r = plan_generated(p, "init", 0755, initramfs_init_script)) < 0)
                return r;
        return plan_generated(p, INITRAMFS_UDHCPC_SCRIPT, 0755, initramfs_udhcpc_script);
}

static int entry_cmp(const void *a, const void *b)
{
        return strcmp(((const struct initramfs_entry *)a)->path, ((const struct initramfs_entry *)b)->path);
}

static const char *compression_name(enum enroll_compression c)
{
        return c == ENROLL_COMPRESS_ZSTD ? "zstd" : "gzip";
}

/* Length-prefixed, so no two different input lists hash the same bytes. */
static int digest_field(EVP_MD_CTX *ctx, const void *p, size_t n)
{
        uint8_t len[8];

        for (size_t i = 0; i < 8; i++)
                len[i] = (uint8_t)((uint64_t)n >> (8 * i));
        return EVP_DigestUpdate(ctx, len, sizeof(len)) == 1 && EVP_DigestUpdate(ctx, p, n) == 1 ? 0 : -EIO;
}

static int digest_entry(EVP_MD_CTX *ctx, const struct initramfs_entry *e)
{
        char meta[96];
        int n = snprintf(meta, sizeof(meta), "%d %o %llu %u:%u %d", (int)e->kind, e->mode,
                         (unsigned long long)e->size, e->rdev_major, e->rdev_minor, (int)e->unpack);

        if (digest_field(ctx, e->path, strlen(e->path)) < 0 || digest_field(ctx, meta, (size_t)n) < 0)
                return -EIO;
        return digest_field(ctx, e->sha256, e->kind == INITRAMFS_DIR || e->kind == INITRAMFS_CHARDEV ? 0 : 32);
}

static int plan_digest(struct initramfs_plan *p)
{
        static const char builder[] = "metald-initramfs " INITRAMFS_BUILDER_VERSION;
        const char *comp = compression_name(p->compression);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned len = 0;
        int r;

        if (!ctx)
                return -ENOMEM;
        r = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
        if (r == 0)
                r = digest_field(ctx, builder, strlen(builder));
        if (r == 0)
                r = digest_field(ctx, comp, strlen(comp));
        if (r == 0)
                r = digest_field(ctx, initramfs_init_script, strlen(initramfs_init_script));
        if (r == 0)
                r = digest_field(ctx, initramfs_udhcpc_script, strlen(initramfs_udhcpc_script));
        for (size_t i = 0; r == 0 && i < p->n_entries; i++)
                r = digest_entry(ctx, &p->entries[i]);
        if (r == 0 && (EVP_DigestFinal_ex(ctx, p->digest, &len) != 1 || len != INITRAMFS_SHA256_BYTES))
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        if (r == 0)
                format_hex(p->digest_hex, p->digest, INITRAMFS_SHA256_BYTES);
        return r;
}

/* Sorted, each path once, within the caps. */
static int plan_finish(struct initramfs_plan *p, char *why, size_t why_len)
{
        int r = plan_parents(p);

        if (r < 0)
                return plan_add_error(p, why, why_len);
        qsort(p->entries, p->n_entries, sizeof(*p->entries), entry_cmp);
        p->content_bytes = 0;
        for (size_t i = 0; i < p->n_entries; i++) {
                if (i > 0 && strcmp(p->entries[i].path, p->entries[i - 1].path) == 0) {
                        why_set(why, why_len, "two files would be stored at /%s", p->entries[i].path);
                        return -EEXIST;
                }
                p->content_bytes += p->entries[i].size;
        }
        if (p->content_bytes > INITRAMFS_MAX_IMAGE_BYTES) {
                why_set(why, why_len, "the image would hold %llu bytes, more than %llu",
                        (unsigned long long)p->content_bytes, (unsigned long long)INITRAMFS_MAX_IMAGE_BYTES);
                return -EFBIG;
        }
        return plan_digest(p);
}

int initramfs_plan(const struct initramfs_spec *spec, struct initramfs_plan *ret, char *why, size_t why_len)
{
        struct initramfs_plan p = { .compression = spec->compression };
        int r;

        why_set(why, why_len, "%s", "");
        r = plan_base(&p);
        if (r == 0)
                r = plan_busybox(&p, spec->busybox, why, why_len);
        if (r == 0)
                r = plan_agent(&p, spec->agent, why, why_len);
        if (r == 0)
                r = plan_modules(&p, spec, why, why_len);
        if (r == 0)
                r = plan_keys(&p, spec, why, why_len);
        if ((r == -ENOMEM || r == -E2BIG) && !*why)
                plan_add_error(&p, why, why_len);
        if (r == 0)
                r = plan_finish(&p, why, why_len);
        if (r < 0) {
                if (!*why)
                        why_set(why, why_len, "%s", strerror(-r));
                initramfs_plan_free(&p);
                return r;
        }
        *ret = p;
        return 0;
}

void initramfs_plan_free(struct initramfs_plan *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_entries; i++) {
                free(p->entries[i].path);
                free(p->entries[i].source);
                free(p->entries[i].data);
        }
        free(p->entries);
        *p = (struct initramfs_plan){ 0 };
}

const struct initramfs_entry *initramfs_plan_find(const struct initramfs_plan *p, const char *path)
{
        struct initramfs_entry key = { .path = (char *)path };

        return p->n_entries ? bsearch(&key, p->entries, p->n_entries, sizeof(*p->entries), entry_cmp) : NULL;
}

/* Writing: newc cpio through libarchive, hashed and counted on the way to the file */

struct sink {
        int fd;
        EVP_MD_CTX *md;
        uint64_t bytes;
};

static la_ssize_t sink_write(struct archive *a, void *userdata, const void *buf, size_t n)
{
        struct sink *s = userdata;
        size_t done = 0;

        if (n > INITRAMFS_MAX_IMAGE_BYTES - s->bytes) {
                archive_set_error(a, EFBIG, "the image is larger than %llu bytes",
                                  (unsigned long long)INITRAMFS_MAX_IMAGE_BYTES);
                return -1;
        }
        while (done < n) {
                ssize_t w = write(s->fd, (const char *)buf + done, n - done);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        archive_set_error(a, errno, "%s", strerror(errno));
                        return -1;
                }
                done += (size_t)w;
        }
        if (EVP_DigestUpdate(s->md, buf, n) != 1) {
                archive_set_error(a, EIO, "SHA-256 failed");
                return -1;
        }
        s->bytes += n;
        return (la_ssize_t)n;
}

/* A source file's bytes for the image, refused when it changed since it was planned. */
static int entry_content(const struct initramfs_entry *e, uint8_t **ret, size_t *ret_len, char *why, size_t why_len)
{
        uint8_t sha256[INITRAMFS_SHA256_BYTES];
        int r = initramfs_module_read(e->source, e->unpack, sha256, ret, ret_len);

        if (r < 0) {
                why_set(why, why_len, "cannot read %s: %s", e->source, strerror(-r));
                return r;
        }
        if (memcmp(sha256, e->sha256, sizeof(sha256)) != 0 || *ret_len != e->size) {
                free(*ret);
                *ret = NULL;
                why_set(why, why_len, "%s changed while the image was built; try again", e->source);
                return -ESTALE;
        }
        return 0;
}

static void entry_header(struct archive_entry *ae, const struct initramfs_entry *e, size_t ino)
{
        static const mode_t types[] = {
                [INITRAMFS_DIR] = AE_IFDIR, [INITRAMFS_FILE] = AE_IFREG,
                [INITRAMFS_SYMLINK] = AE_IFLNK, [INITRAMFS_CHARDEV] = AE_IFCHR,
        };

        archive_entry_clear(ae);
        archive_entry_set_pathname(ae, e->path);
        archive_entry_set_filetype(ae, types[e->kind]);
        archive_entry_set_perm(ae, e->mode);
        archive_entry_set_uid(ae, 0);
        archive_entry_set_gid(ae, 0);
        archive_entry_set_mtime(ae, 0, 0);
        archive_entry_set_ino64(ae, (la_int64_t)ino);
        archive_entry_set_nlink(ae, e->kind == INITRAMFS_DIR ? 2 : 1);
        archive_entry_set_size(ae, e->kind == INITRAMFS_FILE ? (la_int64_t)e->size : 0);
        if (e->kind == INITRAMFS_SYMLINK)
                archive_entry_set_symlink(ae, e->data);
        if (e->kind == INITRAMFS_CHARDEV) {
                archive_entry_set_rdevmajor(ae, e->rdev_major);
                archive_entry_set_rdevminor(ae, e->rdev_minor);
        }
}

static int write_entry(struct archive *a, struct archive_entry *ae, const struct initramfs_entry *e, size_t ino,
                       char *why, size_t why_len)
{
        _cleanup_free_ uint8_t *owned = NULL;
        const uint8_t *content = (const uint8_t *)e->data;
        size_t len = e->kind == INITRAMFS_FILE ? (size_t)e->size : 0;
        int r;

        if (e->kind == INITRAMFS_FILE && e->source && (r = entry_content(e, &owned, &len, why, why_len)) < 0)
                return r;
        if (owned)
                content = owned;
        entry_header(ae, e, ino);
        if (archive_write_header(a, ae) != ARCHIVE_OK)
                goto fail;
        while (len > 0) {
                la_ssize_t n = archive_write_data(a, content, len);

                if (n <= 0)
                        goto fail;
                content += n;
                len -= (size_t)n;
        }
        return 0;
fail:
        why_set(why, why_len, "cannot write /%s into the image: %s", e->path,
                archive_error_string(a) ? archive_error_string(a) : "unknown error");
        return archive_errno(a) > 0 ? -archive_errno(a) : -EIO;
}

static int archive_setup(struct archive *a, enum enroll_compression c, struct sink *s)
{
        int r = archive_write_set_format_cpio_newc(a);

        if (r == ARCHIVE_OK && c == ENROLL_COMPRESS_ZSTD)
                r = archive_write_add_filter_zstd(a);
        if (r == ARCHIVE_OK && c == ENROLL_COMPRESS_GZIP) {
                r = archive_write_add_filter_gzip(a);
                /* no timestamp in the gzip header: the same inputs give the same bytes */
                if (r == ARCHIVE_OK)
                        r = archive_write_set_filter_option(a, "gzip", "timestamp", NULL);
        }
        if (r == ARCHIVE_OK)
                r = archive_write_set_bytes_in_last_block(a, 1);
        if (r == ARCHIVE_OK)
                r = archive_write_open2(a, s, NULL, sink_write, NULL, NULL);
        return r == ARCHIVE_OK ? 0 : -EIO;
}

static int write_archive(const struct initramfs_plan *p, int fd, uint64_t *ret_size, char hex[INITRAMFS_SHA256_HEX],
                         char *why, size_t why_len)
{
        struct sink s = { .fd = fd, .md = EVP_MD_CTX_new() };
        struct archive *a = archive_write_new();
        struct archive_entry *ae = archive_entry_new();
        uint8_t md[INITRAMFS_SHA256_BYTES];
        unsigned md_len = 0;
        int r = a && ae && s.md ? 0 : -ENOMEM;

        if (r == 0 && EVP_DigestInit_ex(s.md, EVP_sha256(), NULL) != 1)
                r = -EIO;
        if (r == 0 && (r = archive_setup(a, p->compression, &s)) < 0)
                why_set(why, why_len, "cannot start a %s cpio archive: %s", compression_name(p->compression),
                        archive_error_string(a) ? archive_error_string(a) : "unknown error");
        for (size_t i = 0; r == 0 && i < p->n_entries; i++)
                r = write_entry(a, ae, &p->entries[i], i + 1, why, why_len);
        if (r == 0 && archive_write_close(a) != ARCHIVE_OK) {
                why_set(why, why_len, "cannot finish the image: %s",
                        archive_error_string(a) ? archive_error_string(a) : "unknown error");
                r = -EIO;
        }
        if (r == 0 && (EVP_DigestFinal_ex(s.md, md, &md_len) != 1 || md_len != sizeof(md)))
                r = -EIO;
        if (r == 0) {
                format_hex(hex, md, sizeof(md));
                *ret_size = s.bytes;
        }
        archive_entry_free(ae);
        if (a)
                archive_write_free(a);
        EVP_MD_CTX_free(s.md);
        return r;
}

static int fsync_dir(const char *dir)
{
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        if (fd < 0 || fsync(fd) < 0)
                return -errno;
        return 0;
}

static void result_fill(struct initramfs_result *ret, const struct initramfs_plan *p, const char *path,
                        uint64_t size, const char *hex, bool built, uint64_t t0)
{
        *ret = (struct initramfs_result){ .size = size, .built = built, .n_modules = p->n_modules,
                                          .n_libraries = p->n_libraries };
        str_copy(ret->path, sizeof(ret->path), path);
        str_copy(ret->sha256_hex, sizeof(ret->sha256_hex), hex);
        ret->seconds = (double)(now_monotonic_usec() - t0) / 1e6;
}

int initramfs_write(const struct initramfs_plan *p, const char *path, struct initramfs_result *ret, char *why,
                    size_t why_len)
{
        uint64_t t0 = now_monotonic_usec(), size = 0;
        char dir[CONFIG_MAX_PATH_BYTES], tmp[CONFIG_MAX_PATH_BYTES], hex[INITRAMFS_SHA256_HEX];
        _cleanup_close_ int fd = -1;
        int r;

        why_set(why, why_len, "%s", "");
        if (str_copy(dir, sizeof(dir), path) < 0 || str_copy(dir, sizeof(dir), dirname(dir)) < 0 ||
            (size_t)snprintf(tmp, sizeof(tmp), "%s/.enroll-XXXXXX.tmp", dir) >= sizeof(tmp)) {
                why_set(why, why_len, "the image path %s is too long", path);
                return -ENAMETOOLONG;
        }
        fd = mkostemps(tmp, 4, O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                why_set(why, why_len, "cannot create a file in %s: %s", dir, strerror(errno));
                return r;
        }
        r = fchmod(fd, 0644) < 0 ? -errno : 0;
        if (r == 0)
                r = write_archive(p, fd, &size, hex, why, why_len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                if (!*why)
                        why_set(why, why_len, "cannot write %s: %s", path, strerror(-r));
                unlink(tmp);
                return r;
        }
        (void)fsync_dir(dir);
        result_fill(ret, p, path, size, hex, true, t0);
        return 0;
}

/* Caching in a directory */

static int hash_file(const char *path, uint64_t *ret_size, char hex[INITRAMFS_SHA256_HEX])
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_free_ uint8_t *chunk = malloc(INITRAMFS_READ_CHUNK);
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        uint8_t md[INITRAMFS_SHA256_BYTES];
        unsigned md_len = 0;
        uint64_t size = 0;
        int r = fd < 0 ? -errno : !chunk || !ctx ? -ENOMEM : 0;

        if (r == 0 && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                r = -EIO;
        while (r == 0) {
                ssize_t n = read(fd, chunk, INITRAMFS_READ_CHUNK);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        r = n < 0 ? -errno : 0;
                        break;
                }
                size += (uint64_t)n;
                if (size > INITRAMFS_MAX_IMAGE_BYTES)
                        r = -EFBIG;
                else if (EVP_DigestUpdate(ctx, chunk, (size_t)n) != 1)
                        r = -EIO;
        }
        if (r == 0 && (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != sizeof(md)))
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        if (r == 0) {
                format_hex(hex, md, sizeof(md));
                *ret_size = size;
        }
        return r;
}

static bool has_suffix(const char *s, const char *suffix)
{
        size_t n = strlen(s), m = strlen(suffix);

        return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Other images and the leftovers of interrupted builds; under the lock no build is running. */
static void prune(const char *dir, const char *keep)
{
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return;
        while ((de = readdir(d))) {
                bool image = str_has_prefix(de->d_name, "enroll-") && has_suffix(de->d_name, ".img");
                bool temp = str_has_prefix(de->d_name, ".enroll-") && has_suffix(de->d_name, ".tmp");

                if ((image && strcmp(de->d_name, keep) != 0) || temp)
                        (void)unlinkat(dirfd(d), de->d_name, 0);
        }
        closedir(d);
}

static int lock_dir(const char *dir, int *ret_fd)
{
        char path[CONFIG_MAX_PATH_BYTES];
        int fd;

        if ((size_t)snprintf(path, sizeof(path), "%s/.lock", dir) >= sizeof(path))
                return -ENAMETOOLONG;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        while (flock(fd, LOCK_EX) < 0) {
                if (errno != EINTR) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
        }
        *ret_fd = fd;
        return 0;
}

static int ensure_locked(const struct initramfs_spec *spec, const char *dir, struct initramfs_result *ret,
                         char *why, size_t why_len, uint64_t t0)
{
        struct initramfs_plan p = { 0 };
        char path[CONFIG_MAX_PATH_BYTES], name[64], hex[INITRAMFS_SHA256_HEX];
        uint64_t size = 0;
        struct stat st;
        int r = initramfs_plan(spec, &p, why, why_len);

        if (r < 0)
                return r;
        snprintf(name, sizeof(name), "enroll-%.*s.img", INITRAMFS_DIGEST_NAME_HEX, p.digest_hex);
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path)) {
                why_set(why, why_len, "the directory %s is too long", dir);
                r = -ENAMETOOLONG;
        } else if (lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
                r = hash_file(path, &size, hex);
                if (r < 0)
                        why_set(why, why_len, "cannot read %s: %s", path, strerror(-r));
                else
                        result_fill(ret, &p, path, size, hex, false, t0);
        } else {
                r = initramfs_write(&p, path, ret, why, why_len);
        }
        if (r == 0) {
                ret->seconds = (double)(now_monotonic_usec() - t0) / 1e6;
                prune(dir, name);
        }
        initramfs_plan_free(&p);
        return r;
}

int initramfs_ensure_dir(const struct initramfs_spec *spec, const char *dir, struct initramfs_result *ret,
                         char *why, size_t why_len)
{
        uint64_t t0 = now_monotonic_usec();
        _cleanup_close_ int lock = -1;
        int r;

        why_set(why, why_len, "%s", "");
        if ((r = mkdir_p(dir, 0750)) < 0 || (r = lock_dir(dir, &lock)) < 0) {
                why_set(why, why_len, "cannot use the directory %s: %s", dir, strerror(-r));
                return r;
        }
        return ensure_locked(spec, dir, ret, why, why_len, t0);
}

int initramfs_ensure(const struct config *cfg, const char *state_dir, char *ret_path, size_t cap,
                     char ret_sha256_hex[INITRAMFS_SHA256_HEX])
{
        _cleanup_free_ struct initramfs_spec *spec = calloc(1, sizeof(*spec));
        _cleanup_free_ struct initramfs_result *res = calloc(1, sizeof(*res));
        char dir[CONFIG_MAX_PATH_BYTES], why[1024];
        int r;

        if (!spec || !res)
                return log_error_errno(-ENOMEM, "enrollment initramfs: out of memory");
        if (!cfg->boot.enroll.build.enabled)
                return log_error_errno(-ENOENT, "%s: boot.enroll.build is not configured", cfg->path);
        if ((size_t)snprintf(dir, sizeof(dir), "%s/enroll", state_dir) >= sizeof(dir))
                return log_error_errno(-ENAMETOOLONG, "state_dir %s is too long", state_dir);
        initramfs_spec_from_config(&cfg->boot.enroll.build, spec);
        initramfs_spec_keys_from_config(&cfg->images, spec);
        r = initramfs_ensure_dir(spec, dir, res, why, sizeof(why));
        if (r < 0)
                return log_error_errno(r, "enrollment initramfs: %s", why);
        if (res->built)
                log_info("built enrollment initramfs %s (%llu bytes, %zu modules, %zu libraries, %.1f s)", res->path,
                         (unsigned long long)res->size, res->n_modules, res->n_libraries, res->seconds);
        else
                log_debug("enrollment initramfs %s is up to date (%llu bytes)", res->path,
                          (unsigned long long)res->size);
        if (str_copy(ret_path, cap, res->path) < 0)
                return log_error_errno(-ENAMETOOLONG, "enrollment initramfs path %s is too long", res->path);
        memcpy(ret_sha256_hex, res->sha256_hex, INITRAMFS_SHA256_HEX);
        return 0;
}
