/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>

#include "metald/agent.h"
#include "metald/buf.h"
#include "metald/util.h"

#define ARPHRD_ETHER_TYPE 1     /* sys/class/net/X/type of Ethernet devices */
#define SECTOR_BYTES 512ULL     /* sys/block/X/size counts these, whatever the disk's own sector size */
#define VPD_HEADER_BYTES 4

/* Block devices that are never an install target, by name. */
static const char *const skipped_disk_prefixes[] = { "loop", "ram", "zram", "dm-", "sr", "md", "fd", "nbd" };

/* Length of the UTF-8 sequence at p if it encodes a scalar value, else 0. */
static size_t utf8_seq(const uint8_t *p, size_t left, uint32_t *ret_cp)
{
        uint32_t cp;
        size_t n;

        if (p[0] < 0x80) {
                *ret_cp = p[0];
                return 1;
        }
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                n = 2, cp = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                n = 3, cp = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                n = 4, cp = p[0] & 0x07;
        else
                return 0;
        if (left < n)
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (p[i] & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        *ret_cp = cp;
        return n;
}

static bool cp_printable(uint32_t cp)
{
        return cp >= 0x20 && cp != 0x7f && !(cp >= 0x80 && cp < 0xa0);
}

bool agent_text_printable(const char *s, size_t len)
{
        const uint8_t *p = (const uint8_t *)s;

        for (size_t i = 0; i < len;) {
                uint32_t cp;
                size_t n = utf8_seq(p + i, len - i, &cp);

                if (n == 0 || !cp_printable(cp))
                        return false;
                i += n;
        }
        return true;
}

size_t agent_text_clean(char *dst, size_t cap, const void *src, size_t len)
{
        const uint8_t *p = src;
        size_t o = 0, end = 0;

        if (cap == 0)
                return 0;
        for (size_t i = 0; i < len;) {
                const char *piece = (const char *)p + i;
                uint32_t cp;
                size_t n = utf8_seq(p + i, len - i, &cp), plen = n;

                if (n == 0)
                        piece = "?", plen = 1, n = 1;
                else if (!cp_printable(cp))
                        piece = " ", plen = 1;
                i += n;
                if (piece[0] == ' ' && o == 0)
                        continue;
                if (plen > cap - 1 - o)
                        break;
                memcpy(dst + o, piece, plen);
                o += plen;
                if (piece[0] != ' ')
                        end = o;
        }
        dst[end] = '\0';
        return end;
}

/* Opens a regular file for reading; sysfs and procfs attributes are regular files, fifos never block us. */
static int open_regular(int dir_fd, const char *path)
{
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        struct stat st;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        return TAKE_FD(fd);
}

/* Reads at most max bytes; stopping at max is not an error. */
static int read_some(int fd, char *dst, size_t max, size_t *ret_len)
{
        size_t n = 0;

        while (n < max) {
                ssize_t k = read(fd, dst + n, max - n);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        *ret_len = n;
        return 0;
}

/* A sysfs attribute, raw, at most AGENT_MAX_ATTR_BYTES, NUL-terminated (it may hold NULs too). */
static int read_attr(int dir_fd, const char *path, char dst[static AGENT_MAX_ATTR_BYTES + 1], size_t *ret_len)
{
        _cleanup_close_ int fd = open_regular(dir_fd, path);
        size_t n;
        int r;

        if (fd < 0)
                return fd;
        r = read_some(fd, dst, AGENT_MAX_ATTR_BYTES, &n);
        if (r < 0)
                return r;
        dst[n] = '\0';
        *ret_len = n;
        return 0;
}

/* A whole file up to out->max bytes (the rest is ignored). */
static int read_all(int dir_fd, const char *path, struct buf *out)
{
        _cleanup_close_ int fd = open_regular(dir_fd, path);
        char chunk[16384];

        if (fd < 0)
                return fd;
        while (out->len < out->max) {
                size_t n;
                int r = read_some(fd, chunk, MIN(sizeof(chunk), out->max - out->len), &n);

                if (r < 0)
                        return r;
                if (n == 0)
                        break;
                r = buf_append(out, chunk, n);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* An attribute as clean text (its length); empty when unreadable. */
static size_t attr_text(int dir_fd, const char *path, char *dst, size_t cap)
{
        char raw[AGENT_MAX_ATTR_BYTES + 1];
        size_t n;

        if (read_attr(dir_fd, path, raw, &n) < 0)
                n = 0;
        return agent_text_clean(dst, cap, raw, n);
}

/* An attribute holding one unsigned decimal number in [0, max]. */
static int attr_u64(int dir_fd, const char *path, uint64_t max, uint64_t *ret)
{
        char raw[AGENT_MAX_ATTR_BYTES + 1];
        size_t n;
        int r = read_attr(dir_fd, path, raw, &n);

        if (r < 0)
                return r;
        while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == ' '))
                raw[--n] = '\0';
        if (strlen(raw) != n)
                return -EINVAL;
        return parse_u64(raw, 0, max, ret);
}

static bool attr_is_one(int dir_fd, const char *path)
{
        uint64_t v;

        return attr_u64(dir_fd, path, UINT64_MAX, &v) == 0 && v == 1;
}

static void collect_system(int root_fd, struct agent_inventory *inv)
{
        char uuid[AGENT_MAX_STRING + 1];
        size_t n = attr_text(root_fd, "sys/class/dmi/id/product_uuid", uuid, sizeof(uuid));

        /* firmware without a UUID reports all zero or all FF: sent as none */
        if (uuid_normalize(uuid, n, inv->uuid) < 0)
                inv->uuid[0] = '\0';
        attr_text(root_fd, "sys/class/dmi/id/product_serial", inv->serial, sizeof(inv->serial));
        attr_text(root_fd, "sys/class/dmi/id/sys_vendor", inv->vendor, sizeof(inv->vendor));
        attr_text(root_fd, "sys/class/dmi/id/product_name", inv->product, sizeof(inv->product));
}

static int name_cmp(const void *a, const void *b)
{
        return strverscmp(*(char *const *)a, *(char *const *)b);
}

struct name_list {
        char **names;
        size_t n;
};

static void name_list_free(struct name_list *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->names[i]);
        free(l->names);
        *l = (struct name_list){ 0 };
}

/* The entries of a directory in natural order (eth2 before eth10); a missing directory is empty. */
static int list_dir(int dir_fd, const char *path, struct name_list *ret)
{
        struct name_list l = { 0 };
        bool oom = false;
        struct dirent *e;
        DIR *d;
        int fd = openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        *ret = l;
        if (fd < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
        d = fdopendir(fd);
        if (!d) {
                close(fd);
                return -errno;
        }
        l.names = calloc(AGENT_MAX_DIR_ENTRIES, sizeof(*l.names));
        oom = !l.names;
        while (!oom && l.n < AGENT_MAX_DIR_ENTRIES && (e = readdir(d))) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                        continue;
                l.names[l.n] = strdup(e->d_name);
                if (l.names[l.n])
                        l.n++;
                else
                        oom = true;
        }
        closedir(d);
        if (oom) {
                name_list_free(&l);
                return -ENOMEM;
        }
        if (l.n)
                qsort(l.names, l.n, sizeof(*l.names), name_cmp);        /* names is NULL when there are none */
        *ret = l;
        return 0;
}

static int open_subdir(int dir_fd, const char *name)
{
        return openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* 1 with the NIC filled, 0 when the entry is not an Ethernet NIC we report. */
static int collect_nic(int net_fd, const char *name, struct agent_nic *ret)
{
        char raw[AGENT_MAX_ATTR_BYTES + 1];
        _cleanup_close_ int fd = -1;
        uint64_t type, speed;
        uint8_t mac[6];
        size_t n;

        if (strcmp(name, "lo") == 0 || strlen(name) > AGENT_NIC_NAME_MAX || !agent_text_printable(name, strlen(name)))
                return 0;
        fd = open_subdir(net_fd, name);
        if (fd < 0)
                return 0;
        if (attr_u64(fd, "type", UINT32_MAX, &type) < 0 || type != ARPHRD_ETHER_TYPE)
                return 0;
        if (read_attr(fd, "address", raw, &n) < 0)
                return 0;
        while (n > 0 && (raw[n - 1] == '\n' || raw[n - 1] == ' '))
                raw[--n] = '\0';
        if (strlen(raw) != n || parse_mac(raw, mac) < 0)
                return 0;
        *ret = (struct agent_nic){ .link = attr_is_one(fd, "carrier") };
        str_copy(ret->name, sizeof(ret->name), name);
        format_mac(ret->mac, mac);
        /* "-1" (unknown), unreadable (link down) and bogus values all fail to parse: 0 */
        if (attr_u64(fd, "speed", AGENT_MAX_NIC_SPEED_MBPS, &speed) == 0)
                ret->speed_mbps = (uint32_t)speed;
        return 1;
}

static int collect_nics(int root_fd, struct agent_inventory *inv)
{
        _cleanup_close_ int net_fd = open_subdir(root_fd, "sys/class/net");
        struct name_list l;
        int r;

        if (net_fd < 0)
                return 0;
        r = list_dir(net_fd, ".", &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n && inv->n_nics < AGENT_MAX_NICS; i++)
                if (collect_nic(net_fd, l.names[i], &inv->nics[inv->n_nics]) > 0)
                        inv->n_nics++;
        name_list_free(&l);
        return 0;
}

static bool disk_name_skipped(const char *name)
{
        for (size_t i = 0; i < ARRAY_SIZE(skipped_disk_prefixes); i++)
                if (str_has_prefix(name, skipped_disk_prefixes[i]))
                        return true;
        return false;
}

/* The product serial of SCSI VPD page 0x80: a 4-byte header, then the text. */
static void vpd_serial(int disk_fd, char *dst, size_t cap)
{
        char raw[AGENT_MAX_ATTR_BYTES + 1];
        size_t n, page_len;

        dst[0] = '\0';
        if (read_attr(disk_fd, "device/vpd_pg80", raw, &n) < 0 || n < VPD_HEADER_BYTES || (uint8_t)raw[1] != 0x80)
                return;
        page_len = (size_t)((uint8_t)raw[2] << 8 | (uint8_t)raw[3]);
        agent_text_clean(dst, cap, raw + VPD_HEADER_BYTES, MIN(page_len, n - VPD_HEADER_BYTES));
}

/* 1 with the disk filled, 0 when the entry is not a physical disk with a medium. */
static int collect_disk(int block_fd, const char *name, struct agent_disk *ret)
{
        _cleanup_close_ int fd = -1;
        uint64_t sectors;
        struct stat st;

        if (disk_name_skipped(name) || strlen(name) > AGENT_DISK_NAME_MAX || !agent_text_printable(name, strlen(name)))
                return 0;
        fd = open_subdir(block_fd, name);
        if (fd < 0)
                return 0;
        /* virtual block devices (md, dm, zram, loop...) have no device behind them */
        if (fstatat(fd, "device", &st, 0) < 0 || !S_ISDIR(st.st_mode))
                return 0;
        /* no medium (an empty card reader or virtual media slot): nothing to install to */
        if (attr_u64(fd, "size", UINT64_MAX / SECTOR_BYTES, &sectors) < 0 || sectors == 0)
                return 0;
        *ret = (struct agent_disk){
                .size_bytes = sectors * SECTOR_BYTES,
                .rotational = attr_is_one(fd, "queue/rotational"),
                .removable = attr_is_one(fd, "removable"),
        };
        str_copy(ret->name, sizeof(ret->name), name);
        attr_text(fd, "device/model", ret->model, sizeof(ret->model));
        attr_text(fd, "device/serial", ret->serial, sizeof(ret->serial));
        if (!ret->serial[0])
                attr_text(fd, "serial", ret->serial, sizeof(ret->serial));
        if (!ret->serial[0])
                vpd_serial(fd, ret->serial, sizeof(ret->serial));
        return 1;
}

static int collect_disks(int root_fd, struct agent_inventory *inv)
{
        _cleanup_close_ int block_fd = open_subdir(root_fd, "sys/block");
        struct name_list l;
        int r;

        if (block_fd < 0)
                return 0;
        r = list_dir(block_fd, ".", &l);
        if (r < 0)
                return r;
        for (size_t i = 0; i < l.n && inv->n_disks < AGENT_MAX_DISKS; i++)
                if (collect_disk(block_fd, l.names[i], &inv->disks[inv->n_disks]) > 0)
                        inv->n_disks++;
        name_list_free(&l);
        return 0;
}

/* Splits "key<spaces>:<spaces>value": true with both trimmed when the line has a colon. */
static bool split_key_value(const char *line, size_t len, const char **key, size_t *key_len, const char **value,
                            size_t *value_len)
{
        const char *colon = memchr(line, ':', len);
        size_t k, v_start;

        if (!colon)
                return false;
        k = (size_t)(colon - line);
        while (k > 0 && (line[k - 1] == ' ' || line[k - 1] == '\t'))
                k--;
        v_start = (size_t)(colon - line) + 1;
        while (v_start < len && (line[v_start] == ' ' || line[v_start] == '\t'))
                v_start++;
        *key = line;
        *key_len = k;
        *value = line + v_start;
        *value_len = len - v_start;
        return true;
}

static bool key_is(const char *key, size_t key_len, const char *want)
{
        return key_len == strlen(want) && memcmp(key, want, key_len) == 0;
}

/* Calls fn on each line of a proc file (read up to AGENT_MAX_PROC_BYTES). */
static int proc_lines(int root_fd, const char *path,
                      void (*fn)(const char *key, size_t key_len, const char *value, size_t value_len, void *userdata),
                      void *userdata)
{
        struct buf b = BUF_INIT(AGENT_MAX_PROC_BYTES);
        int r = read_all(root_fd, path, &b);

        if (r < 0) {
                buf_free(&b);
                return r;
        }
        for (size_t off = 0; off < b.len;) {
                const char *line = b.data + off, *nl = memchr(line, '\n', b.len - off);
                size_t len = nl ? (size_t)(nl - line) : b.len - off;
                const char *key, *value;
                size_t key_len, value_len;

                if (split_key_value(line, len, &key, &key_len, &value, &value_len))
                        fn(key, key_len, value, value_len, userdata);
                off += len + 1;
        }
        buf_free(&b);
        return 0;
}

static void cpuinfo_line(const char *key, size_t key_len, const char *value, size_t value_len, void *userdata)
{
        struct agent_inventory *inv = userdata;

        if (key_is(key, key_len, "processor") && inv->cpu_count < AGENT_MAX_CPUS)
                inv->cpu_count++;
        else if (key_is(key, key_len, "model name") && !inv->cpu_model[0])
                agent_text_clean(inv->cpu_model, sizeof(inv->cpu_model), value, value_len);
}

static void meminfo_line(const char *key, size_t key_len, const char *value, size_t value_len, void *userdata)
{
        struct agent_inventory *inv = userdata;
        char digits[24];
        size_t n = 0;
        uint64_t kib;

        if (!key_is(key, key_len, "MemTotal") || inv->memory_bytes)
                return;
        while (n < value_len && value[n] >= '0' && value[n] <= '9')
                n++;
        if (n == 0 || n >= sizeof(digits))
                return;
        if (n < value_len && !(value_len - n == 3 && memcmp(value + n, " kB", 3) == 0))
                return;
        memcpy(digits, value, n);
        digits[n] = '\0';
        if (parse_u64(digits, 0, UINT64_MAX / 1024, &kib) == 0)
                inv->memory_bytes = kib * 1024;
}

/* The number of CPUs in a kernel CPU list ("0-3,8,10-11"); 0 when it is malformed. */
static uint32_t cpu_list_count(const char *s, size_t len)
{
        uint64_t total = 0;

        while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == ' '))
                len--;
        for (size_t i = 0; i < len;) {
                uint64_t lo = 0, hi;
                size_t start = i;

                while (i < len && s[i] >= '0' && s[i] <= '9' && lo <= AGENT_MAX_CPUS)
                        lo = lo * 10 + (uint64_t)(s[i++] - '0');
                if (i == start)
                        return 0;
                hi = lo;
                if (i < len && s[i] == '-') {
                        start = ++i;
                        for (hi = 0; i < len && s[i] >= '0' && s[i] <= '9' && hi <= AGENT_MAX_CPUS;)
                                hi = hi * 10 + (uint64_t)(s[i++] - '0');
                        if (i == start || hi < lo)
                                return 0;
                }
                if (i < len && s[i++] != ',')
                        return 0;
                total += hi - lo + 1;
                if (total > AGENT_MAX_CPUS)
                        return 0;
        }
        return (uint32_t)total;
}

/* When /proc/cpuinfo has no "processor" lines (some architectures), the kernel's list of online CPUs. */
static void collect_cpus_online(int root_fd, struct agent_inventory *inv)
{
        char raw[AGENT_MAX_ATTR_BYTES + 1];
        size_t n;

        if (inv->cpu_count == 0 && read_attr(root_fd, "sys/devices/system/cpu/online", raw, &n) == 0 &&
            strlen(raw) == n)
                inv->cpu_count = cpu_list_count(raw, n);
}

int agent_inventory_collect(const char *sysroot, struct agent_inventory *ret)
{
        _cleanup_free_ struct agent_inventory *inv = calloc(1, sizeof(*inv));
        _cleanup_close_ int root_fd = open(sysroot, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int r;

        if (!inv)
                return -ENOMEM;
        if (root_fd < 0)
                return -errno;
        collect_system(root_fd, inv);
        r = collect_nics(root_fd, inv);
        if (r < 0)
                return r;
        r = collect_disks(root_fd, inv);
        if (r < 0)
                return r;
        /* missing or unreadable proc files leave zeros */
        if (proc_lines(root_fd, "proc/cpuinfo", cpuinfo_line, inv) == -ENOMEM ||
            proc_lines(root_fd, "proc/meminfo", meminfo_line, inv) == -ENOMEM)
                return -ENOMEM;
        collect_cpus_online(root_fd, inv);
        *ret = *inv;
        return 0;
}
