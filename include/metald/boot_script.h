/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/buf.h"
#include "metald/limits.h"

/*
 * iPXE boot scripts, as pure functions: the HTTP layer gathers the inputs
 * (configuration, the template text, whether the artifacts exist, the query
 * iPXE sent) and sends whatever boot_script_for() renders.
 *
 * iPXE reads a script line by line (a trailing '\' joins the next line, a
 * leading ":name" is a label), splits each line on whitespace with no quoting,
 * ends a command at a token "||", "&&" or ";", ignores the rest of a line
 * from a token starting with '#', and expands every "${name}" in a token,
 * again and again, including inside values it has just expanded. No escape
 * exists for any of these, so every value metald writes into a script passes
 * through boot_escape_url() or boot_escape_words(), which leave nothing iPXE
 * could split, join, cut short or expand.
 */

/* What iPXE said about the machine it runs on, validated. */
struct boot_identity {
        uint8_t mac[6];                         /* the NIC iPXE booted from */
        char uuid[UUID_TEXT_BYTES];             /* SMBIOS UUID, canonical lower case; "" when none or no identity */
        char serial[BOOT_MAX_SERIAL + 1];       /* printable ASCII, or "" */
        char arch[16];                          /* ${buildarch} */
        char platform[16];                      /* ${platform}: pcbios or efi */
};

enum boot_query_result {
        BOOT_QUERY_NONE,                /* no identity parameters: iPXE has not been asked yet */
        BOOT_QUERY_OK,
        BOOT_QUERY_INVALID,
};

/* *ret_why is set for INVALID: a static sentence, safe to print on the console. */
enum boot_query_result boot_identity_parse(const char *query, size_t len, struct boot_identity *ret,
                                           const char **ret_why);

/* Everything rendering needs besides the query; strings are never NULL except template. */
struct boot_view {
        const char *base_url;           /* "http://host:port", no trailing slash */
        const char *script_url;         /* base_url + "/" + boot.script */
        const char *kernel, *initrd;    /* boot.enroll paths below base_url; kernel "" = none */
        const char *cmdline;            /* boot.enroll.cmdline */
        uint32_t retry_delay_s;
        const char *template_text;      /* the enrollment template, NULL when unreadable */
        const char *unavailable;        /* set: why enrollment cannot be offered now (static text) */
        const char *nonce;              /* this boot's one-time nonce, or NULL */
        const char *local_boot_bios;    /* the iPXE commands that boot the local disk */
        const char *local_boot_efi;
};

enum boot_script_kind {
        BOOT_SCRIPT_CHAIN,              /* asks iPXE to come back with its identity */
        BOOT_SCRIPT_ENROLL,             /* kernel + initrd of the enrollment environment */
        BOOT_SCRIPT_RETRY,              /* prints why, sleeps, starts over */
        BOOT_SCRIPT_LOCAL,              /* the installed system on the local disk */
        BOOT_SCRIPT_NETBOOT,            /* a profile's netboot: its kernel, initrd and command line as they are */
};

/* A profile's netboot: paths below base_url, initrd "" = none; strings of the configuration. */
struct boot_netboot {
        const char *profile;
        const char *kernel, *initrd, *cmdline;
};

/* What a machine, once identified, boots: decided by the lifecycle. */
struct boot_decision {
        enum boot_script_kind kind;     /* ENROLL, LOCAL, NETBOOT or RETRY */
        const char *why;                /* RETRY: a static sentence */
        struct boot_netboot netboot;    /* NETBOOT */
        char nonce[64];                 /* ENROLL: this boot's one-time nonce, or "" */
        char machine[64];               /* the machine's name, for the console */
};

/* Decides for an identified machine; NULL means every machine enrolls. */
typedef void (*boot_decide_fn)(const struct boot_identity *id, void *userdata, struct boot_decision *ret);

struct boot_outcome {
        enum boot_script_kind kind;
        const char *why;                /* RETRY: a static sentence, also printed on the console */
        bool has_identity;              /* the query named a valid machine */
        struct boot_identity identity;
};

/*
 * The decision and the rendering: every outcome is a script (iPXE is never
 * left without one). Errors are -ENOMEM, or -E2BIG when even the retry
 * script does not fit the buffer's cap.
 */
int boot_script_for(const struct boot_view *v, const char *query, size_t query_len, boot_decide_fn decide,
                    void *userdata, struct buf *out, struct boot_outcome *ret);

int boot_script_chain(const struct boot_view *v, struct buf *out);
/* The installed system: the local-boot command for the identity's platform, and a retry if it returns. */
int boot_script_local(const struct boot_view *v, const struct boot_identity *id, const char *machine,
                      struct buf *out);
int boot_script_retry(const struct boot_view *v, const char *why, struct buf *out);
/*
 * A netboot: nb's kernel with nb's command line (and initrd=<name> on UEFI,
 * as for enrollment), its initrd, and a retry if the boot returns. It is not
 * the enrollment environment: no nonce and no metald.* parameters.
 */
int boot_script_netboot(const struct boot_view *v, const struct boot_identity *id, const char *machine,
                        const struct boot_netboot *nb, struct buf *out);
/* -EINVAL (with *ret_why) when the template is not usable. */
int boot_script_enroll(const struct boot_view *v, const struct boot_identity *id, struct buf *out,
                       const char **ret_why);

/*
 * The kernel command line an enrollment boot of id hands the kernel, as
 * {{cmdline}} renders it, for operators to see: the one-time nonce, a secret,
 * is shown as BOOT_NONCE_SHOWN; v->nonce is ignored.
 */
#define BOOT_NONCE_SHOWN "<hidden>"
int boot_cmdline_shown(const struct boot_view *v, const struct boot_identity *id, struct buf *out);

/* Appends s as a single token that is a URL: unsafe bytes become %XX. */
int boot_escape_url(struct buf *out, const char *s);
/* Appends s as space-separated words: unsafe bytes become '_', whitespace one space. */
int boot_escape_words(struct buf *out, const char *s);

