/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metald/buf.h"
#include "metald/limits.h"
#include "metald/manifest.h"

/*
 * The verified streaming install of metald-agent (docs/AGENT-API.md,
 * "Installing an image"): the signed manifest is checked against keys built
 * into the enrollment initramfs and against the digest metald announced, then
 * the disk artifact is fetched chunk by chunk, each chunk verified before it
 * is decompressed or written, and the target's first MiB is written last, so
 * that a disk whose install did not finish does not boot.
 */

struct ZSTD_DCtx_s;

/*
 * Fetches length bytes of the disk artifact at offset into buf (length bytes
 * of room, never more). 0 with *ret_got (length, or fewer for a short reply);
 * -EAGAIN for a failure worth retrying (connection lost, timeout, 5xx);
 * another -errno to give up. why says what happened (safe to log).
 */
typedef int (*agent_fetch_fn)(void *userdata, uint64_t offset, size_t length, uint8_t *buf, size_t *ret_got,
                              char *why, size_t why_cap);

struct agent_install_progress {
        uint64_t done_bytes;            /* bytes of the disk artifact verified and written */
        uint64_t total_bytes;           /* bytes of the disk artifact */
        uint64_t rate_bytes_per_s;      /* this run's average */
        uint64_t eta_s;                 /* UINT64_MAX while the rate is unknown */
        size_t next_chunk, n_chunks;
};

typedef void (*agent_progress_fn)(void *userdata, const struct agent_install_progress *p);

struct agent_install_options {
        const uint8_t *manifest;        /* manifest.json as fetched, unparsed */
        size_t manifest_len;
        const uint8_t *sig;             /* manifest.json.sig as fetched */
        size_t sig_len;
        uint8_t manifest_sha256[MANIFEST_SHA256_BYTES];         /* what metald said: nothing else is installed */
        const struct manifest_key *keys;                        /* trusted, from the initramfs */
        size_t n_keys;
        const char *target;             /* a block device or a regular file */
        const char *config_json;        /* the machine configuration; NULL writes no record */
        uint64_t config_offset;         /* the image's disk.config range: past the first MiB, inside raw_size */
        uint64_t config_length;         /* at least AGENT_CONFIG_MAX_RECORD */
        bool config_from_manifest;      /* instead, the verified manifest's disk.config; none there: no record */
        const char *arch;               /* NULL: this machine's (uname -m) */
        int64_t now;                    /* unix seconds, for the expiry check */
        agent_fetch_fn fetch;
        void *fetch_userdata;
        agent_progress_fn progress;     /* may be NULL */
        void *progress_userdata;
        uint64_t progress_interval_usec;        /* 0: AGENT_INSTALL_PROGRESS_S */
        const char *state_file;         /* NULL: no resume across restarts (a tmpfs path) */
        uint64_t backoff_min_usec;      /* 0: AGENT_INSTALL_BACKOFF_MIN_USEC */
        unsigned max_attempts;          /* per chunk; 0: AGENT_INSTALL_FETCH_ATTEMPTS */
        const atomic_bool *cancel;      /* may be NULL; once true, the install stops before the next chunk (-ECANCELED) */
};

struct agent_install_result {
        size_t chunks_written;          /* this run */
        size_t resumed_at;              /* the first chunk fetched when a state file said where to resume; else 0 */
        uint64_t wire_bytes;            /* fetched and verified this run */
        unsigned retries;               /* failed fetches that were tried again */
        long failed_chunk;              /* the chunk the install stopped at, -1 when none */
        char why[512];                  /* what failed, naming the step; safe to log */
};

/*
 * Installs the image: signature (before anything else is read), digest of
 * the manifest, parse, expiry, architecture, size; wipes the first and last
 * MiB; writes every chunk verified; zeroes the unmapped ranges; writes the
 * configuration record; then the first MiB. 0 when the whole image is on the
 * target and synced. On any failure the first MiB stays zero, *ret says why
 * (also on success, *ret is filled) and a negative errno is returned:
 * -EBADMSG bad signature or chunk digest, -ENOKEY no trusted key,
 * -EKEYREJECTED wrong manifest digest, -EKEYEXPIRED expired, -EXDEV wrong
 * architecture, -ENOSPC target too small, else the failing call's errno.
 */
int agent_install(const struct agent_install_options *o, struct agent_install_result *ret);

/* The trusted keys: every *.pub (PEM) file of dir, in name order; -ENOKEY when there is none. */
int agent_keys_load(const char *dir, struct manifest_key *keys, size_t cap, size_t *ret_n);

/* uname -m as an image arch: x86_64, arm64 (from aarch64); -EXDEV for anything else. */
int agent_arch_from_machine(const char *machine, const char **ret);

/*
 * One disk chunk from its bytes in the disk file: 0 when wire (wire_len
 * bytes) has the chunk's size and digest and decodes to exactly
 * chunk->length bytes in raw (raw_cap bytes of room; for "none" raw may be
 * wire itself, nothing is copied then). -EBADMSG when the size or digest
 * does not match (checked first: nothing is decompressed before the digest
 * matched), -EPROTO when verified bytes are not one zstd frame of exactly
 * chunk->length bytes, -ENOBUFS when raw is too small. dctx may be NULL (one
 * is made for the call).
 */
int agent_chunk_decode(const struct manifest_chunk *chunk, enum manifest_compression comp, const uint8_t *wire,
                       size_t wire_len, uint8_t *raw, size_t raw_cap, struct ZSTD_DCtx_s *dctx);

/* The machine configuration the installed system reads: {"hostname":"..."}, a lower-case RFC 1123 name; -EINVAL otherwise. */
int agent_config_json(const char *hostname, struct buf *out);

/*
 * The configuration record (docs/IMAGES.md, "The configuration partition"):
 * magic, length, reserved, digest, reserved, the JSON, zeros to a multiple of
 * AGENT_CONFIG_ALIGN. parse returns the JSON inside
 * the record (pointing into data); -EBADMSG when data is not a whole record.
 */
#define AGENT_CONFIG_MAGIC              "METALD-CFG/1\n\0\0\0"
#define AGENT_CONFIG_MAGIC_BYTES        16
#define AGENT_CONFIG_HEADER_BYTES       (AGENT_CONFIG_MAGIC_BYTES + 4 + 4 + MANIFEST_SHA256_BYTES + 8)
int agent_config_record_build(const char *json, size_t len, struct buf *out);
int agent_config_record_parse(const void *data, size_t len, const char **ret_json, size_t *ret_json_len);

/* The libcurl fetcher: ranges of url (the disk artifact), plain HTTP, each reply checked (agent_install_http.c). */
struct agent_http_fetcher;
int agent_http_fetcher_new(const char *url, struct agent_http_fetcher **ret);
void agent_http_fetcher_free(struct agent_http_fetcher *f);
/* An agent_fetch_fn; userdata is the fetcher. */
int agent_http_fetch(void *userdata, uint64_t offset, size_t length, uint8_t *buf, size_t *ret_got, char *why,
                     size_t why_cap);
/* "bytes FIRST-LAST/TOTAL" (the value of Content-Range); -EBADMSG otherwise. */
int agent_content_range_parse(const char *s, size_t len, uint64_t *ret_first, uint64_t *ret_last,
                              uint64_t *ret_total);

/* What both metald-agent run and metald-agent install set up for agent_install() (agent_install_setup.c). */
struct agent_install_setup {
        struct manifest_key keys[IMAGE_MAX_KEYS];
        size_t n_keys;
        struct agent_http_fetcher *fetcher;     /* of URL/disk */
        struct buf config;                      /* the configuration JSON; empty without a host name */
};
/* 64 lower-case hex digits; -EINVAL otherwise. */
int agent_sha256_from_hex(const char *s, uint8_t ret[MANIFEST_SHA256_BYTES]);
/*
 * Checks url (where the image's files are) and hostname (NULL: no
 * configuration record), makes the fetcher of URL/disk and loads the
 * trusted keys of keys_dir. -EINVAL for url or hostname, -ENOKEY when
 * keys_dir has no key, else -errno; why says what (safe to log).
 */
int agent_install_setup(struct agent_install_setup *s, const char *keys_dir, const char *url, const char *hostname,
                        char *why, size_t why_cap);
/* Points o's keys, fetcher and configuration at s, which must outlive the install. */
void agent_install_setup_apply(const struct agent_install_setup *s, struct agent_install_options *o);
void agent_install_setup_free(struct agent_install_setup *s);

/* metald-agent install ARGS (argv[0] is "install"): the install on its own, for operators and tests; an exit code. */
int agent_install_command(int argc, char **argv);
