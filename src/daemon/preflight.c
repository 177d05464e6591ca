/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "metald/boot_script.h"
#include "metald/buf.h"
#include "metald/cursor.h"
#include "metald/fs.h"
#include "metald/image.h"
#include "metald/initramfs.h"
#include "metald/log.h"
#include "metald/preflight.h"
#include "metald/tftp.h"
#include "metald/util.h"

_Static_assert(BOOT_MAX_ARTIFACT_PATH <= DHCP_MAX_BOOTFILE, "enrollment paths fit preflight_need.name");

#define PE_MACHINE_I386    0x014c
#define PE_MACHINE_ARM     0x01c2       /* ARM Thumb-2, what 32-bit ARM UEFI runs */
#define PE_MACHINE_X64     0x8664
#define PE_MACHINE_ARM64   0xaa64
#define PE_MACHINE_RISCV32 0x5032
#define PE_MACHINE_RISCV64 0x5064
#define PE_SUBSYSTEM_EFI_APPLICATION 10

/* RFC 4578 and the IANA registry; 9 is EBC there, but x64 firmware sends it and the defaults give it ipxe.efi. */
static const struct preflight_arch arch_table[] = {
        { 0, "x86 BIOS", false, true, PREFLIGHT_PXE, 0 },
        { 6, "x86 UEFI", false, false, PREFLIGHT_EFI, PE_MACHINE_I386 },
        { 7, "x64 UEFI", false, true, PREFLIGHT_EFI, PE_MACHINE_X64 },
        { 9, "x64 UEFI", false, true, PREFLIGHT_EFI, PE_MACHINE_X64 },
        { 10, "ARM32 UEFI", false, false, PREFLIGHT_EFI, PE_MACHINE_ARM },
        { 11, "ARM64 UEFI", false, false, PREFLIGHT_EFI, PE_MACHINE_ARM64 },
        { 15, "x86 UEFI HTTP", true, false, PREFLIGHT_EFI, PE_MACHINE_I386 },
        { 16, "x64 UEFI HTTP", true, false, PREFLIGHT_EFI, PE_MACHINE_X64 },
        { 18, "ARM32 UEFI HTTP", true, false, PREFLIGHT_EFI, PE_MACHINE_ARM },
        { 19, "ARM64 UEFI HTTP", true, false, PREFLIGHT_EFI, PE_MACHINE_ARM64 },
        { 25, "RISC-V 32 UEFI", false, false, PREFLIGHT_EFI, PE_MACHINE_RISCV32 },
        { 26, "RISC-V 32 UEFI HTTP", true, false, PREFLIGHT_EFI, PE_MACHINE_RISCV32 },
        { 27, "RISC-V 64 UEFI", false, false, PREFLIGHT_EFI, PE_MACHINE_RISCV64 },
        { 28, "RISC-V 64 UEFI HTTP", true, false, PREFLIGHT_EFI, PE_MACHINE_RISCV64 },
};

static const struct {
        uint16_t machine;
        const char *name;
} pe_machines[] = {
        { PE_MACHINE_I386, "x86" }, { PE_MACHINE_ARM, "ARM32" }, { PE_MACHINE_X64, "x64" },
        { PE_MACHINE_ARM64, "ARM64" }, { PE_MACHINE_RISCV32, "RISC-V 32" }, { PE_MACHINE_RISCV64, "RISC-V 64" },
        { 0x0200, "Itanium" }, { 0x0ebc, "EBC" },
};

const struct preflight_arch *preflight_arch_find(uint16_t arch)
{
        for (size_t i = 0; i < ARRAY_SIZE(arch_table); i++)
                if (arch_table[i].arch == arch)
                        return &arch_table[i];
        return NULL;
}

const char *preflight_severity_name(enum preflight_severity s)
{
        return s == PREFLIGHT_ERROR ? "error" : "warning";
}

/* --- which files --- */

static struct preflight_need *need_add(struct preflight_need *needs, size_t *n, size_t cap, const char *dir,
                                       const char *name, int name_error, enum preflight_kind kind, uint16_t machine)
{
        struct preflight_need *nd;

        for (size_t i = 0; i < *n; i++) {
                nd = &needs[i];
                if (!nd->role && strcmp(nd->dir, dir) == 0 && strcmp(nd->name, name) == 0 &&
                    nd->name_error == name_error && nd->kind == kind && nd->pe_machine == machine)
                        return nd;
        }
        if (*n >= cap)
                return NULL;
        nd = &needs[(*n)++];
        *nd = (struct preflight_need){ .dir = dir, .name_error = name_error, .kind = kind, .pe_machine = machine };
        str_copy(nd->name, sizeof(nd->name), name);
        return nd;
}

/* A boot file of an architecture metald's DHCP hands out, with the name its server will open. */
static void need_boot_file(const struct config *cfg, const struct boot_file *f, struct preflight_need *needs,
                           size_t *n, size_t cap)
{
        const struct preflight_arch *a = preflight_arch_find(f->arch);
        bool http = a && a->http;
        char name[DHCP_MAX_BOOTFILE + 1];
        struct preflight_need *nd;
        int name_error = 0;

        if (http ? !cfg->http.enabled : !cfg->tftp.enabled)
                return;         /* served by someone else, if at all */
        if (http)
                str_copy(name, sizeof(name), f->file);
        else if ((name_error = tftp_map_filename(f->file, strlen(f->file), name, sizeof(name))) < 0)
                str_copy(name, sizeof(name), f->file);
        nd = need_add(needs, n, cap, http ? cfg->http.root : cfg->tftp.root, name, name_error,
                      a ? a->kind : PREFLIGHT_FILE, a ? a->pe_machine : 0);
        if (!nd)
                return;
        nd->roots |= http ? PREFLIGHT_ROOT_HTTP : PREFLIGHT_ROOT_TFTP;
        nd->required |= a && a->required;
        if (nd->n_archs < ARRAY_SIZE(nd->archs))
                nd->archs[nd->n_archs++] = f->arch;
}

static void need_enroll(const struct config *cfg, const char *role, const char *name, enum preflight_kind kind,
                        struct preflight_need *needs, size_t *n, size_t cap)
{
        struct preflight_need *nd;

        if (*n >= cap)
                return;
        nd = &needs[(*n)++];
        *nd = (struct preflight_need){ .dir = cfg->http.root, .roots = PREFLIGHT_ROOT_HTTP, .kind = kind,
                                       .required = true, .role = role };
        str_copy(nd->name, sizeof(nd->name), name);
}

/* A profile's netboot kernel and initrd: checked as the enrollment kernel and initrd are. */
static void need_netboot(const struct config *cfg, const struct profile *p, struct preflight_need *needs,
                         size_t *n, size_t cap)
{
        for (int i = 0; i < 2; i++) {
                const char *name = i ? p->netboot.initrd : p->netboot.kernel;

                if (!*name || *n >= cap)
                        continue;
                need_enroll(cfg, i ? "initrd" : "kernel", name, i ? PREFLIGHT_FILE : PREFLIGHT_KERNEL, needs, n, cap);
                needs[*n - 1].profile = p->name;
        }
}

size_t preflight_needs(const struct config *cfg, struct preflight_need *ret, size_t cap)
{
        const struct boot_enroll *e = &cfg->boot.enroll;
        size_t n = 0;

        if (cfg->dhcp.enabled)
                for (size_t i = 0; i < cfg->boot.n_files; i++)
                        need_boot_file(cfg, &cfg->boot.files[i], ret, &n, cap);
        if (!cfg->http.enabled)
                return n;
        /* without an enrollment kernel no enrollment boot is offered: its files are not read */
        if (*e->kernel) {
                need_enroll(cfg, "kernel", e->kernel, PREFLIGHT_KERNEL, ret, &n, cap);
                if (!e->build.enabled && *e->initrd)
                        need_enroll(cfg, "initrd", e->initrd, PREFLIGHT_FILE, ret, &n, cap);
                need_enroll(cfg, "template", e->tmpl, PREFLIGHT_TEMPLATE, ret, &n, cap);
        }
        for (size_t i = 0; i < cfg->n_profiles; i++)
                need_netboot(cfg, &cfg->profiles[i], ret, &n, cap);
        return n;
}

/* --- what they must look like --- */

static int why_set(char *why, size_t cap, const char *fmt, ...) _printf_(3, 4);
static int why_set(char *why, size_t cap, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(why, cap, fmt, ap);
        va_end(ap);
        return -ENOEXEC;
}

static int le16_at(const uint8_t *p, size_t len, size_t off, uint16_t *ret)
{
        struct cursor c = cur_init(p, len);
        const uint8_t *b;

        if (cur_skip(&c, off) < 0 || cur_bytes(&c, 2, &b) < 0)
                return -EBADMSG;
        *ret = (uint16_t)(b[0] | b[1] << 8);
        return 0;
}

static int le32_at(const uint8_t *p, size_t len, size_t off, uint32_t *ret)
{
        struct cursor c = cur_init(p, len);
        const uint8_t *b;

        if (cur_skip(&c, off) < 0 || cur_bytes(&c, 4, &b) < 0)
                return -EBADMSG;
        *ret = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        return 0;
}

static bool magic_at(const uint8_t *p, size_t len, size_t off, const char *magic, size_t n)
{
        return off <= len && len - off >= n && memcmp(p + off, magic, n) == 0;
}

/* The PE image behind an MZ header: NULL with its machine and subsystem, else why not. */
static const char *pe_header(const uint8_t *head, size_t len, uint64_t size, uint16_t *ret_machine,
                             uint16_t *ret_subsystem)
{
        uint32_t lfanew;
        uint16_t opt_size;

        if (!magic_at(head, len, 0, "MZ", 2))
                return "is not an EFI binary (no MZ header)";
        if (le32_at(head, len, 0x3c, &lfanew) < 0)
                return "is truncated inside its MZ header";
        /* the signature, the COFF header (machine at 4, optional header size at 20), Subsystem at 68 of the next */
        if ((uint64_t)lfanew + 24 + 70 > len)
                return len < size ? "has its PE header past the bytes metald reads to recognise it"
                                  : "is truncated: its PE header lies past the end";
        if (!magic_at(head, len, lfanew, "PE\0\0", 4))
                return "is not an EFI binary (an MZ header without a PE header)";
        if (le16_at(head, len, lfanew + 4, ret_machine) < 0 || le16_at(head, len, lfanew + 20, &opt_size) < 0 ||
            le16_at(head, len, lfanew + 24 + 68, ret_subsystem) < 0)
                return "is truncated inside its PE header";
        if (opt_size < 70)
                return "is a PE binary without the optional header an EFI image has";
        return NULL;
}

static const char *pe_machine_name(uint16_t machine, char *buf, size_t cap)
{
        for (size_t i = 0; i < ARRAY_SIZE(pe_machines); i++)
                if (pe_machines[i].machine == machine)
                        return pe_machines[i].name;
        snprintf(buf, cap, "machine 0x%04x", machine);
        return buf;
}

static int recognize_efi(uint16_t want, const uint8_t *head, size_t len, uint64_t size, char *why, size_t why_len)
{
        char a[32], b[32];
        uint16_t machine, subsystem;
        const char *bad = pe_header(head, len, size, &machine, &subsystem);

        if (bad)
                return why_set(why, why_len, "%s", bad);
        if (want && machine != want)
                return why_set(why, why_len, "is an EFI binary for %s (0x%04x), not for %s (0x%04x)",
                               pe_machine_name(machine, a, sizeof(a)), machine, pe_machine_name(want, b, sizeof(b)),
                               want);
        if (subsystem != PE_SUBSYSTEM_EFI_APPLICATION)
                return why_set(why, why_len, "is a PE binary but not an EFI application (subsystem %u)", subsystem);
        return 0;
}

static int recognize_pxe(const uint8_t *head, size_t len, uint64_t size, char *why, size_t why_len)
{
        uint16_t machine, subsystem;

        if (size < PREFLIGHT_MIN_PXE_BYTES)
                return why_set(why, why_len, "is %llu bytes, too short for a PXE boot program (truncated?)",
                               (unsigned long long)size);
        if (size > PREFLIGHT_MAX_PXE_BYTES)
                return why_set(why, why_len, "is %llu bytes, more than a PXE ROM can load below 640 KiB (%u)",
                               (unsigned long long)size, (unsigned)PREFLIGHT_MAX_PXE_BYTES);
        if (!pe_header(head, len, size, &machine, &subsystem))
                return why_set(why, why_len, "is an EFI binary, not a BIOS PXE boot program");
        if (magic_at(head, len, 0, "\177ELF", 4))
                return why_set(why, why_len, "is an ELF file, not a BIOS PXE boot program");
        return 0;
}

/* x86: the boot protocol's "HdrS", and the bytes its header announces (syssize is rounded up to 16). */
static int recognize_bzimage(const uint8_t *head, size_t len, uint64_t size, char *why, size_t why_len)
{
        uint32_t syssize;
        uint64_t need;
        uint8_t setup_sects;

        if (le32_at(head, len, 0x1f4, &syssize) < 0)
                return why_set(why, why_len, "is truncated inside its bzImage header");
        setup_sects = head[0x1f1] ? head[0x1f1] : 4;    /* 0 means 4, as old kernels wrote it */
        need = ((uint64_t)setup_sects + 1) * 512 + (syssize ? (uint64_t)syssize * 16 - 15 : 0);
        if (size < need)
                return why_set(why, why_len, "is truncated: %llu bytes of a bzImage that needs at least %llu",
                               (unsigned long long)size, (unsigned long long)need);
        return 0;
}

static int recognize_kernel(const uint8_t *head, size_t len, uint64_t size, char *why, size_t why_len)
{
        uint16_t machine, subsystem;

        if (magic_at(head, len, 0x202, "HdrS", 4))
                return recognize_bzimage(head, len, size, why, why_len);
        /* arm64 and RISC-V Image headers carry their magic at 0x38 */
        if (magic_at(head, len, 0x38, "ARM\x64", 4) || magic_at(head, len, 0x38, "RSC\x05", 4))
                return 0;
        if (!pe_header(head, len, size, &machine, &subsystem) && subsystem == PE_SUBSYSTEM_EFI_APPLICATION)
                return 0;
        return why_set(why, why_len, "is not a Linux kernel (no x86 bzImage header, arm64 or RISC-V Image magic, "
                                     "or EFI stub)");
}

int preflight_recognize(enum preflight_kind kind, uint16_t pe_machine, const uint8_t *head, size_t len,
                        uint64_t size, char *why, size_t why_len)
{
        len = (size_t)MIN((uint64_t)len, size);
        if (size == 0)
                return why_set(why, why_len, "is empty");
        switch (kind) {
        case PREFLIGHT_PXE:
                return recognize_pxe(head, len, size, why, why_len);
        case PREFLIGHT_EFI:
                return recognize_efi(pe_machine, head, len, size, why, why_len);
        case PREFLIGHT_KERNEL:
                return recognize_kernel(head, len, size, why, why_len);
        case PREFLIGHT_FILE:
                return 0;
        case PREFLIGHT_TEMPLATE:
                break;
        }
        return why_set(why, why_len, "cannot be recognised without the configuration");
}

/* Renders the template as an enrollment boot would, for both platforms, with stand-in values. */
int preflight_template(const struct config *cfg, const char *text, size_t len, char *why, size_t why_len)
{
        static const char *const platforms[] = { "pcbios", "efi" };
        const struct boot_enroll *e = &cfg->boot.enroll;
        char base[256], script[512];
        _cleanup_free_ char *copy = NULL;
        struct boot_view v = {
                .base_url = base, .script_url = script, .kernel = e->kernel,
                .initrd = e->build.enabled ? "_metald/enroll/enroll-0000000000000000.img" : e->initrd,
                .cmdline = e->cmdline, .retry_delay_s = cfg->boot.retry_delay_s,
                .nonce = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                .local_boot_bios = cfg->lifecycle.local_boot_bios, .local_boot_efi = cfg->lifecycle.local_boot_efi,
        };
        uint32_t ip = ntohl(cfg->server_address.s_addr);

        if (len == 0)
                return why_set(why, why_len, "is empty");
        if (len > BOOT_MAX_TEMPLATE_BYTES)
                return why_set(why, why_len, "is larger than %d bytes", BOOT_MAX_TEMPLATE_BYTES);
        if (memchr(text, '\0', len))
                return why_set(why, why_len, "is not text (it holds a NUL byte)");
        if (config_base_url(cfg, ip, base, sizeof(base)) < 0 || config_script_url(cfg, ip, script, sizeof(script)) < 0)
                return why_set(why, why_len, "cannot be rendered: the boot URL is too long");
        if (!(copy = strndup(text, len)))
                return -ENOMEM;
        v.template_text = copy;
        for (size_t i = 0; i < ARRAY_SIZE(platforms); i++) {
                struct boot_identity id = { .mac = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 } };
                struct buf out = BUF_INIT(BOOT_MAX_SCRIPT_BYTES);
                const char *bad = NULL;
                int r;

                str_copy(id.arch, sizeof(id.arch), i ? "x86_64" : "i386");
                str_copy(id.platform, sizeof(id.platform), platforms[i]);
                r = boot_script_enroll(&v, &id, &out, &bad);
                buf_free(&out);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return why_set(why, why_len, "%s", bad ? bad : "cannot be rendered");
        }
        return 0;
}

/* --- looking at them --- */

static void report_add(struct preflight_report *rep, enum preflight_severity sev, const char *file,
                       const char *fmt, ...) _printf_(4, 5);
static void report_add(struct preflight_report *rep, enum preflight_severity sev, const char *file,
                       const char *fmt, ...)
{
        struct preflight_finding *f;
        va_list ap;

        if (rep->n >= PREFLIGHT_MAX_FINDINGS)
                return;
        f = &rep->findings[rep->n++];
        f->severity = sev;
        log_escape(f->file, sizeof(f->file), file, strlen(file));
        va_start(ap, fmt);
        vsnprintf(f->what, sizeof(f->what), fmt, ap);
        va_end(ap);
        if (sev == PREFLIGHT_ERROR)
                rep->n_errors++;
        else
                rep->n_warnings++;
}

/* dir/name as the operator wrote them, without a doubled slash. */
static void display_path(char *buf, size_t cap, const char *dir, const char *name)
{
        size_t n = strlen(dir);

        while (n > 1 && dir[n - 1] == '/')
                n--;
        snprintf(buf, cap, "%.*s/%s", (int)n, dir, name);
}

static const char *roots_label(unsigned roots)
{
        if (roots == (PREFLIGHT_ROOT_TFTP | PREFLIGHT_ROOT_HTTP))
                return "tftp.root and http.root";
        return roots == PREFLIGHT_ROOT_TFTP ? "tftp.root" : "http.root";
}

static int arch_cmp(const void *a, const void *b)
{
        return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* "x64 UEFI (arch 7, 9), x64 UEFI HTTP (arch 16) cannot boot", or what an enrollment file breaks. */
static void consequence(const struct preflight_need *nd, char *out, size_t cap)
{
        uint16_t archs[CONFIG_MAX_BOOT_FILES];
        struct buf b = BUF_INIT(LOG_MAX_LINE);
        size_t i = 0, j;

        if (nd->profile) {
                snprintf(out, cap, "the machines of profile %s cannot boot its netboot", nd->profile);
                return;
        }
        if (nd->role) {
                snprintf(out, cap, "no machine can enroll");
                return;
        }
        memcpy(archs, nd->archs, nd->n_archs * sizeof(archs[0]));
        qsort(archs, nd->n_archs, sizeof(archs[0]), arch_cmp);
        while (i < nd->n_archs) {
                const struct preflight_arch *a = preflight_arch_find(archs[i]), *next;

                (void)buf_puts(&b, i ? ", " : "");
                if (!a) {
                        (void)buf_printf(&b, "arch %u", archs[i++]);
                        continue;
                }
                (void)buf_printf(&b, "%s (arch %u", a->name, archs[i]);
                for (j = i + 1; j < nd->n_archs && (next = preflight_arch_find(archs[j])) &&
                                strcmp(next->name, a->name) == 0; j++)
                        (void)buf_printf(&b, ", %u", archs[j]);
                (void)buf_puts(&b, ")");
                i = j;
        }
        snprintf(out, cap, "%s cannot boot", b.data ? b.data : "");
        buf_free(&b);
}

static const char *open_why(int r, char *buf, size_t cap)
{
        switch (r) {
        case -ELOOP:
                return "is a symbolic link, which the servers do not follow (copy the file instead)";
        case -EXDEV:
                return "lies outside its root (an absolute path or ..)";
        case -EISDIR:
                return "is a directory, not a file";
        case -ENOTDIR:
                return "has a path component that is not a directory";
        case -EACCES:
                return "is not a regular file metald may read (permission denied, or a device, fifo or socket)";
        default:
                snprintf(buf, cap, "cannot be opened: %s", strerror(-r));
                return buf;
        }
}

/* Opens name beneath root_fd as the servers do and reads up to cap bytes of it. */
static int probe(int root_fd, const char *name, uint8_t *buf, size_t cap, size_t *ret_len, uint64_t *ret_size)
{
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r = fs_open_beneath(root_fd, name, O_RDONLY, &fd);

        if (r < 0)
                return r;
        if ((r = fs_check_regular(fd, &st)) < 0)
                return r;
        if ((r = read_full(fd, buf, cap, ret_len)) < 0)
                return r;
        *ret_size = (uint64_t)st.st_size;
        return 0;
}

static int check_need(const struct config *cfg, int root_fd, const struct preflight_need *nd,
                      struct preflight_report *rep)
{
        size_t cap = nd->kind == PREFLIGHT_TEMPLATE ? BOOT_MAX_TEMPLATE_BYTES + 1 : PREFLIGHT_HEAD_BYTES;
        _cleanup_free_ uint8_t *head = malloc(cap);
        char path[CONFIG_MAX_PATH_BYTES], why[256], buf[128], then[384];
        enum preflight_severity sev = PREFLIGHT_ERROR;
        uint64_t size = 0;
        size_t len = 0;
        int r;

        if (!head)
                return -ENOMEM;
        display_path(path, sizeof(path), nd->dir, nd->name);
        if (nd->name_error) {
                snprintf(why, sizeof(why), "is not a name the TFTP server serves (%s)",
                         nd->name_error == -EACCES ? "it climbs out of the root with .."
                                                   : strerror(-nd->name_error));
        } else if ((r = probe(root_fd, nd->name, head, cap, &len, &size)) == -ENOENT) {
                snprintf(why, sizeof(why), "missing from %s", roots_label(nd->roots));
                if (!nd->required)
                        sev = PREFLIGHT_WARNING;
        } else if (r < 0) {
                snprintf(why, sizeof(why), "%s", open_why(r, buf, sizeof(buf)));
        } else {
                r = nd->kind == PREFLIGHT_TEMPLATE
                            ? preflight_template(cfg, (const char *)head, len, why, sizeof(why))
                            : preflight_recognize(nd->kind, nd->pe_machine, head, len, size, why, sizeof(why));
                if (r == -ENOMEM)
                        return r;
                if (r == 0)
                        return 0;
        }
        consequence(nd, then, sizeof(then));
        report_add(rep, sev, path, "%s; %s", why, then);
        return 0;
}

struct root {
        const char *key, *dir;
        bool enabled;
        int fd;
};

/* Each root a server will open; a root that cannot be opened is one error, even when both settings name it. */
static void open_roots(const struct config *cfg, struct root roots[2], struct preflight_report *rep)
{
        roots[0] = (struct root){ "tftp.root", cfg->tftp.root, cfg->tftp.enabled, -1 };
        roots[1] = (struct root){ "http.root", cfg->http.root, cfg->http.enabled, -1 };
        for (int i = 0; i < 2; i++) {
                bool shared = roots[0].enabled && roots[1].enabled && strcmp(roots[0].dir, roots[1].dir) == 0;

                if (!roots[i].enabled || (i == 1 && shared))
                        continue;
                roots[i].fd = open(roots[i].dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                if (roots[i].fd < 0)
                        report_add(rep, PREFLIGHT_ERROR, roots[i].dir, "cannot be opened as %s: %s",
                                   shared ? "tftp.root and http.root" : roots[i].key, strerror(errno));
        }
}

static int root_fd_for(const struct root roots[2], const char *dir)
{
        for (int i = 0; i < 2; i++)
                if (roots[i].enabled && strcmp(roots[i].dir, dir) == 0)
                        return roots[i].fd;
        return -1;
}

/* What `metald enroll-image build` would refuse: every input of boot.enroll.build, resolved and read. */
static int check_initramfs(const struct config *cfg, struct preflight_report *rep)
{
        _cleanup_free_ struct initramfs_spec *spec = calloc(1, sizeof(*spec));
        struct initramfs_plan plan = { 0 };
        char why[1024];
        int r;

        if (!spec)
                return -ENOMEM;
        initramfs_spec_from_config(&cfg->boot.enroll.build, spec);
        initramfs_spec_keys_from_config(&cfg->images, spec);
        r = initramfs_plan(spec, &plan, why, sizeof(why));
        initramfs_plan_free(&plan);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                report_add(rep, PREFLIGHT_ERROR, "boot.enroll.build", "%s; no machine can enroll", why);
        return 0;
}

/* A profile whose image is not in the catalog: a warning, since it may be imported later. */
static void check_profile_images(const struct config *cfg, struct preflight_report *rep)
{
        for (size_t i = 0; i < cfg->n_profiles; i++) {
                const struct profile *p = &cfg->profiles[i];
                struct image_info info;
                char key[PROFILE_MAX_WORD + 32], ref[IMAGE_MAX_NAME + 24], why[256];

                if (!*p->image || strcmp(p->install_mode, "install") != 0)
                        continue;
                if (image_show(cfg->state_dir, p->image, p->image_version, &info, NULL, why, sizeof(why)) == 0)
                        continue;
                snprintf(key, sizeof(key), "profiles.%s.image", p->name);
                if (p->image_version)
                        snprintf(ref, sizeof(ref), "%s:%llu", p->image, (unsigned long long)p->image_version);
                else
                        snprintf(ref, sizeof(ref), "%s", p->image);
                report_add(rep, PREFLIGHT_WARNING, key, "profile %s names image %s, which is not imported "
                           "(metald image import); its machines wait in approved until it is", p->name, ref);
        }
}

int preflight_run(const struct config *cfg, unsigned flags, struct preflight_report *ret)
{
        _cleanup_free_ struct preflight_need *needs = calloc(PREFLIGHT_MAX_NEEDS, sizeof(*needs));
        struct preflight_report rep = { .findings = calloc(PREFLIGHT_MAX_FINDINGS, sizeof(*rep.findings)) };
        struct root roots[2];
        size_t n;
        int r = 0;

        if (!needs || !rep.findings) {
                free(rep.findings);
                return -ENOMEM;
        }
        open_roots(cfg, roots, &rep);
        n = preflight_needs(cfg, needs, PREFLIGHT_MAX_NEEDS);
        for (size_t i = 0; i < n && r == 0; i++) {
                int fd = root_fd_for(roots, needs[i].dir);

                if (fd >= 0)
                        r = check_need(cfg, fd, &needs[i], &rep);
        }
        if (r == 0 && (flags & PREFLIGHT_INITRAMFS) && cfg->boot.enroll.build.enabled)
                r = check_initramfs(cfg, &rep);
        if (r == 0)
                check_profile_images(cfg, &rep);
        for (int i = 0; i < 2; i++)
                closep(&roots[i].fd);
        if (r < 0) {
                free(rep.findings);
                return r;
        }
        *ret = rep;
        return 0;
}

void preflight_report_free(struct preflight_report *r)
{
        if (!r)
                return;
        free(r->findings);
        *r = (struct preflight_report){ 0 };
}
