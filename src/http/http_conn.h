/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The service, its acceptor and one request, shared by every file of the HTTP
 * service, with the calls every route answers through (http_conn.c).
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <microhttpd.h>

#include "metald/buf.h"
#include "metald/config.h"
#include "metald/http.h"
#include "metald/metrics.h"

/* Whether one MHD thread is inside a metald callback, and since when (0: not). */
struct http_worker_slot {
        _Atomic uint64_t busy_since;
};

/* The acceptor thread and the connection counts it shares with both daemons (http_accept.c). */
struct http_pending;
struct http_acceptor {
        int epoll_fd, stop_fd;
        pthread_t thread;
        bool started, lock_init;
        struct http_pending *head, *tail;       /* waiting for a request line, oldest first */
        uint64_t paused_until;                  /* accept(2) failed for want of resources: retry then */
        _Atomic uint64_t turned_at;             /* the loop's last turn, for the heartbeat */
        pthread_mutex_t lock;                   /* the counts below; MHD threads update them too */
        struct http_client_counts clients;      /* pending + served connections, by client address */
        uint32_t total;                         /* pending + served connections */
        uint32_t streams;                       /* served by stream_mhd */
};

struct http_service {
        const struct config *cfg;
        struct registry *registry;      /* machines: boot decisions and the JSON APIs */
        bool admin_enabled;             /* /v1/admin/ over HTTP: only with control.admin_token_file */
        uint8_t admin_token_hash[32];
        struct MHD_Daemon *mhd;                 /* the epoll thread pool: every connection but streams */
        struct MHD_Daemon *stream_mhd;          /* a thread per connection streaming a large file; NULL: off */
        struct http_acceptor acceptor;
        int root_fd;                    /* http.root, O_PATH */
        int enroll_fd;                  /* the directory of the built enrollment initramfs, or -1 */
        int state_fd;                   /* state_dir, O_PATH: the image catalog below it; -1: not served */
        char enroll_initrd[BOOT_MAX_ARTIFACT_PATH + 1]; /* its path below the base URL, or "" */
        int listen_fd;                  /* read by the acceptor thread only */
        unsigned threads;
        char base_url[BOOT_MAX_URL];     /* what DHCP hands out, minus "/<boot.script>" */
        char script_url[BOOT_MAX_URL];
        char script_path[BOOT_MAX_URL];  /* "/" + boot.script: the script route */
        struct http_digests *digests;
        struct http_worker_slot slots[HTTP_MAX_THREADS + 1];
        _Atomic unsigned n_slots;
        _Atomic uint64_t heartbeat;
        pthread_t timer;
        bool timer_started, stopping, unhealthy;
        pthread_mutex_t timer_lock;
        pthread_cond_t timer_cond;
};

/* One request, from its request line (URI log callback) to its completion callback. */
struct http_request {
        struct http_service *svc;
        struct MHD_Connection *conn;
        uint64_t start_usec;
        bool headers_seen, is_head, uri_too_long, digest_waited;
        bool stream;                    /* on stream_mhd: may block its own thread */
        enum http_route_metric route;
        unsigned status;                /* what metald queued; 0: MHD answered by itself */
        uint64_t body_bytes;            /* what a complete response carries */
        int fd;                         /* the artifact being served, until MHD owns it */
        struct http_file_key key;
        struct http_digest_waiter waiter;
        char method[16];
        char peer[64];
        char note[256];                 /* extra access log text, e.g. the script kind */
        char mac[18];                   /* the machine a boot script was for, "" if none */
        bool api;                       /* /v1/agent/ or /v1/admin/: methods with a body */
        bool body_too_large;
        struct buf body;                /* API request body, capped at API_MAX_BODY */
        uint32_t peer_ip;               /* IPv4 peer, host order; 0 otherwise */
        struct http_target target;
        size_t uri_len;
        char uri[HTTP_MAX_URL_BYTES + 1];
};

/* Queues resp (consumed, may be NULL after a failed create) and records status and size. */
enum MHD_Result http_queue(struct http_request *req, unsigned status, struct MHD_Response *resp,
                           uint64_t body_bytes);
/* A short fixed text/plain answer. */
enum MHD_Result http_respond_text(struct http_request *req, unsigned status, const char *text);
/* An owned buffer (freed by MHD) as the body. */
enum MHD_Result http_respond_buffer(struct http_request *req, unsigned status, char *data, size_t len,
                                    const char *content_type);
/* Whether conn is served by stream_mhd (a thread of its own). */
bool http_conn_is_stream(const struct http_service *s, struct MHD_Connection *conn);

/* Built artifacts are served from the state directory under this path, ahead of http.root. */
#define HTTP_ENROLL_PREFIX "/_metald/enroll/"
