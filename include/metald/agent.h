/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/buf.h"
#include "metald/limits.h"

/*
 * metald-agent, the program of the enrollment environment: it collects the
 * machine's inventory, registers it with metald over the agent API
 * (docs/AGENT-API.md), heartbeats and follows metald's instructions.
 * Inventory, JSON and retry policy are pure; only agent_client.c talks HTTP
 * and only agent_run.c sleeps and runs commands.
 */

#define AGENT_UUID_CHARS        36
#define AGENT_MAC_CHARS         17
#define AGENT_NIC_NAME_MAX      15      /* IFNAMSIZ - 1 */
#define AGENT_DISK_NAME_MAX     31      /* DISK_NAME_LEN - 1 */
#define AGENT_NONCE_CHARS       22      /* 128 bits of base64url */
#define AGENT_SHA256_CHARS      64
#define AGENT_MAX_HOSTNAME      253     /* RFC 1123 */
#define AGENT_MAX_IMAGE_VERSION ((1ULL << 53) - 1)

/* Inventory */

struct agent_nic {
        char name[AGENT_NIC_NAME_MAX + 1];
        char mac[AGENT_MAC_CHARS + 1];          /* lower case, colons */
        bool link;
        uint32_t speed_mbps;                    /* 0 when unknown */
};

struct agent_disk {
        char name[AGENT_DISK_NAME_MAX + 1];
        uint64_t size_bytes;
        char model[AGENT_MAX_STRING + 1];
        char serial[AGENT_MAX_STRING + 1];
        bool rotational;
        bool removable;
};

struct agent_inventory {
        char uuid[AGENT_UUID_CHARS + 1];        /* canonical lower case, or empty */
        char serial[AGENT_MAX_STRING + 1];
        char vendor[AGENT_MAX_STRING + 1];
        char product[AGENT_MAX_STRING + 1];
        uint32_t cpu_count;
        char cpu_model[AGENT_MAX_STRING + 1];
        uint64_t memory_bytes;
        size_t n_nics;
        struct agent_nic nics[AGENT_MAX_NICS];
        size_t n_disks;
        struct agent_disk disks[AGENT_MAX_DISKS];
};

/*
 * Reads the inventory from sysroot ("/" in production): SMBIOS from
 * sys/class/dmi/id, Ethernet NICs from sys/class/net, physical disks with a
 * medium from sys/block, CPUs and memory from proc (CPUs from
 * sys/devices/system/cpu/online when cpuinfo lists none). Missing or odd files
 * leave their fields empty; NICs and disks are sorted by name and capped.
 * 0, or -errno when sysroot cannot be opened or memory runs out.
 */
int agent_inventory_collect(const char *sysroot, struct agent_inventory *ret);

/*
 * Copies untrusted text as printable UTF-8: control characters become
 * spaces, invalid bytes '?', surrounding whitespace goes, and the result is
 * cut at a character boundary to fit cap. Returns the length written.
 */
size_t agent_text_clean(char *dst, size_t cap, const void *src, size_t len);
/* Valid UTF-8 without control characters (C0, DEL, C1). */
bool agent_text_printable(const char *s, size_t len);

/* The install target */

enum agent_disk_rule_kind {
        AGENT_DISK_LARGEST,
        AGENT_DISK_SMALLEST,
        AGENT_DISK_SSD,                 /* not rotational */
        AGENT_DISK_HDD,                 /* rotational */
        AGENT_DISK_NVME,                /* the name starts with nvme */
        AGENT_DISK_NAME,                /* "sda" */
        AGENT_DISK_SERIAL,              /* "serial=XYZ" */
        AGENT_DISK_PATH,                /* "path=/dev/disk/by-path/..." or by-id: a link to the disk */
};

struct agent_disk_rule {
        enum agent_disk_rule_kind kind;
        char value[AGENT_MAX_STRING + 1];       /* name, serial or path; empty for the others */
};

/* A disk rule as metald sends it; -EINVAL for anything else. */
int agent_disk_rule_parse(const char *s, size_t len, struct agent_disk_rule *ret);

/* Why a disk must not be installed to; an empty why means it is free. */
struct agent_disk_use {
        char why[AGENT_MAX_STRING + 1];
};

/* A disk or one of its partitions as sys/block shows it, for agent_disk_use_from. */
struct agent_blockdev {
        char name[AGENT_DISK_NAME_MAX + 1];
        size_t disk;                            /* index of its disk in the inventory */
        uint32_t major, minor;                  /* 0:0 when unknown */
        char holder[AGENT_DISK_NAME_MAX + 1];   /* the first of holders/ (dm, md ...), or empty */
};

/*
 * Pure: marks in use (use[i] for inventory disk i) every disk whose device
 * or partition is mounted (mountinfo: the text of proc/self/mountinfo,
 * matched by device number and by /dev/NAME source), active swap (swaps:
 * proc/swaps, may be empty) or held by another device. -EINVAL for a
 * mountinfo line that is not one.
 */
int agent_disk_use_from(const struct agent_inventory *inv, const struct agent_blockdev *devs, size_t n_devs,
                        const char *mountinfo, size_t mountinfo_len, const char *swaps, size_t swaps_len,
                        struct agent_disk_use *use);
/* The same from sysroot's sys/block, proc/self/mountinfo and proc/swaps; -errno when the mounts cannot be read. */
int agent_disk_use_collect(const char *sysroot, const struct agent_inventory *inv, struct agent_disk_use *use);
/* The device name a path= rule's link (under dev_dir, "/dev" in production) resolves to; -errno. */
int agent_disk_path_resolve(const char *dev_dir, const char *path, char ret[static AGENT_DISK_NAME_MAX + 1]);

/*
 * Pure: the disk of inv that rule names, never one in use, never a
 * removable one unless allow_removable. largest and smallest take the
 * largest or smallest usable disk, ssd, hdd and nvme the first usable one of
 * that kind by name; resolved is what a path= rule's link names. 0 with
 * *ret_index, or -ENODEV with why naming the rule and the disks seen.
 */
int agent_disk_choose(const struct agent_disk_rule *rule, bool allow_removable, const char *resolved,
                      const struct agent_inventory *inv, const struct agent_disk_use *use, size_t *ret_index,
                      char *why, size_t why_cap);

/* "412 MiB", "1.2 GiB": bytes for people. */
void agent_bytes_text(uint64_t bytes, char *ret, size_t cap);

/* Boot parameters */

/* metald.url=, metald.mac=, metald.nonce= of a kernel command line; the last of each wins. */
struct agent_cmdline {
        char *text;             /* owned copy the values point into */
        const char *url, *mac, *nonce;  /* NULL when absent */
};

int agent_cmdline_parse(const char *text, size_t len, struct agent_cmdline *ret);
void agent_cmdline_free(struct agent_cmdline *c);
/* http://HOST[:PORT][/] into "http://HOST[:PORT]"; -EINVAL otherwise. */
int agent_url_check(const char *s, char *ret, size_t cap);
/* 22 base64url characters; -EINVAL otherwise. The nonce is never logged. */
int agent_nonce_check(const char *s);

/* JSON: requests and responses */

enum agent_action {
        AGENT_ACTION_WAIT,
        AGENT_ACTION_INSTALL,
        AGENT_ACTION_REBOOT,
        AGENT_ACTION_POWEROFF,
        _AGENT_ACTION_MAX,
};

enum agent_event {
        AGENT_EVENT_INSTALL_STARTED,
        AGENT_EVENT_INSTALL_PROGRESS,
        AGENT_EVENT_INSTALL_SUCCEEDED,
        AGENT_EVENT_INSTALL_FAILED,
        AGENT_EVENT_LOG,
        _AGENT_EVENT_MAX,
};

struct agent_image {
        char name[IMAGE_MAX_NAME + 1];
        uint64_t version;
        char url[AGENT_MAX_URL + 1];            /* where the image's files are: the disk artifact is URL/disk */
        char sha256[AGENT_SHA256_CHARS + 1];    /* of the exact manifest.json bytes, lower-case hex */
        uint64_t size;                          /* bytes of the disk artifact */
        char disk[AGENT_MAX_STRING + 1];        /* the disk rule (agent_disk_rule_parse) */
        bool allow_removable;
        char hostname[AGENT_MAX_HOSTNAME + 1];  /* lower case; checked in full by agent_config_json */
};

struct agent_instruction {
        enum agent_action action;
        char reason[AGENT_MAX_REASON + 1];      /* may be empty */
        struct agent_image image;               /* install only */
};

/* Which call a response answers: each has its own set of fields. */
enum agent_call {
        AGENT_CALL_REGISTER,
        AGENT_CALL_HEARTBEAT,
        AGENT_CALL_INSTRUCTION,
        AGENT_CALL_EVENT,
        _AGENT_CALL_MAX,
};

struct agent_response {
        char machine[AGENT_MAX_MACHINE_NAME + 1];       /* always in a registration's, else may be empty */
        char session[AGENT_MAX_SESSION + 1];            /* register only; a secret */
        char state[AGENT_MAX_STATE_NAME + 1];
        unsigned heartbeat_seconds;                     /* 0 when the response has none */
        struct agent_instruction instruction;
};

const char *agent_action_name(enum agent_action a);
const char *agent_event_name(enum agent_event e);
const char *agent_call_name(enum agent_call c);
bool agent_instruction_equal(const struct agent_instruction *a, const struct agent_instruction *b);

/* The "inventory" object of a registration, appended to out. */
int agent_inventory_to_json(const struct agent_inventory *inv, struct buf *out);
/* Request bodies. progress < 0 and status/detail NULL leave the field out.
 * A registration too large for AGENT_MAX_BODY_BYTES drops NICs and disks
 * from the end until it fits (*ret_trimmed says how many, when not NULL). */
int agent_register_request(const char *nonce, const char *boot_mac, const struct agent_inventory *inv,
                           struct buf *out, size_t *ret_trimmed);
int agent_heartbeat_request(int progress, const char *status, struct buf *out);
int agent_event_request(enum agent_event ev, const char *detail, int progress, struct buf *out);

/*
 * Strict parse of a 200 response to call: an object with exactly the
 * documented fields, each of the right type, range and length. 0, or
 * -EBADMSG with a reason (safe to log) in why.
 */
int agent_response_parse(enum agent_call call, const char *body, size_t len, struct agent_response *ret, char *why,
                      size_t why_cap);
/* The sentence of an error response {"error": "..."}; -EBADMSG when it has none. */
int agent_error_parse(const char *body, size_t len, char *ret, size_t cap);
/* Overwrites the session secret. */
void agent_response_wipe(struct agent_response *r);

/* Retry policy */

enum agent_verdict {
        AGENT_OK,
        AGENT_RETRY,            /* unreachable, timed out, 5xx: exponential backoff */
        AGENT_RETRY_SLOW,       /* refused in a way only an operator can fix: retry slowly */
        AGENT_UNAUTHORIZED,     /* 401: nonce or session no longer valid; reboot for a new one */
        AGENT_REFUSED,          /* 409 to an event: the event does not apply any more; drop it */
};

/* status 0 means metald did not answer at all. */
enum agent_verdict agent_classify(enum agent_call call, long status);
/* Full jitter: uniform in [0, min(max, min * 2^(failures - 1))]; failures >= 1. */
uint64_t agent_backoff_usec(unsigned failures, uint32_t rnd);
/* How long to wait after a failed call; retry_after_usec is 0 without Retry-After. Never 0 for slow retries. */
uint64_t agent_retry_delay_usec(enum agent_verdict v, unsigned failures, uint64_t retry_after_usec, uint32_t rnd);
/* heartbeat_s +/- 20 %. */
uint64_t agent_heartbeat_delay_usec(unsigned heartbeat_s, uint32_t rnd);
/* A Retry-After value in delta-seconds (metald sends no HTTP dates), clamped to
 * [AGENT_BACKOFF_MIN_USEC, AGENT_MAX_RETRY_AFTER_USEC] so that 0 never means "now". */
int agent_retry_after_parse(const char *s, size_t len, uint64_t *ret_usec);

/* HTTP client (libcurl): one connection to metald, reused */

struct agent_client;

struct agent_result {
        enum agent_verdict verdict;
        long status;                    /* HTTP status; 0 when metald was not reached */
        uint64_t retry_after_usec;      /* a 503's Retry-After, else 0 */
        size_t trimmed;                 /* NICs and disks left out of a registration to fit the body cap */
        char why[512];                  /* what went wrong; escaped, never a secret */
};

/* base_url as returned by agent_url_check. */
int agent_client_new(const char *base_url, struct agent_client **ret);
/* Wipes the session secret; accepts NULL. */
void agent_client_free(struct agent_client *c);
int agent_client_set_session(struct agent_client *c, const char *secret);

/* Each call returns 0 with the parsed reply, or a negative errno with
 * *ret_result saying what happened and how to retry. */
int agent_register(struct agent_client *c, const char *nonce, const char *boot_mac,
                   const struct agent_inventory *inv, struct agent_response *ret, struct agent_result *ret_result);
int agent_heartbeat(struct agent_client *c, int progress, const char *status, struct agent_response *ret,
                    struct agent_result *ret_result);
int agent_fetch_instruction(struct agent_client *c, struct agent_response *ret, struct agent_result *ret_result);
int agent_send_event(struct agent_client *c, enum agent_event ev, const char *detail, int progress,
                     struct agent_response *ret, struct agent_result *ret_result);
/* The signed manifest of the image to install and its signature, as metald hands them to this session
 * (GET /v1/agent/image/manifest and /v1/agent/image/manifest.sig); nothing is checked here. */
int agent_fetch_image_manifest(struct agent_client *c, struct buf *ret_manifest, struct buf *ret_sig,
                               struct agent_result *ret_result);

/* The loop */

struct agent_options {
        const char *url;                /* checked by agent_url_check */
        const char *boot_mac;           /* lower case */
        const char *nonce;              /* checked by agent_nonce_check */
        const char *sysroot;
        const char *reboot_cmd;         /* run with /bin/sh -c */
        const char *poweroff_cmd;
        unsigned max_attempts;          /* consecutive failed calls before giving up; 0: never */
        const char *keys_dir;           /* the trusted image keys: its *.pub files */
        const char *dev_dir;            /* where the disks' device nodes are ("/dev") */
        const char *state_file;         /* resume state of an install (on tmpfs), or NULL */
        unsigned progress_s;            /* period of install-progress events */
};

/*
 * Registers and follows metald until a reboot or poweroff command has run
 * (0, or -EIO when the command failed), a termination signal arrives (0),
 * or max_attempts calls in a row failed (-ETIMEDOUT).
 */
int agent_run(const struct agent_options *o);
