/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metald/config.h"
#include "metald/preflight.h"
#include "metald/util.h"
#include "test.h"

#define IMG_BYTES 8192

static void put16(uint8_t *p, size_t off, uint16_t v)
{
        p[off] = (uint8_t)v;
        p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[off + i] = (uint8_t)(v >> (8 * i));
}

/* An EFI image header as linkers write it: MZ, e_lfanew, PE signature, COFF header, optional header. */
static void make_pe(uint8_t *p, uint16_t machine, uint16_t subsystem)
{
        const uint32_t lfanew = 0xc0;

        memset(p, 0, IMG_BYTES);
        memcpy(p, "MZ", 2);
        put32(p, 0x3c, lfanew);
        memcpy(p + lfanew, "PE\0\0", 4);
        put16(p, lfanew + 4, machine);
        put16(p, lfanew + 20, 240);             /* SizeOfOptionalHeader of PE32+ */
        put16(p, lfanew + 24, 0x20b);
        put16(p, lfanew + 24 + 68, subsystem);
}

/* An x86 bzImage header: setup sectors, then syssize paragraphs of protected-mode code. */
static void set_bzimage(uint8_t *p, uint8_t setup_sects, uint32_t syssize)
{
        p[0x1f1] = setup_sects;
        put32(p, 0x1f4, syssize);
        memcpy(p + 0x202, "HdrS", 4);
}

enum img { IMG_ZERO, IMG_PE_X64, IMG_PE_ARM64, IMG_PE_DRIVER, IMG_PE_NOSIG, IMG_PE_SMALLOPT, IMG_PE_FARHDR,
           IMG_BZIMAGE, IMG_BZIMAGE_BARE, IMG_ARM64_IMAGE, IMG_ELF, IMG_HDRS_ELSEWHERE };

static void make_img(enum img kind, uint8_t *p)
{
        memset(p, 0, IMG_BYTES);
        switch (kind) {
        case IMG_ZERO:
                break;
        case IMG_PE_X64:
                make_pe(p, 0x8664, 10);
                break;
        case IMG_PE_ARM64:
                make_pe(p, 0xaa64, 10);
                break;
        case IMG_PE_DRIVER:
                make_pe(p, 0x8664, 11);
                break;
        case IMG_PE_NOSIG:
                make_pe(p, 0x8664, 10);
                memcpy(p + 0xc0, "NE\0\0", 4);
                break;
        case IMG_PE_SMALLOPT:
                make_pe(p, 0x8664, 10);
                put16(p, 0xc0 + 20, 16);
                break;
        case IMG_PE_FARHDR:
                make_pe(p, 0x8664, 10);
                put32(p, 0x3c, 0x7fffffff);
                break;
        case IMG_BZIMAGE:
                make_pe(p, 0x8664, 10);         /* with its EFI stub, as distributions ship it */
                set_bzimage(p, 3, 100);         /* 4 * 512 + 1600 = 3648 bytes */
                break;
        case IMG_BZIMAGE_BARE:
                set_bzimage(p, 3, 100);
                break;
        case IMG_ARM64_IMAGE:
                memcpy(p + 0x38, "ARM\x64", 4);
                break;
        case IMG_ELF:
                memcpy(p, "\177ELF\2\1\1", 7);
                break;
        case IMG_HDRS_ELSEWHERE:
                memcpy(p + 0x200, "HdrS", 4);
                break;
        }
}

struct recognize_case {
        const char *name;
        enum preflight_kind kind;
        uint16_t machine;
        enum img img;
        size_t len;             /* bytes available of the head */
        uint64_t size;          /* the file's size */
        const char *why;        /* NULL: recognised */
};

static const struct recognize_case recognize_cases[] = {
        { "pxe ok", PREFLIGHT_PXE, 0, IMG_ZERO, 4096, 74213, NULL },
        { "pxe empty", PREFLIGHT_PXE, 0, IMG_ZERO, 0, 0, "is empty" },
        { "pxe truncated", PREFLIGHT_PXE, 0, IMG_ZERO, 100, 100,
          "is 100 bytes, too short for a PXE boot program (truncated?)" },
        { "pxe too large", PREFLIGHT_PXE, 0, IMG_ZERO, 4096, 700000,
          "is 700000 bytes, more than a PXE ROM can load below 640 KiB (623616)" },
        { "pxe that is an efi binary", PREFLIGHT_PXE, 0, IMG_PE_X64, 4096, 80000,
          "is an EFI binary, not a BIOS PXE boot program" },
        { "pxe that is elf", PREFLIGHT_PXE, 0, IMG_ELF, 4096, 80000, "is an ELF file, not a BIOS PXE boot program" },
        { "efi x64 ok", PREFLIGHT_EFI, 0x8664, IMG_PE_X64, 4096, 850528, NULL },
        { "efi arm64 ok", PREFLIGHT_EFI, 0xaa64, IMG_PE_ARM64, 4096, 850528, NULL },
        { "efi any machine", PREFLIGHT_EFI, 0, IMG_PE_ARM64, 4096, 850528, NULL },
        { "efi wrong machine", PREFLIGHT_EFI, 0xaa64, IMG_PE_X64, 4096, 850528,
          "is an EFI binary for x64 (0x8664), not for ARM64 (0xaa64)" },
        { "efi empty", PREFLIGHT_EFI, 0x8664, IMG_ZERO, 0, 0, "is empty" },
        { "efi no mz", PREFLIGHT_EFI, 0x8664, IMG_ZERO, 4096, 850528, "is not an EFI binary (no MZ header)" },
        { "efi elf", PREFLIGHT_EFI, 0x8664, IMG_ELF, 4096, 850528, "is not an EFI binary (no MZ header)" },
        { "efi cut in mz header", PREFLIGHT_EFI, 0x8664, IMG_PE_X64, 40, 40, "is truncated inside its MZ header" },
        { "efi cut before pe header", PREFLIGHT_EFI, 0x8664, IMG_PE_X64, 0xc0, 0xc0,
          "is truncated: its PE header lies past the end" },
        { "efi pe header far away", PREFLIGHT_EFI, 0x8664, IMG_PE_FARHDR, 4096, 850528,
          "has its PE header past the bytes metald reads to recognise it" },
        { "efi pe offset past the end", PREFLIGHT_EFI, 0x8664, IMG_PE_FARHDR, 4096, 4096,
          "is truncated: its PE header lies past the end" },
        { "efi no pe signature", PREFLIGHT_EFI, 0x8664, IMG_PE_NOSIG, 4096, 850528,
          "is not an EFI binary (an MZ header without a PE header)" },
        { "efi no optional header", PREFLIGHT_EFI, 0x8664, IMG_PE_SMALLOPT, 4096, 850528,
          "is a PE binary without the optional header an EFI image has" },
        { "efi driver", PREFLIGHT_EFI, 0x8664, IMG_PE_DRIVER, 4096, 850528,
          "is a PE binary but not an EFI application (subsystem 11)" },
        { "kernel bzimage", PREFLIGHT_KERNEL, 0, IMG_BZIMAGE, 4096, 3648, NULL },
        { "kernel bzimage unpadded", PREFLIGHT_KERNEL, 0, IMG_BZIMAGE, 3633, 3633, NULL },
        { "kernel bzimage truncated", PREFLIGHT_KERNEL, 0, IMG_BZIMAGE, 3632, 3632,
          "is truncated: 3632 bytes of a bzImage that needs at least 3633" },
        { "kernel bzimage without efi stub", PREFLIGHT_KERNEL, 0, IMG_BZIMAGE_BARE, 4096, 3648, NULL },
        { "kernel cut in the boot header", PREFLIGHT_KERNEL, 0, IMG_BZIMAGE_BARE, 0x1f0, 0x1f0,
          "is not a Linux kernel (no x86 bzImage header, arm64 or RISC-V Image magic, or EFI stub)" },
        { "kernel arm64 image", PREFLIGHT_KERNEL, 0, IMG_ARM64_IMAGE, 4096, 30000000, NULL },
        { "kernel efi stub", PREFLIGHT_KERNEL, 0, IMG_PE_ARM64, 4096, 30000000, NULL },
        { "kernel efi driver", PREFLIGHT_KERNEL, 0, IMG_PE_DRIVER, 4096, 30000000,
          "is not a Linux kernel (no x86 bzImage header, arm64 or RISC-V Image magic, or EFI stub)" },
        { "kernel wrong magic", PREFLIGHT_KERNEL, 0, IMG_HDRS_ELSEWHERE, 4096, 30000000,
          "is not a Linux kernel (no x86 bzImage header, arm64 or RISC-V Image magic, or EFI stub)" },
        { "kernel elf vmlinux", PREFLIGHT_KERNEL, 0, IMG_ELF, 4096, 30000000,
          "is not a Linux kernel (no x86 bzImage header, arm64 or RISC-V Image magic, or EFI stub)" },
        { "kernel empty", PREFLIGHT_KERNEL, 0, IMG_ZERO, 0, 0, "is empty" },
        { "file empty", PREFLIGHT_FILE, 0, IMG_ZERO, 0, 0, "is empty" },
        { "file one byte", PREFLIGHT_FILE, 0, IMG_ZERO, 1, 1, NULL },
};

TEST(preflight_recognize_table)
{
        static uint8_t img[IMG_BYTES];

        for (size_t i = 0; i < ARRAY_SIZE(recognize_cases); i++) {
                const struct recognize_case *t = &recognize_cases[i];
                char why[256] = "";
                int r;

                make_img(t->img, img);
                r = preflight_recognize(t->kind, t->machine, img, t->len, t->size, why, sizeof(why));
                if (!t->why) {
                        if (r != 0)
                                fprintf(stderr, "  case %s: %s\n", t->name, why);
                        CHECK_EQ(r, 0);
                        continue;
                }
                if (r != -ENOEXEC || strcmp(why, t->why) != 0)
                        fprintf(stderr, "  case %s\n", t->name);
                CHECK_EQ(r, -ENOEXEC);
                CHECK_STREQ(why, t->why);
        }
}

static struct config *load(const char *yaml)
{
        struct config *c = NULL;
        char err[512];

        if (config_load_string(yaml, "metald.yaml", &c, err, sizeof(err)) < 0) {
                fprintf(stderr, "  config: %s\n", err);
                return NULL;
        }
        return c;
}

#define ENROLL_YAML "boot:\n  enroll: { kernel: vmlinuz, initrd: initrd.img, cmdline: \"console=ttyS0\" }\n"

struct template_case {
        const char *text;
        const char *why;
};

TEST(preflight_template_table)
{
        static char big[BOOT_MAX_TEMPLATE_BYTES + 2];
        const struct template_case cases[] = {
                { "#!ipxe\nkernel {{kernel_url}} {{cmdline}}\ninitrd {{initrd_url}}\nboot\n", NULL },
                { "#!ipxe\r\necho {{mac}} {{platform}} {{arch}} {{initrd_name}} {{script_url}} {{retry_delay}}\n", NULL },
                { "", "is empty" },
                { "kernel {{kernel_url}}\n", "the enrollment template lacks the iPXE script signature" },
                { "#!ipxeX\n", "the enrollment template lacks the iPXE script signature" },
                { "#!/bin/sh\nexit 0\n", "the enrollment template lacks the iPXE script signature" },
                { "#!ipxe\nkernel {{kernel}}\n", "the enrollment template has an unknown or unterminated placeholder" },
                { "#!ipxe\nkernel {{kernel_url\n", "the enrollment template has an unknown or unterminated placeholder" },
                { big, "is larger than 16384 bytes" },
        };
        struct config *c = load(ENROLL_YAML);
        char why[256];

        CHECK(c);
        memset(big, '#', sizeof(big) - 1);
        for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
                int r = preflight_template(c, cases[i].text, strlen(cases[i].text), why, sizeof(why));

                if (!cases[i].why) {
                        CHECK_EQ(r, 0);
                        continue;
                }
                CHECK_EQ(r, -ENOEXEC);
                CHECK_STREQ(why, cases[i].why);
        }
        /* a NUL inside: the HTTP service would refuse it as not text */
        CHECK_EQ(preflight_template(c, "#!ipxe\n\0boot\n", 13, why, sizeof(why)), -ENOEXEC);
        CHECK_STREQ(why, "is not text (it holds a NUL byte)");
        config_free(c);
}

static const struct preflight_need *find_need(const struct preflight_need *needs, size_t n, const char *dir,
                                              const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(needs[i].dir, dir) == 0 && strcmp(needs[i].name, name) == 0)
                        return &needs[i];
        return NULL;
}

static bool archs_are(const struct preflight_need *nd, const uint16_t *archs, size_t n)
{
        if (!nd || nd->n_archs != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (nd->archs[i] != archs[i])
                        return false;
        return true;
}

TEST(preflight_needs_follow_the_boot_path)
{
        static struct preflight_need needs[PREFLIGHT_MAX_NEEDS];
        const struct preflight_need *nd;
        struct config *c;
        size_t n;

        /* defaults: one root for both services; each file once, with every architecture that boots it */
        c = load("dhcp: { mode: proxy }\ntftp: { root: /srv/pxe }\n" ENROLL_YAML);
        CHECK(c);
        n = preflight_needs(c, needs, ARRAY_SIZE(needs));
        CHECK_EQ(n, 8);         /* undionly, i386, ipxe.efi, arm32, arm64; kernel, initrd, template */
        nd = find_need(needs, n, "/srv/pxe", "ipxe.efi");
        CHECK(archs_are(nd, (const uint16_t[]){ 7, 9, 16 }, 3));
        CHECK(nd->required);
        CHECK_EQ(nd->roots, PREFLIGHT_ROOT_TFTP | PREFLIGHT_ROOT_HTTP);
        CHECK_EQ(nd->kind, PREFLIGHT_EFI);
        CHECK_EQ(nd->pe_machine, 0x8664);
        nd = find_need(needs, n, "/srv/pxe", "ipxe-arm64.efi");
        CHECK(archs_are(nd, (const uint16_t[]){ 11, 19 }, 2));
        CHECK(!nd->required);
        CHECK_EQ(nd->pe_machine, 0xaa64);
        nd = find_need(needs, n, "/srv/pxe", "undionly.kpxe");
        CHECK(archs_are(nd, (const uint16_t[]){ 0 }, 1));
        CHECK(nd->required);
        CHECK_EQ(nd->kind, PREFLIGHT_PXE);
        CHECK_EQ(nd->roots, PREFLIGHT_ROOT_TFTP);
        nd = find_need(needs, n, "/srv/pxe", "vmlinuz");
        CHECK(nd && nd->kind == PREFLIGHT_KERNEL && nd->required && nd->roots == PREFLIGHT_ROOT_HTTP);
        CHECK_STREQ(nd->role, "kernel");
        nd = find_need(needs, n, "/srv/pxe", "enroll.ipxe.tmpl");
        CHECK(nd && nd->kind == PREFLIGHT_TEMPLATE);
        config_free(c);

        /* snponly.efi for x64 PXE; HTTP boot keeps ipxe.efi, from its own root, and is not required */
        c = load("dhcp: { mode: proxy }\ntftp: { root: /srv/tftp }\nhttp: { root: /srv/http }\n"
                 "boot: { efi_x64: snponly.efi }\n");
        CHECK(c);
        n = preflight_needs(c, needs, ARRAY_SIZE(needs));
        CHECK(archs_are(find_need(needs, n, "/srv/tftp", "snponly.efi"), (const uint16_t[]){ 7, 9 }, 2));
        nd = find_need(needs, n, "/srv/http", "ipxe.efi");
        CHECK(archs_are(nd, (const uint16_t[]){ 16 }, 1));
        CHECK(!nd->required);
        CHECK(!find_need(needs, n, "/srv/tftp", "ipxe.efi"));
        CHECK(!find_need(needs, n, "/srv/http", "enroll.ipxe.tmpl"));     /* no enrollment kernel: not read */
        config_free(c);

        /* without metald's DHCP nobody is handed a boot file */
        c = load("dhcp: { enabled: false }\n" ENROLL_YAML);
        CHECK(c);
        CHECK_EQ(preflight_needs(c, needs, ARRAY_SIZE(needs)), 3);
        config_free(c);

        /* TFTP off: only the HTTP boot files; HTTP off: no enrollment files either */
        c = load("dhcp: { mode: proxy }\ntftp: { enabled: false }\nhttp: { root: /srv/http }\n");
        CHECK(c);
        n = preflight_needs(c, needs, ARRAY_SIZE(needs));
        CHECK_EQ(n, 4);
        CHECK(archs_are(find_need(needs, n, "/srv/http", "ipxe.efi"), (const uint16_t[]){ 16 }, 1));
        config_free(c);
        c = load("dhcp: { mode: proxy }\nhttp: { enabled: false }\ntftp: { root: /srv/tftp }\n" ENROLL_YAML);
        CHECK(c);
        n = preflight_needs(c, needs, ARRAY_SIZE(needs));
        CHECK_EQ(n, 5);
        CHECK(!find_need(needs, n, "/srv/tftp", "vmlinuz"));
        config_free(c);

        /* names as the TFTP server maps them; an unknown architecture is any non-empty file */
        c = load("dhcp: { mode: proxy }\ntftp: { root: /srv/tftp }\n"
                 "boot: { files: { \"0\": /boot/pxelinux.0, \"12\": \"../up.elf\", \"4000\": x.bin } }\n");
        CHECK(c);
        n = preflight_needs(c, needs, ARRAY_SIZE(needs));
        nd = find_need(needs, n, "/srv/tftp", "boot/pxelinux.0");
        CHECK(nd && nd->name_error == 0 && nd->kind == PREFLIGHT_PXE);
        nd = find_need(needs, n, "/srv/tftp", "../up.elf");
        CHECK(nd && nd->name_error == -EACCES && nd->kind == PREFLIGHT_FILE && !nd->required);
        nd = find_need(needs, n, "/srv/tftp", "x.bin");
        CHECK(archs_are(nd, (const uint16_t[]){ 4000 }, 1));
        config_free(c);

        /* the built initrd is metald's own: not looked for below the root */
        c = load("dhcp: { enabled: false }\n"
                 "boot:\n  enroll: { kernel: vmlinuz, build: { modules: /lib/modules/6.1.0-1-amd64 } }\n");
        CHECK(c);
        n = preflight_needs(c, needs, ARRAY_SIZE(needs));
        CHECK_EQ(n, 2);
        CHECK(!find_need(needs, n, "pxe", "initrd.img"));
        config_free(c);
}

/* A root with a file of every kind the checks meet, hostile ones included. */
static int write_file(const char *dir, const char *name, const void *p, size_t n, mode_t mode)
{
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", dir, name);
        fd = open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        if (n && write(fd, p, n) != (ssize_t)n) {
                close(fd);
                return -EIO;
        }
        close(fd);
        return 0;
}

static const char template_ok[] = "#!ipxe\nkernel {{kernel_url}} {{cmdline}}\ninitrd {{initrd_url}}\nboot\n";

static int make_good_root(const char *root)
{
        static uint8_t img[IMG_BYTES];
        int r;

        if (mkdir(root, 0755) < 0)
                return -errno;
        memset(img, 0x90, sizeof(img));
        if ((r = write_file(root, "undionly.kpxe", img, sizeof(img), 0644)) < 0)
                return r;
        make_pe(img, 0x8664, 10);
        if ((r = write_file(root, "ipxe.efi", img, sizeof(img), 0644)) < 0)
                return r;
        make_pe(img, 0x014c, 10);
        if ((r = write_file(root, "ipxe-i386.efi", img, sizeof(img), 0644)) < 0)
                return r;
        make_pe(img, 0x01c2, 10);
        if ((r = write_file(root, "ipxe-arm32.efi", img, sizeof(img), 0644)) < 0)
                return r;
        memset(img, 0, sizeof(img));
        set_bzimage(img, 3, 100);
        if ((r = write_file(root, "vmlinuz", img, 3648, 0644)) < 0)
                return r;
        if ((r = write_file(root, "initrd.img", "070701", 6, 0644)) < 0)
                return r;
        return write_file(root, "enroll.ipxe.tmpl", template_ok, strlen(template_ok), 0644);
}

static struct config *load_root(const char *root)
{
        char yaml[1024];

        snprintf(yaml, sizeof(yaml), "dhcp: { mode: proxy }\ntftp: { root: %s }\n" ENROLL_YAML, root);
        return load(yaml);
}

static const struct preflight_finding *finding(const struct preflight_report *rep, const char *file)
{
        for (size_t i = 0; i < rep->n; i++)
                if (strcmp(rep->findings[i].file, file) == 0)
                        return &rep->findings[i];
        return NULL;
}

TEST(preflight_run_good_root_warns_of_arm64)
{
        struct preflight_report rep = { 0 };
        const struct preflight_finding *f;
        char root[256], file[300];
        struct config *c;

        snprintf(root, sizeof(root), "%s/root", test_tmpdir());
        CHECK_EQ(make_good_root(root), 0);
        c = load_root(root);
        CHECK(c);
        CHECK_EQ(preflight_run(c, 0, &rep), 0);
        CHECK_EQ(rep.n, 1);
        CHECK_EQ(rep.n_errors, 0);
        CHECK_EQ(rep.n_warnings, 1);
        snprintf(file, sizeof(file), "%s/ipxe-arm64.efi", root);
        f = finding(&rep, file);
        CHECK(f);
        CHECK_EQ(f->severity, PREFLIGHT_WARNING);
        CHECK_STREQ(f->what, "missing from tftp.root and http.root; ARM64 UEFI (arch 11), ARM64 UEFI HTTP (arch 19) "
                             "cannot boot");
        preflight_report_free(&rep);
        config_free(c);
}

struct hostile_case {
        const char *file;               /* replaced in the good root */
        const char *make;               /* how */
        enum preflight_severity severity;
        const char *what;
};

static int make_hostile(const char *root, const char *outside, const struct hostile_case *h)
{
        static uint8_t img[IMG_BYTES];
        char path[512];

        snprintf(path, sizeof(path), "%s/%s", root, h->file);
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;
        if (strcmp(h->make, "missing") == 0)
                return 0;
        if (strcmp(h->make, "empty") == 0)
                return write_file(root, h->file, "", 0, 0644);
        if (strcmp(h->make, "directory") == 0)
                return mkdir(path, 0755) < 0 ? -errno : 0;
        if (strcmp(h->make, "escape") == 0)
                return symlink(outside, path) < 0 ? -errno : 0;
        if (strcmp(h->make, "inside link") == 0)
                return symlink("ipxe.efi", path) < 0 ? -errno : 0;
        if (strcmp(h->make, "fifo") == 0)
                return mkfifo(path, 0644) < 0 ? -errno : 0;
        if (strcmp(h->make, "truncated") == 0) {
                memset(img, 0, sizeof(img));
                set_bzimage(img, 3, 100);
                return write_file(root, h->file, img, 1000, 0644);
        }
        if (strcmp(h->make, "x64") == 0) {
                make_pe(img, 0x8664, 10);
                return write_file(root, h->file, img, sizeof(img), 0644);
        }
        if (strcmp(h->make, "script") == 0)
                return write_file(root, h->file, "#!/bin/sh\n", 10, 0644);
        if (strcmp(h->make, "unreadable") == 0)
                return write_file(root, h->file, "x", 1, 0000);
        return -EINVAL;
}

static const struct hostile_case hostile_cases[] = {
        { "undionly.kpxe", "missing", PREFLIGHT_ERROR, "missing from tftp.root; x86 BIOS (arch 0) cannot boot" },
        { "ipxe.efi", "missing", PREFLIGHT_ERROR,
          "missing from tftp.root and http.root; x64 UEFI (arch 7, 9), x64 UEFI HTTP (arch 16) cannot boot" },
        { "undionly.kpxe", "empty", PREFLIGHT_ERROR, "is empty; x86 BIOS (arch 0) cannot boot" },
        { "ipxe.efi", "directory", PREFLIGHT_ERROR,
          "is a directory, not a file; x64 UEFI (arch 7, 9), x64 UEFI HTTP (arch 16) cannot boot" },
        { "ipxe-arm64.efi", "escape", PREFLIGHT_ERROR,
          "is a symbolic link, which the servers do not follow (copy the file instead); "
          "ARM64 UEFI (arch 11), ARM64 UEFI HTTP (arch 19) cannot boot" },
        { "ipxe-arm64.efi", "inside link", PREFLIGHT_ERROR,
          "is a symbolic link, which the servers do not follow (copy the file instead); "
          "ARM64 UEFI (arch 11), ARM64 UEFI HTTP (arch 19) cannot boot" },
        { "ipxe-arm64.efi", "x64", PREFLIGHT_ERROR,
          "is an EFI binary for x64 (0x8664), not for ARM64 (0xaa64); "
          "ARM64 UEFI (arch 11), ARM64 UEFI HTTP (arch 19) cannot boot" },
        { "ipxe-i386.efi", "fifo", PREFLIGHT_ERROR,
          "is not a regular file metald may read (permission denied, or a device, fifo or socket); "
          "x86 UEFI (arch 6), x86 UEFI HTTP (arch 15) cannot boot" },
        { "vmlinuz", "missing", PREFLIGHT_ERROR, "missing from http.root; no machine can enroll" },
        { "vmlinuz", "truncated", PREFLIGHT_ERROR,
          "is truncated: 1000 bytes of a bzImage that needs at least 3633; no machine can enroll" },
        { "vmlinuz", "script", PREFLIGHT_ERROR,
          "is not a Linux kernel (no x86 bzImage header, arm64 or RISC-V Image magic, or EFI stub); "
          "no machine can enroll" },
        { "initrd.img", "empty", PREFLIGHT_ERROR, "is empty; no machine can enroll" },
        { "enroll.ipxe.tmpl", "missing", PREFLIGHT_ERROR, "missing from http.root; no machine can enroll" },
        { "enroll.ipxe.tmpl", "script", PREFLIGHT_ERROR,
          "the enrollment template lacks the iPXE script signature; no machine can enroll" },
        { "enroll.ipxe.tmpl", "directory", PREFLIGHT_ERROR, "is a directory, not a file; no machine can enroll" },
};

/* The good root with one file replaced as h says, and arm64 present so that nothing else is reported. */
static int make_case_root(const char *root, const char *outside, const struct hostile_case *h)
{
        static uint8_t img[IMG_BYTES];
        int r;

        make_pe(img, 0xaa64, 10);
        if ((r = make_good_root(root)) < 0 || (r = write_file(root, "ipxe-arm64.efi", img, sizeof(img), 0644)) < 0)
                return r;
        return make_hostile(root, outside, h);
}

/* Exactly one finding, the one h expects: 0, or -EBADMSG (with what was found on stderr). */
static int expect_one(const char *root, const struct hostile_case *h)
{
        struct preflight_report rep = { 0 };
        const struct preflight_finding *f;
        struct config *c = load_root(root);
        char file[300];
        int r = -EBADMSG;

        if (!c || preflight_run(c, 0, &rep) < 0) {
                config_free(c);
                return -ENOMEM;
        }
        snprintf(file, sizeof(file), "%s/%s", root, h->file);
        f = finding(&rep, file);
        if (f && rep.n == 1 && f->severity == h->severity && strcmp(f->what, h->what) == 0 &&
            rep.n_errors == (h->severity == PREFLIGHT_ERROR))
                r = 0;
        for (size_t i = 0; r < 0 && i < rep.n; i++)
                fprintf(stderr, "  %s %s: found %s: %s: %s\n", h->file, h->make,
                        preflight_severity_name(rep.findings[i].severity), rep.findings[i].file,
                        rep.findings[i].what);
        preflight_report_free(&rep);
        config_free(c);
        return r;
}

TEST(preflight_run_hostile_files)
{
        char root[256], outside[256];

        snprintf(outside, sizeof(outside), "%s/secret", test_tmpdir());
        CHECK_EQ(write_file(test_tmpdir(), "secret", "MZ", 2, 0600), 0);
        for (size_t i = 0; i < ARRAY_SIZE(hostile_cases); i++) {
                snprintf(root, sizeof(root), "%s/root%zu", test_tmpdir(), i);
                CHECK_EQ(make_case_root(root, outside, &hostile_cases[i]), 0);
                CHECK_EQ(expect_one(root, &hostile_cases[i]), 0);
        }
}

/* Unreadable for the user metald runs as; root reads anything, so as root the check runs as nobody. */
TEST(preflight_run_unreadable_file)
{
        static const struct hostile_case h = {
                "vmlinuz", "unreadable", PREFLIGHT_ERROR,
                "is not a regular file metald may read (permission denied, or a device, fifo or socket); "
                "no machine can enroll",
        };
        char root[256];
        int status = 0;
        pid_t pid;

        snprintf(root, sizeof(root), "%s/root", test_tmpdir());
        CHECK_EQ(make_case_root(root, "/", &h), 0);
        if (geteuid() != 0) {
                CHECK_EQ(expect_one(root, &h), 0);
                return;
        }
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                if (chmod(test_tmpdir(), 0755) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(2);
                _exit(expect_one(root, &h) == 0 ? 0 : 1);
        }
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        CHECK(WIFEXITED(status));
        CHECK_EQ(WEXITSTATUS(status), 0);
}

TEST(preflight_run_missing_root)
{
        struct preflight_report rep = { 0 };
        char root[256], yaml[1024];
        struct config *c;

        /* one root for both services: one line, naming both settings, and nothing below it */
        snprintf(root, sizeof(root), "%s/nowhere", test_tmpdir());
        c = load_root(root);
        CHECK(c);
        CHECK_EQ(preflight_run(c, 0, &rep), 0);
        CHECK_EQ(rep.n, 1);
        CHECK_EQ(rep.n_errors, 1);
        CHECK_STREQ(rep.findings[0].file, root);
        CHECK_STREQ(rep.findings[0].what, "cannot be opened as tftp.root and http.root: No such file or directory");
        preflight_report_free(&rep);
        config_free(c);

        /* a file where the HTTP root should be; the TFTP root is fine */
        CHECK_EQ(make_good_root((snprintf(root, sizeof(root), "%s/tftp", test_tmpdir()), root)), 0);
        CHECK_EQ(write_file(test_tmpdir(), "http", "x", 1, 0644), 0);
        snprintf(yaml, sizeof(yaml), "dhcp: { mode: proxy }\ntftp: { root: %s/tftp }\nhttp: { root: %s/http }\n",
                 test_tmpdir(), test_tmpdir());
        c = load(yaml);
        CHECK(c);
        CHECK_EQ(preflight_run(c, 0, &rep), 0);
        snprintf(root, sizeof(root), "%s/http", test_tmpdir());
        CHECK(finding(&rep, root));
        CHECK_STREQ(finding(&rep, root)->what, "cannot be opened as http.root: Not a directory");
        CHECK_EQ(rep.n_errors, 1);
        CHECK_EQ(rep.n_warnings, 1);    /* arm64 from the TFTP root */
        preflight_report_free(&rep);
        config_free(c);
}

TEST(preflight_run_name_the_tftp_server_refuses)
{
        struct preflight_report rep = { 0 };
        char root[256], yaml[1024], file[300];
        struct config *c;
        static uint8_t img[IMG_BYTES];

        snprintf(root, sizeof(root), "%s/root", test_tmpdir());
        CHECK_EQ(make_good_root(root), 0);
        make_pe(img, 0xaa64, 10);
        CHECK_EQ(write_file(root, "ipxe-arm64.efi", img, sizeof(img), 0644), 0);
        snprintf(yaml, sizeof(yaml), "dhcp: { mode: proxy }\ntftp: { root: %s }\n"
                 "boot: { files: { \"11\": ../ipxe-arm64.efi } }\n", root);
        c = load(yaml);
        CHECK(c);
        CHECK_EQ(preflight_run(c, 0, &rep), 0);
        CHECK_EQ(rep.n, 1);
        snprintf(file, sizeof(file), "%s/../ipxe-arm64.efi", root);
        CHECK_STREQ(rep.findings[0].file, file);
        CHECK_EQ(rep.findings[0].severity, PREFLIGHT_ERROR);
        CHECK_STREQ(rep.findings[0].what, "is not a name the TFTP server serves (it climbs out of the root with ..); "
                                          "ARM64 UEFI (arch 11) cannot boot");
        preflight_report_free(&rep);
        config_free(c);
}

TEST(preflight_warns_of_a_profile_image_not_imported)
{
        struct preflight_report rep = { 0 };
        const struct preflight_finding *f;
        char root[256], yaml[2048];
        struct config *c;

        snprintf(root, sizeof(root), "%s/root", test_tmpdir());
        CHECK_EQ(make_good_root(root), 0);
        snprintf(yaml, sizeof(yaml),
                 "state_dir: %s/state\ndhcp: { mode: proxy }\ntftp: { root: %s }\n" ENROLL_YAML
                 "profiles:\n  - name: workers\n    image: debian-worker\n  - name: pinned\n    match: { vendor: Dell }\n"
                 "    image: debian-worker\n    image_version: 3\n",
                 test_tmpdir(), root);
        c = load(yaml);
        CHECK(c);
        CHECK_EQ(preflight_run(c, 0, &rep), 0);
        CHECK_EQ(rep.n_errors, 0);
        CHECK_EQ(rep.n_warnings, 3);    /* arm64, and the two profiles */
        f = finding(&rep, "profiles.workers.image");
        CHECK(f);
        CHECK_EQ(f->severity, PREFLIGHT_WARNING);
        CHECK_STREQ(f->what, "profile workers names image debian-worker, which is not imported (metald image import); "
                             "its machines wait in approved until it is");
        f = finding(&rep, "profiles.pinned.image");
        CHECK(f);
        CHECK(strstr(f->what, "image debian-worker:3, which is not imported") != NULL);
        preflight_report_free(&rep);
        config_free(c);
}

/* A profile's netboot kernel and initrd are looked at as the enrollment kernel and initrd are. */
TEST(preflight_checks_a_profile_netboot)
{
        static uint8_t img[IMG_BYTES];
        struct preflight_report rep = { 0 };
        const struct preflight_finding *f;
        char root[256], yaml[2048], file[300];
        struct config *c;

        snprintf(root, sizeof(root), "%s/root", test_tmpdir());
        CHECK_EQ(make_good_root(root), 0);
        snprintf(yaml, sizeof(yaml),
                 "dhcp: { mode: proxy }\ntftp: { root: %s }\n" ENROLL_YAML
                 "profiles:\n  - name: rescue\n    netboot: { kernel: rescue.krn, initrd: rescue.img }\n", root);
        c = load(yaml);
        CHECK(c);
        /* both missing */
        CHECK_EQ(preflight_run(c, 0, &rep), 0);
        CHECK_EQ(rep.n_errors, 2);
        snprintf(file, sizeof(file), "%s/rescue.krn", root);
        CHECK((f = finding(&rep, file)) != NULL);
        CHECK_EQ(f->severity, PREFLIGHT_ERROR);
        CHECK_STREQ(f->what, "missing from http.root; the machines of profile rescue cannot boot its netboot");
        snprintf(file, sizeof(file), "%s/rescue.img", root);
        CHECK((f = finding(&rep, file)) != NULL);
        preflight_report_free(&rep);
        /* a kernel that is none, an empty initrd */
        make_img(IMG_ELF, img);
        CHECK_EQ(write_file(root, "rescue.krn", img, sizeof(img), 0644), 0);
        CHECK_EQ(write_file(root, "rescue.img", "", 0, 0644), 0);
        CHECK_EQ(preflight_run(c, 0, &rep), 0);
        CHECK_EQ(rep.n_errors, 2);
        snprintf(file, sizeof(file), "%s/rescue.krn", root);
        CHECK((f = finding(&rep, file)) != NULL);
        CHECK(strstr(f->what, "is not a Linux kernel") != NULL);
        CHECK(strstr(f->what, "; the machines of profile rescue cannot boot its netboot") != NULL);
        snprintf(file, sizeof(file), "%s/rescue.img", root);
        CHECK((f = finding(&rep, file)) != NULL);
        CHECK_STREQ(f->what, "is empty; the machines of profile rescue cannot boot its netboot");
        preflight_report_free(&rep);
        /* good ones: only the arm64 warning of the good root is left */
        make_img(IMG_BZIMAGE, img);
        CHECK_EQ(write_file(root, "rescue.krn", img, 3648, 0644), 0);
        CHECK_EQ(write_file(root, "rescue.img", "070701", 6, 0644), 0);
        CHECK_EQ(preflight_run(c, 0, &rep), 0);
        CHECK_EQ(rep.n_errors, 0);
        CHECK_EQ(rep.n_warnings, 1);
        preflight_report_free(&rep);
        config_free(c);
        /* without HTTP nothing serves the netboot, and nothing is looked for */
        snprintf(yaml, sizeof(yaml),
                 "dhcp: { enabled: false }\nhttp: { enabled: false }\n"
                 "profiles:\n  - name: rescue\n    netboot: { kernel: gone.krn }\n");
        c = load(yaml);
        CHECK(c);
        {
                static struct preflight_need needs[PREFLIGHT_MAX_NEEDS];

                CHECK_EQ(preflight_needs(c, needs, ARRAY_SIZE(needs)), 0);
        }
        config_free(c);
}
