/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "metald/agent.h"
#include "metald/util.h"

/*
 * The disk an install goes to: the rule metald sends, what keeps a disk from
 * being a target (mounts, swap, holders), and the choice. Parsing and the
 * choice are pure; only the _collect and _resolve functions read files.
 */

#define MOUNTINFO_MAX_FIELDS    64      /* fields of one mountinfo line; optional fields are few */
#define MAX_PARTITIONS          256     /* per disk; a disk with more is reported as in use */

static const char rule_path_by_path[] = "/dev/disk/by-path/", rule_path_by_id[] = "/dev/disk/by-id/";

static bool rule_is(const char *s, size_t len, const char *word)
{
        return len == strlen(word) && memcmp(s, word, len) == 0;
}

static bool prefix_is(const char *s, size_t len, const char *prefix)
{
        return len >= strlen(prefix) && memcmp(s, prefix, strlen(prefix)) == 0;
}

/* A device name as sys/block has it: "sda", "nvme0n1", "cciss!c0d0". */
static bool device_name_valid(const char *s, size_t len)
{
        return len > 0 && len <= AGENT_DISK_NAME_MAX && str_only(s, 1, "") && str_only(s, len, "._:+!-");
}

static bool link_path_valid(const char *s, size_t len)
{
        size_t skip = prefix_is(s, len, rule_path_by_path) ? strlen(rule_path_by_path)
                      : prefix_is(s, len, rule_path_by_id) ? strlen(rule_path_by_id) : 0;

        return skip > 0 && len > skip && str_only(s + skip, len - skip, "._:+-@,") &&
               !rule_is(s + skip, len - skip, ".") && !rule_is(s + skip, len - skip, "..");
}

int agent_disk_rule_parse(const char *s, size_t len, struct agent_disk_rule *ret)
{
        static const struct {
                const char *word;
                enum agent_disk_rule_kind kind;
        } words[] = {
                { "largest", AGENT_DISK_LARGEST }, { "smallest", AGENT_DISK_SMALLEST }, { "ssd", AGENT_DISK_SSD },
                { "hdd", AGENT_DISK_HDD },         { "nvme", AGENT_DISK_NVME },
        };
        struct agent_disk_rule r = { 0 };
        size_t skip = 0;

        if (len == 0 || len > AGENT_MAX_STRING || memchr(s, '\0', len))
                return -EINVAL;
        for (size_t i = 0; i < ARRAY_SIZE(words); i++)
                if (rule_is(s, len, words[i].word)) {
                        *ret = (struct agent_disk_rule){ .kind = words[i].kind };
                        return 0;
                }
        if (prefix_is(s, len, "serial=")) {
                skip = strlen("serial=");
                r.kind = AGENT_DISK_SERIAL;
                if (len == skip || !agent_text_printable(s + skip, len - skip) || s[skip] == ' ' || s[len - 1] == ' ')
                        return -EINVAL;
        } else if (prefix_is(s, len, "path=")) {
                skip = strlen("path=");
                r.kind = AGENT_DISK_PATH;
                if (!link_path_valid(s + skip, len - skip))
                        return -EINVAL;
        } else {
                r.kind = AGENT_DISK_NAME;
                if (!device_name_valid(s, len))
                        return -EINVAL;
        }
        memcpy(r.value, s + skip, len - skip);
        r.value[len - skip] = '\0';
        *ret = r;
        return 0;
}

void agent_bytes_text(uint64_t bytes, char *ret, size_t cap)
{
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double)bytes;
        size_t u = 0;

        if (bytes < 1024) {
                snprintf(ret, cap, "%" PRIu64 " B", bytes);
                return;
        }
        v /= 1024;
        while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
                v /= 1024;
                u++;
        }
        if (v < 10 && (uint64_t)(v * 10) % 10)
                snprintf(ret, cap, "%.1f %s", v, units[u]);
        else
                snprintf(ret, cap, "%.0f %s", v, units[u]);
}

/* In use */

struct field {
        const char *p;
        size_t len;
};

/* Splits a line at spaces: the number of fields, or -EINVAL past cap. */
static int split_fields(const char *line, size_t len, struct field *f, size_t cap)
{
        size_t n = 0, i = 0;

        while (i < len) {
                size_t start;

                if (line[i] == ' ' || line[i] == '\t') {
                        i++;
                        continue;
                }
                if (n == cap)
                        return -EINVAL;
                start = i;
                while (i < len && line[i] != ' ' && line[i] != '\t')
                        i++;
                f[n++] = (struct field){ line + start, i - start };
        }
        return (int)n;
}

static bool field_is(const struct field *f, const char *s)
{
        return rule_is(f->p, f->len, s);
}

/* "MAJOR:MINOR" */
static int parse_devnum(const char *s, size_t len, uint32_t *ret_major, uint32_t *ret_minor)
{
        const char *colon = memchr(s, ':', len);
        char a[12], b[12];
        uint64_t ma, mi;
        size_t la, lb;

        if (!colon)
                return -EINVAL;
        la = (size_t)(colon - s);
        lb = len - la - 1;
        if (la == 0 || lb == 0 || la >= sizeof(a) || lb >= sizeof(b))
                return -EINVAL;
        memcpy(a, s, la);
        a[la] = '\0';
        memcpy(b, colon + 1, lb);
        b[lb] = '\0';
        if (parse_u64(a, 0, UINT32_MAX, &ma) < 0 || parse_u64(b, 0, UINT32_MAX, &mi) < 0)
                return -EINVAL;
        *ret_major = (uint32_t)ma;
        *ret_minor = (uint32_t)mi;
        return 0;
}

/* The device a source like /dev/sda1 names, or SIZE_MAX. */
static size_t dev_by_source(const struct agent_blockdev *devs, size_t n, const struct field *src)
{
        if (!prefix_is(src->p, src->len, "/dev/"))
                return SIZE_MAX;
        for (size_t i = 0; i < n; i++)
                if (rule_is(src->p + 5, src->len - 5, devs[i].name))
                        return i;
        return SIZE_MAX;
}

static size_t dev_by_number(const struct agent_blockdev *devs, size_t n, uint32_t major, uint32_t minor)
{
        /* major 0 are the anonymous devices of tmpfs, proc, overlay ...: never a disk */
        if (major == 0)
                return SIZE_MAX;
        for (size_t i = 0; i < n; i++)
                if (devs[i].major == major && devs[i].minor == minor)
                        return i;
        return SIZE_MAX;
}

_printf_(2, 3) static void mark(struct agent_disk_use *u, const char *fmt, ...)
{
        va_list ap;

        if (u->why[0])
                return;         /* the first reason stands */
        va_start(ap, fmt);
        vsnprintf(u->why, sizeof(u->why), fmt, ap);
        va_end(ap);
}

/* One line of mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS */
static int mount_line(const struct agent_blockdev *devs, size_t n_devs, const char *line, size_t len,
                      struct agent_disk_use *use)
{
        struct field f[MOUNTINFO_MAX_FIELDS];
        uint32_t major, minor;
        size_t sep = 6, d;
        int n = split_fields(line, len, f, ARRAY_SIZE(f));

        if (n == 0)
                return 0;
        while ((int)sep < n && !field_is(&f[sep], "-"))
                sep++;
        if (n < 10 || (int)sep + 3 > n || parse_devnum(f[2].p, f[2].len, &major, &minor) < 0)
                return -EINVAL;
        d = dev_by_number(devs, n_devs, major, minor);
        if (d == SIZE_MAX)
                d = dev_by_source(devs, n_devs, &f[sep + 2]);
        if (d != SIZE_MAX)
                mark(&use[devs[d].disk], "%s is mounted on %.*s", devs[d].name, (int)MIN(f[4].len, (size_t)128),
                     f[4].p);
        return 0;
}

/* Calls fn for each line of text. */
static int each_line(const char *text, size_t len, int (*fn)(const struct agent_blockdev *, size_t, const char *,
                                                             size_t, struct agent_disk_use *),
                     const struct agent_blockdev *devs, size_t n_devs, struct agent_disk_use *use)
{
        size_t i = 0;

        while (i < len) {
                const char *nl = memchr(text + i, '\n', len - i);
                size_t end = nl ? (size_t)(nl - text) : len;
                int r = fn(devs, n_devs, text + i, end - i, use);

                if (r < 0)
                        return r;
                i = end + 1;
        }
        return 0;
}

/* One line of proc/swaps: FILENAME TYPE SIZE USED PRIORITY, after a header line. */
static int swap_line(const struct agent_blockdev *devs, size_t n_devs, const char *line, size_t len,
                     struct agent_disk_use *use)
{
        struct field f[MOUNTINFO_MAX_FIELDS];
        int n = split_fields(line, len, f, ARRAY_SIZE(f));
        size_t d;

        if (n <= 0)
                return n;
        d = dev_by_source(devs, n_devs, &f[0]);
        if (d != SIZE_MAX)
                mark(&use[devs[d].disk], "%s is in use as swap", devs[d].name);
        return 0;
}

int agent_disk_use_from(const struct agent_inventory *inv, const struct agent_blockdev *devs, size_t n_devs,
                        const char *mountinfo, size_t mountinfo_len, const char *swaps, size_t swaps_len,
                        struct agent_disk_use *use)
{
        int r;

        for (size_t i = 0; i < inv->n_disks; i++)
                use[i].why[0] = '\0';
        for (size_t i = 0; i < n_devs; i++)
                if (devs[i].disk >= inv->n_disks)
                        return -EINVAL;
        if ((r = each_line(mountinfo, mountinfo_len, mount_line, devs, n_devs, use)) < 0 ||
            (r = each_line(swaps, swaps_len, swap_line, devs, n_devs, use)) < 0)
                return r;
        for (size_t i = 0; i < n_devs; i++)
                if (devs[i].holder[0])
                        mark(&use[devs[i].disk], "%s is held by %s", devs[i].name, devs[i].holder);
        return 0;
}

/* Reading sysroot */

static int read_text(const char *path, size_t max, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r;

        if (fd < 0)
                return -errno;
        if (!(data = malloc(max + 1)))
                return -ENOMEM;
        if ((r = read_full(fd, data, max + 1, &len)) < 0)
                return r;
        if (len > max)
                return -EFBIG;
        data[len] = '\0';
        *ret = TAKE_PTR(data);
        *ret_len = len;
        return 0;
}

/* dir/dev as MAJOR:MINOR; 0:0 when it cannot be read. */
static void read_devnum(const char *dir, uint32_t *ret_major, uint32_t *ret_minor)
{
        char path[PATH_MAX], *text = NULL;
        size_t len;

        *ret_major = *ret_minor = 0;
        if ((size_t)snprintf(path, sizeof(path), "%s/dev", dir) >= sizeof(path) ||
            read_text(path, AGENT_MAX_ATTR_BYTES, &text, &len) < 0)
                return;
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == ' '))
                len--;
        if (parse_devnum(text, len, ret_major, ret_minor) < 0)
                *ret_major = *ret_minor = 0;
        free(text);
}

/* The first entry of dir/holders, "" when there is none. */
static void read_holder(const char *dir, char ret[static AGENT_DISK_NAME_MAX + 1])
{
        char path[PATH_MAX];
        struct dirent *e;
        DIR *d;

        ret[0] = '\0';
        if ((size_t)snprintf(path, sizeof(path), "%s/holders", dir) >= sizeof(path) || !(d = opendir(path)))
                return;
        while ((e = readdir(d)))
                if (e->d_name[0] != '.') {
                        agent_text_clean(ret, AGENT_DISK_NAME_MAX + 1, e->d_name, strlen(e->d_name));
                        break;
                }
        closedir(d);
}

static int add_dev(struct agent_blockdev **devs, size_t *n, size_t *cap, const char *dir, const char *name,
                   size_t disk)
{
        struct agent_blockdev *d;

        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 16;

                if (!(d = reallocarray(*devs, c, sizeof(*d))))
                        return -ENOMEM;
                *devs = d;
                *cap = c;
        }
        d = &(*devs)[(*n)++];
        *d = (struct agent_blockdev){ .disk = disk };
        str_copy(d->name, sizeof(d->name), name);
        read_devnum(dir, &d->major, &d->minor);
        read_holder(dir, d->holder);
        return 0;
}

/* The disk and each of its partitions (subdirectories with a partition file). */
static int add_disk(const char *sysroot, const struct agent_disk *disk, size_t index, struct agent_blockdev **devs,
                    size_t *n, size_t *cap, struct agent_disk_use *use)
{
        char dir[PATH_MAX], sub[PATH_MAX], marker[PATH_MAX];
        size_t parts = 0;
        struct dirent *e;
        struct stat st;
        int r = 0;
        DIR *d;

        if ((size_t)snprintf(dir, sizeof(dir), "%s/sys/block/%s", sysroot, disk->name) >= sizeof(dir))
                return -ENAMETOOLONG;
        if ((r = add_dev(devs, n, cap, dir, disk->name, index)) < 0)
                return r;
        if (!(d = opendir(dir)))
                return 0;
        while (r == 0 && (e = readdir(d))) {
                if (e->d_name[0] == '.' || strlen(e->d_name) > AGENT_DISK_NAME_MAX ||
                    (size_t)snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= sizeof(sub) ||
                    (size_t)snprintf(marker, sizeof(marker), "%s/partition", sub) >= sizeof(marker) ||
                    stat(marker, &st) < 0)
                        continue;
                if (++parts > MAX_PARTITIONS) {
                        mark(&use[index], "%s has more than %d partitions", disk->name, MAX_PARTITIONS);
                        break;
                }
                r = add_dev(devs, n, cap, sub, e->d_name, index);
        }
        closedir(d);
        return r;
}

int agent_disk_use_collect(const char *sysroot, const struct agent_inventory *inv, struct agent_disk_use *use)
{
        _cleanup_free_ struct agent_blockdev *devs = NULL;
        _cleanup_free_ struct agent_disk_use *extra = calloc(MAX(inv->n_disks, (size_t)1), sizeof(*extra));
        char path[PATH_MAX], *mounts = NULL, *swaps = NULL;
        size_t n = 0, cap = 0, mounts_len = 0, swaps_len = 0;
        int r = extra ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < inv->n_disks; i++)
                r = add_disk(sysroot, &inv->disks[i], i, &devs, &n, &cap, extra);
        if (r == 0 && (size_t)snprintf(path, sizeof(path), "%s/proc/self/mountinfo", sysroot) >= sizeof(path))
                r = -ENAMETOOLONG;
        if (r == 0)
                r = read_text(path, AGENT_MAX_PROC_BYTES, &mounts, &mounts_len);
        if (r == 0 && (size_t)snprintf(path, sizeof(path), "%s/proc/swaps", sysroot) < sizeof(path) &&
            read_text(path, AGENT_MAX_PROC_BYTES, &swaps, &swaps_len) < 0)
                swaps_len = 0;
        if (r == 0)
                r = agent_disk_use_from(inv, devs, n, mounts, mounts_len, swaps ? swaps : "", swaps_len, use);
        /* a disk whose partitions could not all be listed counts as in use */
        for (size_t i = 0; r == 0 && i < inv->n_disks; i++)
                if (extra[i].why[0] && !use[i].why[0])
                        use[i] = extra[i];
        free(mounts);
        free(swaps);
        return r;
}

int agent_disk_path_resolve(const char *dev_dir, const char *path, char ret[static AGENT_DISK_NAME_MAX + 1])
{
        char link[PATH_MAX], real[PATH_MAX], dir[PATH_MAX];
        size_t dl;

        if (!str_has_prefix(path, "/dev/") ||
            (size_t)snprintf(link, sizeof(link), "%s/%s", dev_dir, path + strlen("/dev/")) >= sizeof(link))
                return -EINVAL;
        if (!realpath(link, real) || !realpath(dev_dir, dir))
                return -errno;
        dl = strlen(dir);
        if (strncmp(real, dir, dl) != 0 || real[dl] != '/' || strchr(real + dl + 1, '/') ||
            !device_name_valid(real + dl + 1, strlen(real + dl + 1)))
                return -EXDEV;  /* not a device node directly in dev_dir */
        str_copy(ret, AGENT_DISK_NAME_MAX + 1, real + dl + 1);
        return 0;
}

/* The choice */

static const char *rule_word(enum agent_disk_rule_kind k)
{
        switch (k) {
        case AGENT_DISK_LARGEST:
                return "largest";
        case AGENT_DISK_SMALLEST:
                return "smallest";
        case AGENT_DISK_SSD:
                return "ssd";
        case AGENT_DISK_HDD:
                return "hdd";
        case AGENT_DISK_NVME:
                return "nvme";
        case AGENT_DISK_SERIAL:
                return "serial=";
        case AGENT_DISK_PATH:
                return "path=";
        case AGENT_DISK_NAME:
                break;
        }
        return "";
}

static bool disk_kind_matches(const struct agent_disk_rule *rule, const struct agent_disk *d)
{
        switch (rule->kind) {
        case AGENT_DISK_SSD:
                return !d->rotational;
        case AGENT_DISK_HDD:
                return d->rotational;
        case AGENT_DISK_NVME:
                return str_has_prefix(d->name, "nvme");
        default:
                return true;
        }
}

static bool disk_named(const struct agent_disk_rule *rule, const char *resolved, const struct agent_disk *d)
{
        switch (rule->kind) {
        case AGENT_DISK_NAME:
                return strcmp(d->name, rule->value) == 0;
        case AGENT_DISK_SERIAL:
                return d->serial[0] && strcmp(d->serial, rule->value) == 0;
        case AGENT_DISK_PATH:
                return resolved && strcmp(d->name, resolved) == 0;
        default:
                return false;
        }
}

/* Why disk i cannot be the target, NULL when it can. */
static const char *unusable(const struct agent_inventory *inv, const struct agent_disk_use *use, size_t i,
                            bool allow_removable)
{
        if (use[i].why[0])
                return use[i].why;
        if (inv->disks[i].removable && !allow_removable)
                return "removable, and the profile does not allow removable disks";
        return NULL;
}

/* "; disks: sda 64 MiB ssd (in use: sda1 is mounted on /), sdb 48 MiB hdd" appended to why. */
static void list_disks(const struct agent_inventory *inv, const struct agent_disk_use *use, bool allow_removable,
                       char *why, size_t cap)
{
        size_t len = strlen(why);

        if (len + 1 >= cap)
                return;
        snprintf(why + len, cap - len, inv->n_disks ? "; disks seen:" : "; no disks seen");
        for (size_t i = 0; i < inv->n_disks; i++) {
                const char *no = unusable(inv, use, i, allow_removable);
                char size[32];

                len = strlen(why);
                if (len + 1 >= cap)
                        return;
                agent_bytes_text(inv->disks[i].size_bytes, size, sizeof(size));
                snprintf(why + len, cap - len, "%s %s %s %s%s%s%s", i ? "," : "", inv->disks[i].name, size,
                         inv->disks[i].rotational ? "hdd" : "ssd", no ? " (" : "", no ? no : "", no ? ")" : "");
        }
}

static int choose_named(const struct agent_disk_rule *rule, bool allow_removable, const char *resolved,
                        const struct agent_inventory *inv, const struct agent_disk_use *use, size_t *ret_index,
                        char *why, size_t cap)
{
        size_t found = SIZE_MAX, n = 0;
        const char *no;

        for (size_t i = 0; i < inv->n_disks; i++)
                if (disk_named(rule, resolved, &inv->disks[i]) && n++ == 0)
                        found = i;
        if (n > 1) {
                snprintf(why, cap, "disk rule \"%s%s\": %zu disks match, it names none of them alone",
                         rule_word(rule->kind), rule->value, n);
        } else if (n == 0) {
                snprintf(why, cap, "disk rule \"%s%s\"%s%s%s: no such disk", rule_word(rule->kind), rule->value,
                         resolved ? " (" : "", resolved ? resolved : "", resolved ? ")" : "");
        } else if ((no = unusable(inv, use, found, allow_removable))) {
                snprintf(why, cap, "disk rule \"%s%s\": %s is not usable: %s", rule_word(rule->kind), rule->value,
                         inv->disks[found].name, no);
                return -ENODEV;
        } else {
                *ret_index = found;
                return 0;
        }
        list_disks(inv, use, allow_removable, why, cap);
        return -ENODEV;
}

int agent_disk_choose(const struct agent_disk_rule *rule, bool allow_removable, const char *resolved,
                      const struct agent_inventory *inv, const struct agent_disk_use *use, size_t *ret_index,
                      char *why, size_t why_cap)
{
        size_t best = SIZE_MAX;

        if (rule->kind == AGENT_DISK_NAME || rule->kind == AGENT_DISK_SERIAL || rule->kind == AGENT_DISK_PATH)
                return choose_named(rule, allow_removable, resolved, inv, use, ret_index, why, why_cap);
        /* inventory disks are sorted by name, so "first" is by name and ties go to the first */
        for (size_t i = 0; i < inv->n_disks; i++) {
                const struct agent_disk *d = &inv->disks[i];

                if (unusable(inv, use, i, allow_removable) || !disk_kind_matches(rule, d))
                        continue;
                if (best == SIZE_MAX || (rule->kind == AGENT_DISK_LARGEST && d->size_bytes > inv->disks[best].size_bytes) ||
                    (rule->kind == AGENT_DISK_SMALLEST && d->size_bytes < inv->disks[best].size_bytes))
                        best = i;
        }
        if (best == SIZE_MAX) {
                snprintf(why, why_cap, "disk rule \"%s\": no usable disk", rule_word(rule->kind));
                list_disks(inv, use, allow_removable, why, why_cap);
                return -ENODEV;
        }
        *ret_index = best;
        return 0;
}
