/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/config.h"
#include "metald/limits.h"

/*
 * The files a configuration names or needs, checked by `metald config check`
 * and at the start of `metald serve`: the roots, the boot file of every
 * architecture metald's DHCP hands out (from tftp.root, or from http.root for
 * UEFI HTTP boot), the enrollment kernel, initrd and template, and the
 * kernel and initrd of every profile's netboot. Each file
 * is opened beneath its root with fs_open_beneath, as the servers open it,
 * and its first bytes must look like what it is.
 *
 * Severity: a boot file missing only for architectures other than x86 BIOS
 * and x64 UEFI PXE is a warning naming them (those machines will not boot);
 * every other finding is an error, and an error stops metald from starting.
 */

enum preflight_severity { PREFLIGHT_ERROR, PREFLIGHT_WARNING };

/* What a file must look like. */
enum preflight_kind {
        PREFLIGHT_PXE,          /* a BIOS PXE network boot program, such as undionly.kpxe */
        PREFLIGHT_EFI,          /* an EFI application for one machine type (0: any) */
        PREFLIGHT_KERNEL,       /* a Linux x86 bzImage, arm64 or RISC-V Image, or an EFI stub kernel */
        PREFLIGHT_FILE,         /* any file that is not empty: an initrd, a boot file of an unknown architecture */
        PREFLIGHT_TEMPLATE,     /* an iPXE script template the boot-script renderer accepts */
};

/* An RFC 4578 client architecture as the boot path treats it. */
struct preflight_arch {
        uint16_t arch;
        const char *name;               /* "x64 UEFI" */
        bool http;                      /* UEFI HTTP boot: the file comes from http.root */
        bool required;                  /* x86 BIOS, x64 UEFI: a missing boot file is an error */
        enum preflight_kind kind;
        uint16_t pe_machine;            /* EFI: IMAGE_FILE_MACHINE_*, e.g. 0x8664 */
};

/* The architecture's entry, or NULL for one metald knows nothing about. */
const struct preflight_arch *preflight_arch_find(uint16_t arch);

#define PREFLIGHT_ROOT_TFTP 1u
#define PREFLIGHT_ROOT_HTTP 2u

/* One file to check: every architecture that boots it, or one enrollment role. */
struct preflight_need {
        const char *dir;                /* the root it is opened beneath (a string of the config) */
        unsigned roots;                 /* PREFLIGHT_ROOT_*: which settings name that root */
        char name[DHCP_MAX_BOOTFILE + 1];       /* beneath the root, as the server opens it */
        int name_error;                 /* the server refuses the name itself (-errno), 0 when usable */
        enum preflight_kind kind;
        uint16_t pe_machine;
        bool required;                  /* missing is an error */
        uint16_t archs[CONFIG_MAX_BOOT_FILES];  /* boot files: the architectures that need it */
        size_t n_archs;
        const char *role;               /* enrollment and netboot files: "kernel", "initrd", "template"; else NULL */
        const char *profile;            /* netboot files: the profile that names them; else NULL */
};

/*
 * Pure: the files cfg needs, one entry per file and expected content. Boot
 * files count only while metald's DHCP hands them out and the service that
 * serves them is on; enrollment files while HTTP is on and a kernel is set;
 * netboot files while HTTP is on.
 * Returns the number of entries (at most cap).
 */
size_t preflight_needs(const struct config *cfg, struct preflight_need *ret, size_t cap);

/*
 * Pure: whether a file of size bytes, whose first len bytes are head, looks
 * like kind (pe_machine for PREFLIGHT_EFI; not for templates). 0, or -ENOEXEC
 * with why set to a phrase such as "is empty".
 */
int preflight_recognize(enum preflight_kind kind, uint16_t pe_machine, const uint8_t *head, size_t len,
                        uint64_t size, char *why, size_t why_len);

/*
 * Pure: whether text (len bytes, the whole file) is a template the renderer
 * accepts with cfg's enrollment settings. 0, or -ENOEXEC with why set.
 */
int preflight_template(const struct config *cfg, const char *text, size_t len, char *why, size_t why_len);

struct preflight_finding {
        enum preflight_severity severity;
        char file[CONFIG_MAX_PATH_BYTES];       /* root/name, a root, or a configuration key; escaped */
        char what[512];                         /* what is wrong and what it breaks */
};

struct preflight_report {
        struct preflight_finding *findings;
        size_t n, n_errors, n_warnings;
};

/* Also plan the enrollment initramfs of boot.enroll.build (serve builds it right after the check instead). */
#define PREFLIGHT_INITRAMFS 1u

/* Checks every file cfg needs into ret (preflight_report_free it): 0, or -ENOMEM. */
int preflight_run(const struct config *cfg, unsigned flags, struct preflight_report *ret);
void preflight_report_free(struct preflight_report *r);
const char *preflight_severity_name(enum preflight_severity s);
