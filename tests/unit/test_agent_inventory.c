/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "metald/agent.h"
#include "metald/util.h"
#include "test.h"

/* Creates every missing directory of path (relative to the scratch root). */
static int mkdirs(const char *root, const char *rel)
{
        char p[1024];
        int n = snprintf(p, sizeof(p), "%s/%s", root, rel);

        if (n < 0 || (size_t)n >= sizeof(p))
                return -ENAMETOOLONG;
        for (char *s = p + strlen(root) + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

static int put_bytes(const char *root, const char *rel, const void *data, size_t len)
{
        char p[1024], dir[1024];
        const char *slash = strrchr(rel, '/');
        int fd, r;

        if (slash) {
                snprintf(dir, sizeof(dir), "%.*s", (int)(slash - rel), rel);
                if ((r = mkdirs(root, dir)) < 0)
                        return r;
        }
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        r = write(fd, data, len) == (ssize_t)len ? 0 : -EIO;
        close(fd);
        return r;
}

static int put(const char *root, const char *rel, const char *text)
{
        return put_bytes(root, rel, text, strlen(text));
}

static const char *sysroot(void)
{
        static char p[512];

        snprintf(p, sizeof(p), "%s/root", test_tmpdir());
        mkdir(p, 0755);
        return p;
}

static int put_nic(const char *root, const char *name, const char *type, const char *mac, const char *carrier,
                   const char *speed)
{
        char p[512];
        int r = 0;

        snprintf(p, sizeof(p), "sys/class/net/%s/type", name);
        if (type && (r = put(root, p, type)) < 0)
                return r;
        snprintf(p, sizeof(p), "sys/class/net/%s/address", name);
        if (mac && (r = put(root, p, mac)) < 0)
                return r;
        snprintf(p, sizeof(p), "sys/class/net/%s/carrier", name);
        if (carrier && (r = put(root, p, carrier)) < 0)
                return r;
        snprintf(p, sizeof(p), "sys/class/net/%s/speed", name);
        if (speed && (r = put(root, p, speed)) < 0)
                return r;
        snprintf(p, sizeof(p), "sys/class/net/%s", name);
        return mkdirs(root, p);
}

/* A disk entry; device NULL means no device directory (a virtual block device). */
static int put_disk(const char *root, const char *name, const char *size, const char *device_model,
                    const char *rotational, const char *removable)
{
        char p[512];
        int r = 0;

        snprintf(p, sizeof(p), "sys/block/%s/size", name);
        if (size && (r = put(root, p, size)) < 0)
                return r;
        snprintf(p, sizeof(p), "sys/block/%s/device/model", name);
        if (device_model && (r = put(root, p, device_model)) < 0)
                return r;
        snprintf(p, sizeof(p), "sys/block/%s/queue/rotational", name);
        if (rotational && (r = put(root, p, rotational)) < 0)
                return r;
        snprintf(p, sizeof(p), "sys/block/%s/removable", name);
        if (removable && (r = put(root, p, removable)) < 0)
                return r;
        return 0;
}

static const char qemu_cpuinfo[] =
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: QEMU Virtual CPU version 2.5+\nflags\t\t: fpu\n\n"
        "processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Other CPU\n\n"
        "processor\t: 2\n\nprocessor\t: 3\n";

static int build_qemu_tree(const char *root)
{
        static const uint8_t vpd[] = { 0x00, 0x80, 0x00, 0x0a, 'Q', 'M', '0', '0', '0', '0', '1', ' ', ' ', ' ' };
        int r = 0;

        r |= put(root, "sys/class/dmi/id/product_uuid", "8C1B5A2E-4C1E-4D5A-9F00-000000000A15\n");
        r |= put(root, "sys/class/dmi/id/product_serial", "S123\n");
        r |= put(root, "sys/class/dmi/id/sys_vendor", "QEMU\n");
        r |= put(root, "sys/class/dmi/id/product_name", "Standard PC (i440FX + PIIX, 1996)\n");
        r |= put_nic(root, "lo", "772\n", "00:00:00:00:00:00\n", "1\n", NULL);
        r |= put_nic(root, "eth10", "1\n", "52:54:00:AA:BB:CC\n", "0\n", "-1\n");
        r |= put_nic(root, "eth2", "1\n", "52:54:00:12:34:56\n", "1\n", "1000\n");
        r |= put_nic(root, "eth3", "1\n", "52:54:00:12:34:57\n", NULL, NULL);      /* down: unreadable carrier */
        r |= put_nic(root, "sit0", "776\n", "00:00:00:00\n", "0\n", NULL);
        r |= put_disk(root, "sda", "8388608\n", "QEMU HARDDISK   \n", "1\n", "0\n");
        r |= put_bytes(root, "sys/block/sda/device/vpd_pg80", vpd, sizeof(vpd));
        r |= put_disk(root, "vda", "2097152\n", NULL, "0\n", "0\n");
        r |= mkdirs(root, "sys/block/vda/device");
        r |= put(root, "sys/block/vda/serial", "virtio-1\n");
        r |= put_disk(root, "nvme0n1", "1000215216\n", "Samsung SSD 980 1TB\n", "0\n", "0\n");
        r |= put(root, "sys/block/nvme0n1/device/serial", "S64ANS0T123456  \n");
        r |= put(root, "sys/block/nvme0n1/serial", "ignored: device/serial wins\n");
        r |= put_disk(root, "sdb", "0\n", "Virtual CD\n", "0\n", "1\n");            /* no medium */
        r |= put_disk(root, "sr0", "2097152\n", "QEMU DVD-ROM\n", "1\n", "1\n");
        r |= put_disk(root, "loop0", "2048\n", NULL, "0\n", "0\n");
        r |= put_disk(root, "md127", "2048\n", NULL, "0\n", "0\n");
        r |= put_disk(root, "dm-0", "2048\n", NULL, "0\n", "0\n");
        r |= put_disk(root, "zram0", "2048\n", NULL, "0\n", "0\n");
        r |= put_disk(root, "xvdz", "2048\n", NULL, "0\n", "0\n");                 /* no device: virtual */
        r |= put(root, "proc/cpuinfo", qemu_cpuinfo);
        r |= put(root, "proc/meminfo", "MemFree:          100 kB\nMemTotal:        2048000 kB\nMemTotal: 1 kB\n");
        return r;
}

TEST(agent_inventory_qemu)
{
        struct agent_inventory *inv = calloc(1, sizeof(*inv));
        const char *root = sysroot();

        CHECK(inv);
        CHECK_EQ(build_qemu_tree(root), 0);
        CHECK_EQ(agent_inventory_collect(root, inv), 0);
        CHECK_STREQ(inv->uuid, "8c1b5a2e-4c1e-4d5a-9f00-000000000a15");
        CHECK_STREQ(inv->serial, "S123");
        CHECK_STREQ(inv->vendor, "QEMU");
        CHECK_STREQ(inv->product, "Standard PC (i440FX + PIIX, 1996)");
        CHECK_EQ(inv->cpu_count, 4);
        CHECK_STREQ(inv->cpu_model, "QEMU Virtual CPU version 2.5+");
        CHECK_EQ(inv->memory_bytes, 2048000ULL * 1024);

        CHECK_EQ(inv->n_nics, 3);
        CHECK_STREQ(inv->nics[0].name, "eth2");        /* natural order: eth2, eth3, eth10 */
        CHECK_STREQ(inv->nics[0].mac, "52:54:00:12:34:56");
        CHECK(inv->nics[0].link);
        CHECK_EQ(inv->nics[0].speed_mbps, 1000);
        CHECK_STREQ(inv->nics[1].name, "eth3");
        CHECK(!inv->nics[1].link);
        CHECK_EQ(inv->nics[1].speed_mbps, 0);
        CHECK_STREQ(inv->nics[2].name, "eth10");
        CHECK_STREQ(inv->nics[2].mac, "52:54:00:aa:bb:cc");
        CHECK(!inv->nics[2].link);
        CHECK_EQ(inv->nics[2].speed_mbps, 0);

        CHECK_EQ(inv->n_disks, 3);
        CHECK_STREQ(inv->disks[0].name, "nvme0n1");
        CHECK_EQ(inv->disks[0].size_bytes, 1000215216ULL * 512);
        CHECK_STREQ(inv->disks[0].model, "Samsung SSD 980 1TB");
        CHECK_STREQ(inv->disks[0].serial, "S64ANS0T123456");
        CHECK(!inv->disks[0].rotational);
        CHECK_STREQ(inv->disks[1].name, "sda");
        CHECK_EQ(inv->disks[1].size_bytes, 4294967296ULL);
        CHECK_STREQ(inv->disks[1].model, "QEMU HARDDISK");
        CHECK_STREQ(inv->disks[1].serial, "QM00001");
        CHECK(inv->disks[1].rotational);
        CHECK(!inv->disks[1].removable);
        CHECK_STREQ(inv->disks[2].name, "vda");
        CHECK_STREQ(inv->disks[2].model, "");
        CHECK_STREQ(inv->disks[2].serial, "virtio-1");
        free(inv);
}

TEST(agent_inventory_empty_and_missing)
{
        struct agent_inventory *inv = calloc(1, sizeof(*inv));
        char missing[512];

        CHECK(inv);
        CHECK_EQ(agent_inventory_collect(sysroot(), inv), 0);
        CHECK_STREQ(inv->uuid, "");
        CHECK_STREQ(inv->vendor, "");
        CHECK_EQ(inv->cpu_count, 0);
        CHECK_EQ(inv->memory_bytes, 0);
        CHECK_EQ(inv->n_nics, 0);
        CHECK_EQ(inv->n_disks, 0);
        snprintf(missing, sizeof(missing), "%s/nope", test_tmpdir());
        CHECK_EQ(agent_inventory_collect(missing, inv), -ENOENT);
        free(inv);
}

/* Firmware without a UUID reports all zero or all FF: sent as none, as anything that is no UUID. */
TEST(agent_inventory_uuid_no_identity)
{
        static const struct {
                const char *file, *uuid;
        } cases[] = {
                { "00000000-0000-0000-0000-000000000000\n", "" },
                { "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF\n", "" },
                { "ffffffff-FFFF-ffff-FFFF-ffffffffffff\n", "" },
                { "{8C1B5A2E-4C1E-4D5A-9F00-000000000A15}\n", "" },
                { "8C1B5A2E-4C1E-4D5A-9F00-000000000A15\n", "8c1b5a2e-4c1e-4d5a-9f00-000000000a15" },
                { "8c1b5a2e-4c1e-4D5A-9f00-000000000A15", "8c1b5a2e-4c1e-4d5a-9f00-000000000a15" },
        };
        struct agent_inventory *inv = calloc(1, sizeof(*inv));
        const char *root = sysroot();

        CHECK(inv);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                CHECK_EQ(put(root, "sys/class/dmi/id/product_uuid", cases[i].file), 0);
                memset(inv, 0, sizeof(*inv));
                CHECK_EQ(agent_inventory_collect(root, inv), 0);
                CHECK_STREQ(inv->uuid, cases[i].uuid);
        }
        free(inv);
}

static int build_hostile_tree(const char *root)
{
        static const uint8_t junk[] = { 'D', 0x00, 'e', 0xff, 'l', 0x01, 'l', 0xc3, 0x28, ' ', 0xe2, 0x82, 0xac, '\n' };
        static const uint8_t short_vpd[] = { 0x00, 0x80, 0xff, 0xff, 'A', 'B' };     /* claims more than it has */
        char *huge = malloc(1 << 20);
        char p[512];
        int r = 0;

        if (!huge)
                return -ENOMEM;
        memset(huge, 'A', 1 << 20);
        r |= put_bytes(root, "sys/class/dmi/id/product_name", huge, 1 << 20);
        r |= put_bytes(root, "sys/class/dmi/id/sys_vendor", junk, sizeof(junk));
        r |= put(root, "sys/class/dmi/id/product_serial", "   no newline");
        r |= put(root, "sys/class/dmi/id/product_uuid", "8c1b5a2e-4c1e-4d5a-9f00-000000000a1\n");
        r |= put_nic(root, "a b", "1\n", "02:00:00:00:00:01\n", "1\n", "99999999999\n");
        r |= put_nic(root, "ctl\x01x", "1\n", "02:00:00:00:00:02\n", "1\n", NULL);
        r |= put_nic(root, "a-very-long-interface-name", "1\n", "02:00:00:00:00:03\n", "1\n", NULL);
        r |= put_nic(root, "badmac", "1\n", "02:00:00:00:00\n", "1\n", NULL);
        r |= put_nic(root, "nulmac", "1\n", NULL, "1\n", NULL);
        r |= put_bytes(root, "sys/class/net/nulmac/address", "02:00:00:00:00:04\0junk\n", 23);
        r |= put_nic(root, "notype", NULL, "02:00:00:00:00:05\n", "1\n", NULL);
        r |= put_nic(root, "fifo0", "1\n", "02:00:00:00:00:06\n", NULL, NULL);
        snprintf(p, sizeof(p), "%s/sys/class/net/fifo0/carrier", root);
        r |= mkfifo(p, 0644);
        r |= put_nic(root, "dirspeed", "1\n", "02:00:00:00:00:07\n", "1\n", NULL);
        r |= mkdirs(root, "sys/class/net/dirspeed/speed");
        r |= put_bytes(root, "sys/class/net/bigtype/type", huge, 1 << 20);
        r |= put_disk(root, "sdx", "12abc\n", "M\n", "1\n", "1\n");
        r |= put_disk(root, "sdy", "18446744073709551615\n", "M\n", "1\n", "1\n");
        r |= put_disk(root, "sdz", "8\n", NULL, "junk\n", "\n");
        r |= put_bytes(root, "sys/block/sdz/device/model", huge, 1 << 20);
        r |= put_bytes(root, "sys/block/sdz/device/vpd_pg80", short_vpd, sizeof(short_vpd));
        r |= put(root, "sys/block/file", "not a directory");
        r |= put_bytes(root, "proc/cpuinfo", huge, 1 << 20);
        r |= put(root, "proc/meminfo", "MemTotal:    abc kB\nMemTotal: 99999999999999999999999 kB");
        free(huge);
        return r;
}

TEST(agent_inventory_hostile)
{
        struct agent_inventory *inv = calloc(1, sizeof(*inv));
        const char *root = sysroot();

        CHECK(inv);
        CHECK_EQ(build_hostile_tree(root), 0);
        CHECK_EQ(agent_inventory_collect(root, inv), 0);
        CHECK_EQ(strlen(inv->product), AGENT_MAX_STRING);
        CHECK_EQ(strspn(inv->product, "A"), AGENT_MAX_STRING);
        CHECK_STREQ(inv->vendor, "D e?l l?( \xe2\x82\xac");
        CHECK_STREQ(inv->serial, "no newline");
        CHECK_STREQ(inv->uuid, "");
        CHECK_EQ(inv->cpu_count, 0);
        CHECK_STREQ(inv->cpu_model, "");
        CHECK_EQ(inv->memory_bytes, 0);

        /* "a b" (odd but printable), fifo0 (link unreadable), dirspeed */
        CHECK_EQ(inv->n_nics, 3);
        CHECK_STREQ(inv->nics[0].name, "a b");
        CHECK_EQ(inv->nics[0].speed_mbps, 0);
        CHECK_STREQ(inv->nics[1].name, "dirspeed");
        CHECK_EQ(inv->nics[1].speed_mbps, 0);
        CHECK_STREQ(inv->nics[2].name, "fifo0");
        CHECK(!inv->nics[2].link);

        CHECK_EQ(inv->n_disks, 1);
        CHECK_STREQ(inv->disks[0].name, "sdz");
        CHECK_EQ(inv->disks[0].size_bytes, 4096);
        CHECK_EQ(strlen(inv->disks[0].model), AGENT_MAX_STRING);
        CHECK_STREQ(inv->disks[0].serial, "AB");
        CHECK(!inv->disks[0].rotational);
        CHECK(!inv->disks[0].removable);
        free(inv);
}

TEST(agent_inventory_cpus_online)
{
        static const struct {
                const char *online;
                uint32_t count;
        } cases[] = {
                { "0\n", 1 }, { "0-3\n", 4 }, { "0-3,8,10-11\n", 7 }, { "0-65535", 65536 }, { "0-65536", 0 },
                { "3-1", 0 }, { "0,,1", 0 }, { "-1", 0 }, { "0-", 0 }, { "a", 0 }, { "", 0 },
                { "99999999999999999999", 0 },
        };
        struct agent_inventory *inv = calloc(1, sizeof(*inv));
        const char *root = sysroot();

        CHECK(inv);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                CHECK_EQ(put(root, "sys/devices/system/cpu/online", cases[i].online), 0);
                CHECK_EQ(agent_inventory_collect(root, inv), 0);
                CHECK_EQ(inv->cpu_count, cases[i].count);
        }
        /* processor lines win */
        CHECK_EQ(put(root, "proc/cpuinfo", "processor : 0\n"), 0);
        CHECK_EQ(agent_inventory_collect(root, inv), 0);
        CHECK_EQ(inv->cpu_count, 1);
        free(inv);
}

TEST(agent_inventory_nic_cap)
{
        struct agent_inventory *inv = calloc(1, sizeof(*inv));
        const char *root = sysroot();
        char name[16], mac[32];

        CHECK(inv);
        for (int i = 0; i < 100; i++) {
                snprintf(name, sizeof(name), "eth%d", i);
                snprintf(mac, sizeof(mac), "02:00:00:00:%02x:%02x\n", i >> 8, i & 255);
                CHECK_EQ(put_nic(root, name, "1\n", mac, "1\n", "10000\n"), 0);
        }
        for (int i = 0; i < 70; i++) {
                snprintf(name, sizeof(name), "sd%c%c", 'a' + i / 26, 'a' + i % 26);
                CHECK_EQ(put_disk(root, name, "2048\n", "Disk\n", "0\n", "0\n"), 0);
        }
        CHECK_EQ(agent_inventory_collect(root, inv), 0);
        CHECK_EQ(inv->n_nics, AGENT_MAX_NICS);
        CHECK_STREQ(inv->nics[0].name, "eth0");
        CHECK_STREQ(inv->nics[63].name, "eth63");
        CHECK_EQ(inv->n_disks, AGENT_MAX_DISKS);
        CHECK_STREQ(inv->disks[0].name, "sdaa");
        free(inv);
}

struct clean_case {
        const char *in;
        size_t in_len;          /* 0: strlen */
        size_t cap;
        const char *out;
};

TEST(agent_text_clean)
{
        static const struct clean_case cases[] = {
                { "  hello  ", 0, 256, "hello" },
                { "\tA\nB\r\n", 0, 256, "A B" },
                { "a\0b", 3, 256, "a b" },
                { "\xff\xfe", 0, 256, "??" },
                { "caf\xc3\xa9", 0, 256, "caf\xc3\xa9" },
                { "\xc2\x85x", 0, 256, "x" },                   /* C1 control, then leading space trimmed */
                { "\x7f", 0, 256, "" },
                { "\xed\xa0\x80", 0, 256, "???" },              /* a surrogate */
                { "\xc0\xaf", 0, 256, "??" },                   /* overlong '/' */
                { "\xf4\x90\x80\x80", 0, 256, "????" },         /* above U+10FFFF */
                { "\xe2\x82", 0, 256, "??" },                   /* truncated sequence */
                { "a\xc3\xa9", 0, 3, "a" },                     /* never cuts a character */
                { "abcdef", 0, 4, "abc" },
                { "ab   cd", 0, 5, "ab" },                      /* the cut leaves no trailing space */
                { "x", 0, 1, "" },
        };
        char out[256];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                const struct clean_case *c = &cases[i];
                size_t n = agent_text_clean(out, c->cap, c->in, c->in_len ? c->in_len : strlen(c->in));

                CHECK_STREQ(out, c->out);
                CHECK_EQ(n, strlen(c->out));
                CHECK(agent_text_printable(out, n));
        }
        CHECK_EQ(agent_text_clean(out, 0, "abc", 3), 0);
        CHECK(!agent_text_printable("a\nb", 3));
        CHECK(!agent_text_printable("\xc3", 1));
        CHECK(agent_text_printable("", 0));
}

static json_object *field(json_object *o, const char *key, enum json_type type)
{
        json_object *v = NULL;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

static bool keys_are(json_object *o, const char *const *keys, size_t n)
{
        if (!json_object_is_type(o, json_type_object) || (size_t)json_object_object_length(o) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!json_object_object_get_ex(o, keys[i], NULL))
                        return false;
        return true;
}

TEST(agent_inventory_json_shape)
{
        static const char *const top[] = { "system", "cpu", "memory_bytes", "nics", "disks" };
        static const char *const system[] = { "uuid", "serial", "vendor", "product" };
        static const char *const cpu[] = { "count", "model" };
        static const char *const nic[] = { "name", "mac", "link", "speed_mbps" };
        static const char *const disk[] = { "name", "size_bytes", "model", "serial", "rotational", "removable" };
        struct agent_inventory *inv = calloc(1, sizeof(*inv));
        struct buf out = BUF_INIT(AGENT_MAX_BODY_BYTES);
        const char *root = sysroot();
        json_object *o, *nics, *disks, *d0;

        CHECK(inv);
        CHECK_EQ(build_qemu_tree(root), 0);
        CHECK_EQ(agent_inventory_collect(root, inv), 0);
        str_copy(inv->disks[0].model, sizeof(inv->disks[0].model), "quote \" backslash \\ slash /");
        CHECK_EQ(agent_inventory_to_json(inv, &out), 0);
        o = json_tokener_parse(out.data);
        CHECK(o);
        CHECK(keys_are(o, top, ARRAY_SIZE(top)));
        CHECK(keys_are(field(o, "system", json_type_object), system, ARRAY_SIZE(system)));
        CHECK(keys_are(field(o, "cpu", json_type_object), cpu, ARRAY_SIZE(cpu)));
        CHECK(field(field(o, "cpu", json_type_object), "count", json_type_int));
        CHECK(field(o, "memory_bytes", json_type_int));
        CHECK_EQ(json_object_get_int64(field(o, "memory_bytes", json_type_int)), 2048000LL * 1024);
        nics = field(o, "nics", json_type_array);
        disks = field(o, "disks", json_type_array);
        CHECK(nics && disks);
        CHECK_EQ(json_object_array_length(nics), 3);
        CHECK_EQ(json_object_array_length(disks), 3);
        CHECK(keys_are(json_object_array_get_idx(nics, 0), nic, ARRAY_SIZE(nic)));
        CHECK(field(json_object_array_get_idx(nics, 0), "link", json_type_boolean));
        CHECK(field(json_object_array_get_idx(nics, 0), "speed_mbps", json_type_int));
        d0 = json_object_array_get_idx(disks, 0);
        CHECK(keys_are(d0, disk, ARRAY_SIZE(disk)));
        CHECK(field(d0, "rotational", json_type_boolean));
        CHECK_STREQ(json_object_get_string(field(d0, "model", json_type_string)), "quote \" backslash \\ slash /");
        CHECK(strstr(out.data, "slash /\""));           /* "/" is not escaped */
        CHECK_STREQ(json_object_get_string(field(field(o, "system", json_type_object), "uuid", json_type_string)),
                    "8c1b5a2e-4c1e-4d5a-9f00-000000000a15");
        json_object_put(o);
        buf_free(&out);
        free(inv);
}

TEST(agent_register_request_fits)
{
        struct agent_inventory *inv = calloc(1, sizeof(*inv));
        struct buf out = BUF_INIT(AGENT_MAX_BODY_BYTES);
        size_t trimmed = 99;
        json_object *o, *v;

        CHECK(inv);
        /* every string needs escaping: the full inventory is about twice the cap */
        inv->n_disks = AGENT_MAX_DISKS;
        for (size_t i = 0; i < inv->n_disks; i++) {
                snprintf(inv->disks[i].name, sizeof(inv->disks[i].name), "sd%zu", i);
                memset(inv->disks[i].model, '"', AGENT_MAX_STRING);
                memset(inv->disks[i].serial, '\\', AGENT_MAX_STRING);
        }
        inv->n_nics = 2;
        str_copy(inv->nics[0].name, sizeof(inv->nics[0].name), "eth0");
        str_copy(inv->nics[0].mac, sizeof(inv->nics[0].mac), "52:54:00:12:34:56");
        CHECK_EQ(agent_register_request("AAAAAAAAAAAAAAAAAAAAAA", "52:54:00:12:34:56", inv, &out, &trimmed), 0);
        CHECK(trimmed > 0 && trimmed < AGENT_MAX_DISKS);
        CHECK(out.len <= AGENT_MAX_BODY_BYTES);
        o = json_tokener_parse(out.data);
        CHECK(o);
        CHECK(json_object_object_get_ex(o, "inventory", &v));
        CHECK(json_object_object_get_ex(v, "disks", &v));
        CHECK_EQ(json_object_array_length(v), AGENT_MAX_DISKS - trimmed);
        CHECK(json_object_object_get_ex(o, "nonce", &v));
        CHECK_STREQ(json_object_get_string(v), "AAAAAAAAAAAAAAAAAAAAAA");
        json_object_put(o);

        buf_reset(&out);
        inv->n_disks = 1;
        CHECK_EQ(agent_register_request("AAAAAAAAAAAAAAAAAAAAAA", "52:54:00:12:34:56", inv, &out, &trimmed), 0);
        CHECK_EQ(trimmed, 0);
        buf_free(&out);
        free(inv);
}
