/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "metald/http_query.h"
#include "metald/limits.h"

/*
 * The HTTP server's pure parts: the Range / conditional-request decisions,
 * the acceptor's request-line peek and per-client counts, and the ETag
 * digests. None of them touches a socket or a clock (the digest worker reads
 * the files it is given); the service (src/http/) feeds them what the client
 * sent and acts on the verdict. Target and query parsing is in
 * metald/http_query.h, shared with the boot-script code.
 */

/* What the server knows about the file it is about to send. */
struct http_validators {
        uint64_t size;
        int64_t mtime;                  /* Last-Modified, seconds since the epoch */
        const char *etag;               /* quoted strong tag, NULL when not (yet) known */
};

/* The client's header values, NULL when absent. */
struct http_preconditions {
        const char *range, *if_range;
        const char *if_match, *if_none_match;
        const char *if_modified_since, *if_unmodified_since;
};

struct http_decision {
        unsigned status;                /* 200, 206, 304, 412 or 416 */
        uint64_t offset, length;        /* the bytes to send for 200 and 206 */
};

/*
 * RFC 9110 §13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match,
 * If-Modified-Since, then Range guarded by If-Range. Range is honoured for GET
 * only and only as a single range; several ranges get the whole file (200).
 */
void http_decide(const struct http_validators *v, const struct http_preconditions *p, bool is_get, int64_t now,
                 struct http_decision *ret);

/* "bytes=a-b" etc. against size: 0 (one satisfiable range), -ERANGE (unsatisfiable),
 * -EINVAL (not a valid bytes range: ignore it), -EOPNOTSUPP (several ranges). */
int http_range_parse(const char *s, uint64_t size, uint64_t *ret_offset, uint64_t *ret_length);

/* Whether a comma-separated list of entity tags (or "*") matches etag. */
bool http_etag_match(const char *list, const char *etag, bool weak);

#define HTTP_DATE_BYTES 30              /* "Sun, 06 Nov 1994 08:49:37 GMT" + NUL */
/* IMF-fixdate, RFC 850 and asctime forms; -EINVAL for anything else. */
int http_date_parse(const char *s, int64_t *ret);
void http_date_format(int64_t t, char buf[HTTP_DATE_BYTES]);

/*
 * The acceptor reads a connection's first bytes without consuming them and
 * routes it by the request target. Only GET and HEAD with the whole target
 * in buf qualify: the target (still raw) is returned, else -EINVAL.
 */
int http_request_line_target(const void *buf, size_t n, const char **ret_target, size_t *ret_len);

/*
 * Connections per client IPv4 address, for the per-client limit across both
 * of the server's connection pools. Open addressing, at most max_addrs
 * addresses (add fails with -ENOSPC beyond); not locked.
 */
struct http_client_counts {
        struct { uint32_t addr, count; } *slots;       /* count 0: empty */
        size_t mask, n_addrs, max_addrs;
        unsigned bits;
};
int http_client_counts_init(struct http_client_counts *t, size_t max_addrs);
void http_client_counts_free(struct http_client_counts *t);
uint32_t http_client_count(const struct http_client_counts *t, uint32_t addr);
int http_client_counts_add(struct http_client_counts *t, uint32_t addr);
void http_client_counts_del(struct http_client_counts *t, uint32_t addr);

/* Content-Type for a file name by its extension; application/octet-stream when unknown. */
const char *http_content_type(const char *path);

/*
 * Strong ETags are the SHA-256 of the content, computed once per file version
 * (device, inode, size, modification time) and kept in a bounded cache. Small
 * files are hashed by the requesting thread; larger ones by one worker thread,
 * reading with a fixed buffer, while the request waits (its connection
 * suspended, so no server thread is held).
 */
#define HTTP_ETAG_BYTES 67              /* '"' + 64 hex digits + '"' + NUL */

struct http_file_key {
        uint64_t dev, ino, size;
        int64_t mtime_ns;
};

/* Called once, from the worker thread, when the digest a request waits for is done or abandoned. */
struct http_digest_waiter {
        void (*wake)(void *arg);
        void *arg;
        struct http_digest_waiter *next;
};

enum http_digest_state {
        HTTP_DIGEST_READY,              /* etag filled in */
        HTTP_DIGEST_MISS,               /* not known yet: call again with a waiter */
        HTTP_DIGEST_PENDING,            /* the waiter will be woken */
        HTTP_DIGEST_UNAVAILABLE,        /* not now (queue full, read error, stopping): serve without */
};

struct http_digests;
int http_digests_new(struct http_digests **ret);
/* Abandons queued work and wakes every waiter; lookups that miss afterwards are UNAVAILABLE. */
void http_digests_stop(struct http_digests *d);
void http_digests_free(struct http_digests *d);
/*
 * fd is the open file the key was taken from (it is duplicated for the
 * worker). Without a waiter a miss on a large file is MISS; with one it is
 * queued and PENDING, unless the digest has meanwhile become READY or the
 * queue is full (UNAVAILABLE).
 */
enum http_digest_state http_digests_get(struct http_digests *d, const struct http_file_key *key, int fd,
                                        struct http_digest_waiter *w, char etag[HTTP_ETAG_BYTES]);
/* Monotonic time of the worker's last progress while it has a job, 0 when idle. */
uint64_t http_digests_busy_since(const struct http_digests *d);
/* SHA-256 of size bytes of fd from offset 0, as a quoted ETag; -ESTALE if the file changed meanwhile. */
int http_digest_file(int fd, const struct http_file_key *key, void *scratch, size_t scratch_len,
                     _Atomic uint64_t *progress, _Atomic bool *cancel, char etag[HTTP_ETAG_BYTES]);
int http_file_key_from_fd(int fd, struct http_file_key *ret);
