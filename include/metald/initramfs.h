/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/buf.h"
#include "metald/fs.h"
#include "metald/config.h"
#include "metald/limits.h"

/*
 * The enrollment environment's initramfs, built by metald from host files: a
 * static busybox, metald-agent with every shared library it needs, and kernel
 * modules for common NICs and disks, behind an /init that brings up the boot
 * NIC and runs the agent. The same inputs give the same bytes.
 *
 *   initramfs_elf.c      pure, bounds-checked ELF64 reading
 *   initramfs_modules.c  kernel modules: index a tree, close over depends=
 *   initramfs_libs.c     shared libraries: close over DT_NEEDED like ld.so
 *   initramfs_init.c     the /init and udhcpc scripts, the module-order file
 *   initramfs.c          plan, digest, write and cache the image
 */

#define INITRAMFS_SHA256_BYTES 32
#define INITRAMFS_SHA256_HEX   65       /* 64 hex digits and a NUL */

/* ELF */

/* What the dynamic loader reads. Strings point into the input and live as long as it. */
struct elf_dynamic {
        uint16_t type;                  /* ET_EXEC or ET_DYN */
        uint16_t machine;               /* EM_* */
        const char *interp;             /* PT_INTERP, NULL when static */
        const char *runpath;            /* DT_RUNPATH, else DT_RPATH; NULL when neither */
        const char *soname;             /* DT_SONAME or NULL */
        const char *needed[INITRAMFS_MAX_NEEDED];
        size_t n_needed;
};

/* The .modinfo fields a kernel module declares; names use '_' for '-'. */
struct elf_modinfo {
        char name[INITRAMFS_MAX_MODULE_NAME + 1];       /* "" when absent */
        char depends[INITRAMFS_MAX_DEPENDS][INITRAMFS_MAX_MODULE_NAME + 1];
        size_t n_depends;
};

/*
 * Both fail with -ENOEXEC for anything but an ELF64 file of the expected type
 * (executable or shared object; relocatable for modules), -EBADMSG when a
 * header, table or string leaves the file or is not terminated, -E2BIG past
 * the limits above, and -ENODATA for a module without a .modinfo section.
 */
int elf_read_dynamic(const void *data, size_t size, struct elf_dynamic *ret);
int elf_read_modinfo(const void *data, size_t size, struct elf_modinfo *ret);

/* Kernel modules */

/* "pci-hyperv-intf" -> "pci_hyperv_intf", as the kernel compares module names. */
void initramfs_module_name_normalize(char *s);

enum initramfs_unpack { INITRAMFS_UNPACK_NONE, INITRAMFS_UNPACK_XZ, INITRAMFS_UNPACK_ZSTD, INITRAMFS_UNPACK_GZIP };

struct initramfs_module {
        char name[INITRAMFS_MAX_MODULE_NAME + 1];
        char *path;                     /* below the tree, as found: kernel/fs/ext4/ext4.ko */
        enum initramfs_unpack unpack;   /* compressed modules are stored unpacked */
        uint64_t size;                  /* bytes in the image (unpacked) */
        uint8_t sha256[INITRAMFS_SHA256_BYTES];         /* of the file as found */
};

struct initramfs_modules {
        struct initramfs_module *mods;  /* dependencies before dependents */
        size_t n;
        size_t n_builtin;               /* requested or depended-on names built into the kernel */
};

/*
 * Finds each name in the module tree at dir (any depth, .ko, .ko.xz, .ko.zst
 * or .ko.gz), adds its depends= transitively and orders the result so that
 * dependencies come first. Names listed in dir/modules.builtin are skipped.
 * A missing module (-ENOENT) or a dependency cycle (-ELOOP) fails, with why
 * naming the module.
 */
/* The first n_optional names may be absent from the tree (they are skipped with a warning); the rest may not. */
int initramfs_modules_resolve(const char *dir, const char *const *names, size_t n_names, size_t n_optional,
                              struct initramfs_modules *ret, char *why, size_t why_len);
void initramfs_modules_free(struct initramfs_modules *m);

/* Reads a module file (at most INITRAMFS_MAX_ELF_BYTES once unpacked); *ret is the caller's to free. */
int initramfs_module_read(const char *path, enum initramfs_unpack unpack, uint8_t sha256[INITRAMFS_SHA256_BYTES],
                          uint8_t **ret, size_t *ret_len);

/* Shared libraries */

struct initramfs_lib {
        char *dest;                     /* absolute path in the image: the directory found in + soname */
        char *source;                   /* the host path it was read from (symlinks followed on read) */
        bool interp;                    /* the ELF interpreter, stored at its PT_INTERP path */
        uint64_t size;
        uint8_t sha256[INITRAMFS_SHA256_BYTES];
};

struct initramfs_libs {
        struct initramfs_lib *libs;     /* the interpreter first, then in the order found */
        size_t n;
};

/*
 * The libraries binary needs, as ld.so would find them: DT_NEEDED
 * transitively, each searched in the needing object's DT_RUNPATH (else
 * DT_RPATH; $ORIGIN expanded), then in dirs (NULL: the multiarch and
 * standard directories for the binary's machine). Objects of another class
 * or machine are passed over. A static binary needs none.
 */
int initramfs_libs_resolve(const char *binary, const char *const *dirs, size_t n_dirs,
                           struct initramfs_libs *ret, char *why, size_t why_len);
void initramfs_libs_free(struct initramfs_libs *l);

/* The scripts and files /init works with */

#define INITRAMFS_MODULE_LIST   "etc/metald/modules"            /* image paths, one a line, load order */
#define INITRAMFS_LIBRARY_PATH  "etc/metald/library-path"       /* LD_LIBRARY_PATH for the agent */
#define INITRAMFS_UDHCPC_SCRIPT "etc/metald/udhcpc.script"
#define INITRAMFS_AGENT_PATH    "usr/bin/metald-agent"
#define INITRAMFS_BUSYBOX_PATH  "bin/busybox"
#define INITRAMFS_KEYS_DIR      "etc/metald/trusted-keys"       /* <key id>.pub: what the agent trusts */

extern const char initramfs_init_script[];
extern const char initramfs_udhcpc_script[];
/* The busybox applets the scripts and a debug shell use, linked in /bin. */
extern const char *const initramfs_applets[];
extern const size_t initramfs_n_applets;

/* The module-order file: "/<moddir>/<path without compression suffix>" per line. */
int initramfs_module_list(const struct initramfs_modules *m, const char *moddir, struct buf *out);
/* Where a module lives in the image, below moddir; *ret is the caller's to free. */
int initramfs_module_image_path(const char *moddir, const struct initramfs_module *m, char **ret);

/* Building */

#define INITRAMFS_DEFAULT_MODULES 27

/* The default module list: the NICs and disk controllers of common servers and of QEMU, and two file systems. */
extern const char *const initramfs_default_modules[INITRAMFS_DEFAULT_MODULES];

/* What an image is built from; the pointers are borrowed (from the configuration). */
struct initramfs_spec {
        const char *modules_dir;        /* the module tree, /lib/modules/VERSION */
        const char *busybox;
        char agent[CONFIG_MAX_PATH_BYTES];
        enum enroll_compression compression;
        const char *modules[INITRAMFS_DEFAULT_MODULES + CONFIG_MAX_EXTRA_MODULES];
        size_t n_modules;
        size_t n_optional;              /* the defaults come first: a kernel without one of them still builds */
        const char *trusted_keys[IMAGE_MAX_KEYS];       /* PEM public keys: INITRAMFS_KEYS_DIR/<key id>.pub */
        size_t n_trusted_keys;
        const char *revoked_keys[IMAGE_MAX_KEYS];       /* left out wherever they are listed */
        size_t n_revoked_keys;
};

enum initramfs_kind { INITRAMFS_DIR, INITRAMFS_FILE, INITRAMFS_SYMLINK, INITRAMFS_CHARDEV };

struct initramfs_entry {
        char *path;                     /* in the image, without a leading '/': "bin/busybox" */
        enum initramfs_kind kind;
        uint32_t mode;                  /* permission bits */
        char *source;                   /* FILE read from the host; NULL when generated */
        enum initramfs_unpack unpack;
        char *data;                     /* generated FILE: its bytes; SYMLINK: the target */
        uint64_t size;                  /* FILE: bytes in the image */
        uint32_t rdev_major, rdev_minor;
        uint8_t sha256[INITRAMFS_SHA256_BYTES];         /* FILE: of the source or data; SYMLINK: of the target */
};

struct initramfs_plan {
        struct initramfs_entry *entries;        /* sorted by path */
        size_t n_entries, alloc;
        size_t n_modules, n_libraries;
        uint64_t content_bytes;                 /* file bytes before compression */
        enum enroll_compression compression;
        uint8_t digest[INITRAMFS_SHA256_BYTES]; /* of every input: names the image */
        char digest_hex[INITRAMFS_SHA256_HEX];
};

struct initramfs_result {
        char path[CONFIG_MAX_PATH_BYTES];
        char sha256_hex[INITRAMFS_SHA256_HEX];  /* of the image file */
        uint64_t size;
        bool built;                             /* false: an existing image was reused */
        size_t n_modules, n_libraries;
        double seconds;
};

/*
 * The spec for boot.enroll.build: the default modules and the extra ones, and
 * the agent next to the running metald (then ../lib/metald/, then
 * METALD_PREFIX/lib/metald/) unless build.agent names one.
 */
void initramfs_spec_from_config(const struct boot_enroll_build *b, struct initramfs_spec *ret);
/* The keys the agent checks images with: images.trusted_keys less images.revoked_keys. */
void initramfs_spec_keys_from_config(const struct images_config *c, struct initramfs_spec *spec);

/* Resolves and hashes every input; why says which one failed. */
int initramfs_plan(const struct initramfs_spec *spec, struct initramfs_plan *ret, char *why, size_t why_len);
void initramfs_plan_free(struct initramfs_plan *p);
const struct initramfs_entry *initramfs_plan_find(const struct initramfs_plan *p, const char *path);

/* Writes the image to path through a temporary file in its directory, fsynced and renamed. */
int initramfs_write(const struct initramfs_plan *p, const char *path, struct initramfs_result *ret,
                    char *why, size_t why_len);

/*
 * Returns dir/enroll-<16 hex of the digest>.img, building it first when it is
 * not there, and deletes other enroll-*.img files of dir. Serialised between
 * processes by a lock file in dir.
 */
int initramfs_ensure_dir(const struct initramfs_spec *spec, const char *dir, struct initramfs_result *ret,
                         char *why, size_t why_len);

/*
 * For the daemon: the image for cfg's boot.enroll.build in state_dir/enroll.
 * ret_sha256_hex is the SHA-256 of the file (the HTTP ETag). Logs one line
 * per build, and the error when it fails; -ENOENT when build is not set.
 */
int initramfs_ensure(const struct config *cfg, const char *state_dir, char *ret_path, size_t cap,
                     char ret_sha256_hex[INITRAMFS_SHA256_HEX]);

/* metald enroll-image build --config FILE [--output PATH] */
int cli_enroll_image(int argc, char **argv);
