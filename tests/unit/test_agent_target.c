/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "metald/agent.h"
#include "metald/util.h"
#include "test.h"

#define GIB (1ULL << 30)

TEST(agent_disk_rule_parse_table)
{
        static const struct {
                const char *text;
                int r;
                enum agent_disk_rule_kind kind;
                const char *value;
        } cases[] = {
                { "largest", 0, AGENT_DISK_LARGEST, "" },
                { "smallest", 0, AGENT_DISK_SMALLEST, "" },
                { "ssd", 0, AGENT_DISK_SSD, "" },
                { "hdd", 0, AGENT_DISK_HDD, "" },
                { "nvme", 0, AGENT_DISK_NVME, "" },
                { "sda", 0, AGENT_DISK_NAME, "sda" },
                { "nvme0n1", 0, AGENT_DISK_NAME, "nvme0n1" },
                { "cciss!c0d0", 0, AGENT_DISK_NAME, "cciss!c0d0" },
                { "serial=QM00001", 0, AGENT_DISK_SERIAL, "QM00001" },
                { "serial=WD-WX1 2", 0, AGENT_DISK_SERIAL, "WD-WX1 2" },
                { "path=/dev/disk/by-path/pci-0000:00:1f.2-ata-1", 0, AGENT_DISK_PATH,
                  "/dev/disk/by-path/pci-0000:00:1f.2-ata-1" },
                { "path=/dev/disk/by-id/nvme-eui.0025388b71b0e6c1", 0, AGENT_DISK_PATH,
                  "/dev/disk/by-id/nvme-eui.0025388b71b0e6c1" },
                /* hostile or unknown */
                { "", -EINVAL, 0, NULL },
                { "Largest", 0, AGENT_DISK_NAME, "Largest" },        /* a name, which no disk has */
                { "/dev/sda", -EINVAL, 0, NULL },
                { "../sda", -EINVAL, 0, NULL },
                { ".sda", -EINVAL, 0, NULL },
                { "-sda", -EINVAL, 0, NULL },
                { "sda/../mem", -EINVAL, 0, NULL },
                { "sda sdb", -EINVAL, 0, NULL },
                { "abcdefghijabcdefghijabcdefghijab", -EINVAL, 0, NULL },    /* 32 > AGENT_DISK_NAME_MAX */
                { "serial=", -EINVAL, 0, NULL },
                { "serial= x", -EINVAL, 0, NULL },
                { "serial=x ", -EINVAL, 0, NULL },
                { "serial=a\tb", -EINVAL, 0, NULL },
                { "path=", -EINVAL, 0, NULL },
                { "path=/dev/sda", -EINVAL, 0, NULL },
                { "path=/dev/disk/by-id/", -EINVAL, 0, NULL },
                { "path=/dev/disk/by-id/..", -EINVAL, 0, NULL },
                { "path=/dev/disk/by-id/../../mem", -EINVAL, 0, NULL },
                { "path=/dev/disk/by-uuid/1234", -EINVAL, 0, NULL },
                { "path=/dev/disk/by-id/a b", -EINVAL, 0, NULL },
                { "size=100G", -EINVAL, 0, NULL },
        };
        struct agent_disk_rule rule;

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int r = agent_disk_rule_parse(cases[i].text, strlen(cases[i].text), &rule);

                if (r != cases[i].r)
                        fprintf(stderr, "rule \"%s\"\n", cases[i].text);
                CHECK_EQ(r, cases[i].r);
                if (r == 0) {
                        CHECK_EQ(rule.kind, cases[i].kind);
                        CHECK_STREQ(rule.value, cases[i].value);
                }
        }
        /* a NUL inside the text */
        CHECK_EQ(agent_disk_rule_parse("sda\0b", 5, &rule), -EINVAL);
        CHECK_EQ(agent_disk_rule_parse("sda", 3, &rule), 0);
}

static void add_disk(struct agent_inventory *inv, const char *name, uint64_t gib, bool rotational, bool removable,
                     const char *serial)
{
        struct agent_disk *d = &inv->disks[inv->n_disks++];

        *d = (struct agent_disk){ .size_bytes = gib * GIB, .rotational = rotational, .removable = removable };
        str_copy(d->name, sizeof(d->name), name);
        str_copy(d->serial, sizeof(d->serial), serial);
}

/* Sorted by name, as agent_inventory_collect leaves them. */
static void server(struct agent_inventory *inv)
{
        *inv = (struct agent_inventory){ 0 };
        add_disk(inv, "nvme0n1", 1000, false, false, "N0");
        add_disk(inv, "nvme1n1", 2000, false, false, "N1");
        add_disk(inv, "sda", 500, true, false, "S-A");
        add_disk(inv, "sdb", 240, false, false, "S-B");
        add_disk(inv, "sdc", 16, false, true, "USB1");
}

TEST(agent_disk_choose_table)
{
        static const struct {
                const char *rule;
                bool allow_removable;
                const char *busy;       /* a disk in use, or NULL */
                const char *resolved;   /* what a path= link names */
                const char *want;       /* the chosen disk, or NULL */
                const char *why;        /* for a refusal: a substring of the reason */
        } cases[] = {
                { "largest", false, NULL, NULL, "nvme1n1", NULL },
                { "largest", false, "nvme1n1", NULL, "nvme0n1", NULL },
                { "smallest", false, NULL, NULL, "sdb", NULL },
                { "smallest", true, NULL, NULL, "sdc", NULL },
                { "smallest", true, "sdc", NULL, "sdb", NULL },
                { "ssd", false, NULL, NULL, "nvme0n1", NULL },
                { "ssd", false, "nvme0n1", NULL, "nvme1n1", NULL },
                { "hdd", false, NULL, NULL, "sda", NULL },
                { "hdd", false, "sda", NULL, NULL, "disk rule \"hdd\": no usable disk; disks seen: nvme0n1 1000 GiB ssd" },
                { "hdd", false, "sda", NULL, NULL, "sda 500 GiB hdd (sda1 is mounted on /)" },
                { "hdd", false, "sda", NULL, NULL, "sdc 16 GiB ssd (removable, and the profile does not allow" },
                { "nvme", false, NULL, NULL, "nvme0n1", NULL },
                { "nvme", false, "nvme0n1", NULL, "nvme1n1", NULL },
                { "sdb", false, NULL, NULL, "sdb", NULL },
                { "sdb", false, "sdb", NULL, NULL, "disk rule \"sdb\": sdb is not usable: sdb1 is mounted on /" },
                { "sdc", false, NULL, NULL, NULL, "sdc is not usable: removable" },
                { "sdc", true, NULL, NULL, "sdc", NULL },
                { "sdz", false, NULL, NULL, NULL, "disk rule \"sdz\": no such disk; disks seen: nvme0n1" },
                { "serial=S-B", false, NULL, NULL, "sdb", NULL },
                { "serial=S-", false, NULL, NULL, NULL, "no such disk" },
                { "serial=USB1", false, NULL, NULL, NULL, "removable" },
                { "path=/dev/disk/by-id/wwn-1", false, NULL, "sda", "sda", NULL },
                { "path=/dev/disk/by-id/wwn-1", false, NULL, "sda1", NULL, "\"path=/dev/disk/by-id/wwn-1\" (sda1): no such disk" },
                { "path=/dev/disk/by-id/wwn-1", false, "sda", "sda", NULL, "sda is not usable" },
        };
        struct agent_inventory inv;
        struct agent_disk_use use[AGENT_MAX_DISKS];

        for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
                struct agent_disk_rule rule;
                char why[1024] = "";
                size_t got = SIZE_MAX;
                int r;

                server(&inv);
                memset(use, 0, sizeof(use));
                for (size_t i = 0; cases[c].busy && i < inv.n_disks; i++)
                        if (strcmp(inv.disks[i].name, cases[c].busy) == 0)
                                snprintf(use[i].why, sizeof(use[i].why), "%s1 is mounted on /", cases[c].busy);
                CHECK_EQ(agent_disk_rule_parse(cases[c].rule, strlen(cases[c].rule), &rule), 0);
                r = agent_disk_choose(&rule, cases[c].allow_removable, cases[c].resolved, &inv, use, &got, why,
                                      sizeof(why));
                if (cases[c].want) {
                        if (r != 0)
                                fprintf(stderr, "case %zu (%s): %s\n", c, cases[c].rule, why);
                        CHECK_EQ(r, 0);
                        CHECK_STREQ(inv.disks[got].name, cases[c].want);
                } else {
                        if (!strstr(why, cases[c].why))
                                fprintf(stderr, "case %zu (%s): %s\n", c, cases[c].rule, why);
                        CHECK_EQ(r, -ENODEV);
                        CHECK_EQ(got, SIZE_MAX);
                        CHECK(strstr(why, cases[c].why) != NULL);
                }
        }
}

TEST(agent_disk_choose_odd_inventories)
{
        struct agent_inventory inv = { 0 };
        struct agent_disk_use use[AGENT_MAX_DISKS] = { 0 };
        struct agent_disk_rule rule;
        char why[64];
        size_t got;

        /* no disks at all */
        CHECK_EQ(agent_disk_rule_parse("largest", 7, &rule), 0);
        CHECK_EQ(agent_disk_choose(&rule, true, NULL, &inv, use, &got, why, sizeof(why)), -ENODEV);
        CHECK(strstr(why, "no disks seen") != NULL);
        /* equal sizes: the first by name */
        add_disk(&inv, "sda", 8, true, false, "");
        add_disk(&inv, "sdb", 8, true, false, "");
        CHECK_EQ(agent_disk_choose(&rule, false, NULL, &inv, use, &got, why, sizeof(why)), 0);
        CHECK_EQ(got, 0);
        /* an empty serial matches nothing, not the disks without one */
        CHECK_EQ(agent_disk_rule_parse("serial=x", 8, &rule), 0);
        CHECK_EQ(agent_disk_choose(&rule, false, NULL, &inv, use, &got, why, sizeof(why)), -ENODEV);
        /* two disks with the same serial (multipath): neither */
        str_copy(inv.disks[0].serial, sizeof(inv.disks[0].serial), "x");
        str_copy(inv.disks[1].serial, sizeof(inv.disks[1].serial), "x");
        CHECK_EQ(agent_disk_choose(&rule, false, NULL, &inv, use, &got, why, sizeof(why)), -ENODEV);
        CHECK(strstr(why, "2 disks match") != NULL);
        /* a small why buffer is cut, never overrun */
        for (size_t i = inv.n_disks; i < AGENT_MAX_DISKS; i++)
                add_disk(&inv, "sdx", 1, true, true, "");
        CHECK_EQ(agent_disk_rule_parse("nvme", 4, &rule), 0);
        CHECK_EQ(agent_disk_choose(&rule, false, NULL, &inv, use, &got, why, sizeof(why)), -ENODEV);
        CHECK(strlen(why) < sizeof(why));
}

static void dev(struct agent_blockdev *d, const char *name, size_t disk, uint32_t major, uint32_t minor,
                const char *holder)
{
        *d = (struct agent_blockdev){ .disk = disk, .major = major, .minor = minor };
        str_copy(d->name, sizeof(d->name), name);
        str_copy(d->holder, sizeof(d->holder), holder);
}

TEST(agent_disk_use_from_mounts)
{
        static const char mountinfo[] =
                "22 1 0:21 / /proc rw,nosuid shared:12 - proc proc rw\n"
                "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"      /* by number */
                "30 25 0:5 / /dev rw - devtmpfs udev rw,size=4k\n"
                "40 25 0:45 / /srv rw master:3 - btrfs /dev/nvme0n1p1 rw\n"    /* anonymous number: by source */
                "\n";
        static const char swaps[] = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
                                    "/dev/sdb                                partition\t1048572\t\t0\t\t-2\n"
                                    "/swapfile                               file\t\t1048572\t\t0\t\t-3\n";
        struct agent_inventory inv = { 0 };
        struct agent_blockdev devs[8];
        struct agent_disk_use use[AGENT_MAX_DISKS];
        size_t n = 0;

        add_disk(&inv, "nvme0n1", 1, false, false, "");
        add_disk(&inv, "sda", 1, true, false, "");
        add_disk(&inv, "sdb", 1, true, false, "");
        add_disk(&inv, "sdc", 1, true, false, "");
        add_disk(&inv, "sdd", 1, true, false, "");
        dev(&devs[n++], "nvme0n1", 0, 259, 0, "");
        dev(&devs[n++], "nvme0n1p1", 0, 259, 1, "");
        dev(&devs[n++], "sda", 1, 8, 0, "");
        dev(&devs[n++], "sda1", 1, 8, 1, "");
        dev(&devs[n++], "sdb", 2, 8, 16, "");
        dev(&devs[n++], "sdc", 3, 8, 32, "");
        dev(&devs[n++], "sdc2", 3, 8, 34, "md0");
        dev(&devs[n++], "sdd", 4, 8, 48, "");
        memset(use, 'x', sizeof(use));
        CHECK_EQ(agent_disk_use_from(&inv, devs, n, mountinfo, strlen(mountinfo), swaps, strlen(swaps), use), 0);
        CHECK_STREQ(use[0].why, "nvme0n1p1 is mounted on /srv");
        CHECK_STREQ(use[1].why, "sda1 is mounted on /");
        CHECK_STREQ(use[2].why, "sdb is in use as swap");
        CHECK_STREQ(use[3].why, "sdc2 is held by md0");
        CHECK_STREQ(use[4].why, "");

        /* hostile mountinfo */
        static const char *const bad[] = {
                "garbage\n",
                "25 1 8:x / / rw - ext4 /dev/sda1 rw\n",
                "25 1 8 / / rw - ext4 /dev/sda1 rw\n",
                "25 1 8:1 / / rw ext4 /dev/sda1 rw\n",                 /* no separator */
                "25 1 8:1 / / rw a b c d - ext4\n",                     /* no source after it */
                "25 1 99999999999:1 / / rw - ext4 /dev/sda1 rw\n",
                ("1 2 3:4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 "
                 "37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 - a b c\n"),
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                CHECK_EQ(agent_disk_use_from(&inv, devs, n, bad[i], strlen(bad[i]), "", 0, use), -EINVAL);
        /* a device naming a disk the inventory does not have */
        dev(&devs[0], "sdq", 9, 65, 0, "");
        CHECK_EQ(agent_disk_use_from(&inv, devs, 1, "", 0, "", 0, use), -EINVAL);
}

static int put(const char *root, const char *rel, const char *text)
{
        char p[1024], cmd[1200];
        int fd, r;

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", p);
        if (system(cmd) != 0)
                return -EIO;
        fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        r = write(fd, text, strlen(text)) == (ssize_t)strlen(text) ? 0 : -EIO;
        close(fd);
        return r;
}

TEST(agent_disk_use_collect_sysroot)
{
        const char *root = test_tmpdir();
        struct agent_inventory inv = { 0 };
        struct agent_disk_use use[AGENT_MAX_DISKS];
        char p[1024];

        add_disk(&inv, "sda", 1, true, false, "");
        add_disk(&inv, "vdb", 1, true, false, "");
        add_disk(&inv, "vdc", 1, true, false, "");
        CHECK_EQ(put(root, "sys/block/sda/dev", "8:0\n"), 0);
        CHECK_EQ(put(root, "sys/block/sda/sda1/partition", "1\n"), 0);
        CHECK_EQ(put(root, "sys/block/sda/sda1/dev", "8:1\n"), 0);
        CHECK_EQ(put(root, "sys/block/sda/queue/rotational", "1\n"), 0);      /* not a partition */
        CHECK_EQ(put(root, "sys/block/vdb/dev", "252:16\n"), 0);
        CHECK_EQ(put(root, "sys/block/vdb/holders/dm-0", ""), 0);
        CHECK_EQ(put(root, "sys/block/vdc/dev", "252:32\n"), 0);
        /* no mounts to read: nothing can be said to be free */
        CHECK(agent_disk_use_collect(root, &inv, use) < 0);
        CHECK_EQ(put(root, "proc/self/mountinfo", "25 1 8:1 / /boot rw - ext4 /dev/sda1 rw\n"), 0);
        CHECK_EQ(agent_disk_use_collect(root, &inv, use), 0);
        CHECK_STREQ(use[0].why, "sda1 is mounted on /boot");
        CHECK_STREQ(use[1].why, "vdb is held by dm-0");
        CHECK_STREQ(use[2].why, "");
        CHECK_EQ(put(root, "proc/swaps", "Filename Type Size Used Priority\n/dev/vdc partition 1 0 -2\n"), 0);
        CHECK_EQ(agent_disk_use_collect(root, &inv, use), 0);
        CHECK_STREQ(use[2].why, "vdc is in use as swap");

        /* path= links below a dev dir */
        snprintf(p, sizeof(p), "%s/dev", root);
        CHECK_EQ(put(root, "dev/vdc", ""), 0);
        CHECK_EQ(put(root, "outside", ""), 0);
        CHECK_EQ(put(root, "dev/disk/by-id/.keep", ""), 0);
        {
                char link[1100], name[AGENT_DISK_NAME_MAX + 1];

                snprintf(link, sizeof(link), "%s/dev/disk/by-id/virtio-target", root);
                CHECK_EQ(symlink("../../vdc", link), 0);
                snprintf(link, sizeof(link), "%s/dev/disk/by-id/escape", root);
                CHECK_EQ(symlink("../../../outside", link), 0);
                CHECK_EQ(agent_disk_path_resolve(p, "/dev/disk/by-id/virtio-target", name), 0);
                CHECK_STREQ(name, "vdc");
                CHECK_EQ(agent_disk_path_resolve(p, "/dev/disk/by-id/escape", name), -EXDEV);
                CHECK_EQ(agent_disk_path_resolve(p, "/dev/disk/by-id/missing", name), -ENOENT);
                CHECK_EQ(agent_disk_path_resolve(p, "/dev/disk/by-id", name), -EXDEV);
        }
}

TEST(agent_bytes_text_table)
{
        static const struct {
                uint64_t bytes;
                const char *text;
        } cases[] = {
                { 0, "0 B" },
                { 1023, "1023 B" },
                { 1024, "1 KiB" },
                { 1536, "1.5 KiB" },
                { 412ULL << 20, "412 MiB" },
                { (12ULL << 30) / 10, "1.2 GiB" },
                { 2ULL << 40, "2 TiB" },
                { UINT64_MAX, "16384 PiB" },
        };
        char text[32];

        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                agent_bytes_text(cases[i].bytes, text, sizeof(text));
                CHECK_STREQ(text, cases[i].text);
        }
}
