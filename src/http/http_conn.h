/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Shared by the HTTP layer's files (http_server.c: daemon, limits, routing,
 * access log, heartbeat; http_static.c: artifacts; http_boot.c: the iPXE
 * script route). Nothing outside them includes this.
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

/* Built artifacts are served from the state directory under this path, ahead of http.root. */
#define HTTP_ENROLL_PREFIX "/_metald/enroll/"

enum MHD_Result http_static_serve(struct http_request *req);
/* Whether route() sends path to http_static_serve(). */
bool http_is_static_path(const struct http_service *s, const char *path);
/* Whether conn is served by stream_mhd (a thread of its own). */
bool http_conn_is_stream(const struct http_service *s, struct MHD_Connection *conn);
/* Whether path names a servable file of at least min_bytes (the acceptor's question). */
bool http_static_is_large(const struct http_service *s, const char *path, uint64_t min_bytes);

int http_acceptor_start(struct http_service *s);
void http_acceptor_stop(struct http_service *s);
void http_acceptor_free(struct http_service *s);
/* Whether the acceptor loop has turned recently enough at monotonic time now. */
bool http_acceptor_turning(const struct http_service *s, uint64_t now);
/* MHD_OPTION_NOTIFY_CONNECTION for both daemons; cls is the service. */
void http_on_connection(void *cls, struct MHD_Connection *conn, void **ctx, enum MHD_ConnectionNotificationCode code);
enum MHD_Result http_boot_serve(struct http_request *req);
/* /v1/agent/ and /v1/admin/. */
bool http_api_path(const char *path);
enum MHD_Result http_api_serve(struct http_request *req);
enum MHD_Result http_api_error(struct http_request *req, int status, const char *msg);
/* Reads the admin token file named in the configuration; -errno when unusable. */
int http_admin_token_load(struct http_service *s);
