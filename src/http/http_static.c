/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

#include "metald/fs.h"
#include "metald/image.h"
#include "metald/log.h"
#include "metald/util.h"

#include "http_static.h"

const char *http_content_type(const char *path)
{
        /* edk2 HTTP boot picks the image type from these exact values */
        static const struct { const char *ext, *type; } types[] = {
                { ".efi", "application/efi" },
                { ".iso", "application/vnd.efi-iso" },
                { ".img", "application/vnd.efi-img" },
                { ".ipxe", "text/plain; charset=utf-8" },
                { ".txt", "text/plain; charset=utf-8" },
                { ".tmpl", "text/plain; charset=utf-8" },
                { ".json", "application/json" },
                { ".gz", "application/gzip" },
                { ".xz", "application/x-xz" },
                { ".zst", "application/zstd" },
                { ".tar", "application/x-tar" },
        };
        size_t n = strlen(path);

        for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
                size_t e = strlen(types[i].ext);

                if (n > e && strcasecmp(path + n - e, types[i].ext) == 0 && path[n - e - 1] != '/')
                        return types[i].type;
        }
        return "application/octet-stream";
}

static int open_served_at(const struct http_service *s, const char *path, int *ret_fd);

static unsigned open_status(int r)
{
        switch (r) {
        case -ENOENT:
        case -ENOTDIR:
        case -ENAMETOOLONG:
                return 404;
        case -EXDEV:            /* escapes the root */
        case -ELOOP:            /* a symlink */
        case -EACCES:
        case -EPERM:
        case -EISDIR:
                return 403;
        default:
                return 503;
        }
}

static enum MHD_Result refuse_open(struct http_request *req, int r)
{
        static const char key[] = "http-open";
        unsigned status = open_status(r);

        if (status == 404)
                return http_respond_text(req, status, "not found\n");
        if (status == 403)
                return http_respond_text(req, status, "forbidden\n");
        /* not the client's doing (e.g. out of file descriptors): the operator needs to know */
        if (log_ratelimit_ok(key, sizeof(key)))
                log_warning("http: cannot open an artifact in %s: %s", req->svc->cfg->http.root, strerror(-r));
        return http_respond_text(req, 503, "temporarily unavailable\n");
}

static void resume_connection(void *arg)
{
        MHD_resume_connection(arg);
}

/* A stream thread waits for the digest worker in place: MHD cannot suspend its connection. */
struct blocked_wait {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool done;
};

static void wake_blocked(void *arg)
{
        struct blocked_wait *b = arg;

        pthread_mutex_lock(&b->lock);
        b->done = true;
        pthread_cond_signal(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

static void stream_etag(struct http_request *req, char etag[HTTP_ETAG_BYTES])
{
        struct http_digests *d = req->svc->digests;
        struct blocked_wait b = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false };
        enum http_digest_state st;

        req->waiter = (struct http_digest_waiter){ .wake = wake_blocked, .arg = &b };
        st = http_digests_get(d, &req->key, req->fd, &req->waiter, etag);
        if (st == HTTP_DIGEST_PENDING) {
                /* the worker wakes every waiter, also when it fails or metald stops */
                pthread_mutex_lock(&b.lock);
                while (!b.done)
                        pthread_cond_wait(&b.cond, &b.lock);
                pthread_mutex_unlock(&b.lock);
                st = http_digests_get(d, &req->key, req->fd, NULL, etag);
        }
        if (st != HTTP_DIGEST_READY)
                etag[0] = '\0';
        pthread_cond_destroy(&b.cond);
        pthread_mutex_destroy(&b.lock);
}

/*
 * The file's ETag into etag ("" when it stays unknown). Returns true when the
 * request was suspended to wait for the digest worker: MHD calls the handler
 * again once it is resumed.
 */
static bool file_etag(struct http_request *req, char etag[HTTP_ETAG_BYTES])
{
        struct http_digests *d = req->svc->digests;
        enum http_digest_state st = http_digests_get(d, &req->key, req->fd, NULL, etag);

        if (st == HTTP_DIGEST_READY)
                return false;
        etag[0] = '\0';
        if (st != HTTP_DIGEST_MISS || req->digest_waited)
                return false;
        req->digest_waited = true;
        if (req->stream) {
                stream_etag(req, etag);
                return false;
        }
        /* suspended before the waiter is registered, so the wake-up can never come first */
        MHD_suspend_connection(req->conn);
        req->waiter = (struct http_digest_waiter){ .wake = resume_connection, .arg = req->conn };
        st = http_digests_get(d, &req->key, req->fd, &req->waiter, etag);
        if (st != HTTP_DIGEST_PENDING)
                MHD_resume_connection(req->conn);
        return true;
}

static const char *header(struct http_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static bool add_validators(struct MHD_Response *resp, int64_t mtime, const char *etag)
{
        char date[HTTP_DATE_BYTES];

        http_date_format(mtime, date);
        return MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, date) == MHD_YES &&
               (!*etag || MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag) == MHD_YES);
}

/* A copy of a small body, so that MHD sends it with the header in one write. */
static struct MHD_Response *copied_body(int fd, uint64_t offset, size_t length)
{
        char *data = malloc(length);
        struct MHD_Response *resp;
        size_t done = 0;

        while (data && done < length) {
                ssize_t n = pread(fd, data + done, length - done, (off_t)(offset + done));

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        free(data);     /* shorter than a moment ago: the connection is dropped */
                        return NULL;
                }
                done += (size_t)n;
        }
        if (!data)
                return NULL;
        resp = MHD_create_response_from_buffer(length, data, MHD_RESPMEM_MUST_FREE);
        if (!resp)
                free(data);
        return resp;
}

/*
 * MHD sends the header of a file-descriptor response as a TCP segment of its
 * own before the sendfile(2) body; for bodies of a few kilobytes (scripts,
 * small artifacts) one copy into a single write is cheaper than the second
 * segment. Everything larger is sent zero-copy from the page cache.
 */
static struct MHD_Response *body_response(struct http_request *req, const struct http_decision *dec)
{
        struct MHD_Response *resp;

        if (dec->length == 0)
                return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (!req->is_head && dec->length <= HTTP_COPY_MAX_BYTES)
                return copied_body(req->fd, dec->offset, (size_t)dec->length);
        resp = MHD_create_response_from_fd_at_offset64(dec->length, req->fd, dec->offset);
        if (resp)
                req->fd = -1;           /* MHD owns and closes it now */
        return resp;
}

static enum MHD_Result respond_body(struct http_request *req, const struct http_decision *dec, int64_t mtime,
                                    const char *etag)
{
        const char *path = req->target.path;
        struct MHD_Response *resp = body_response(req, dec);
        char range[80];
        bool ok;

        if (!resp)
                return MHD_NO;
        ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, http_content_type(path)) == MHD_YES &&
             MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes") == MHD_YES &&
             add_validators(resp, mtime, etag);
        if (ok && dec->status == 206) {
                snprintf(range, sizeof(range), "bytes %llu-%llu/%llu", (unsigned long long)dec->offset,
                         (unsigned long long)(dec->offset + dec->length - 1), (unsigned long long)req->key.size);
                ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, range) == MHD_YES;
        }
        if (!ok) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        return http_queue(req, dec->status, resp, dec->length);
}

static enum MHD_Result respond_empty(struct http_request *req, unsigned status, int64_t mtime, const char *etag)
{
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        char range[48];

        if (!resp)
                return MHD_NO;
        if (status == 416) {
                /* RFC 9110 §15.5.17: the current length, so the client can ask again */
                snprintf(range, sizeof(range), "bytes */%llu", (unsigned long long)req->key.size);
                if (MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, range) != MHD_YES) {
                        MHD_destroy_response(resp);
                        return MHD_NO;
                }
        } else if (!add_validators(resp, mtime, etag)) {
                MHD_destroy_response(resp);
                return MHD_NO;
        }
        return http_queue(req, status, resp, 0);
}

/*
 * PREFIX NAME/VERSION/FILE of the catalog as "images/NAME/VERSION/FILE"
 * below state_dir: a valid name, a version as the catalog writes it, and one
 * of the artifacts. The manifest goes to a machine over its session, not here.
 */
static int catalog_path(const char *path, char *ret, size_t cap)
{
        static const char *const files[] = { "kernel", "initrd", "disk", "rootfs" };
        char name[IMAGE_MAX_NAME + 2], vtext[24];
        const char *p = path + strlen(IMAGE_HTTP_PREFIX), *slash = strchr(p, '/'), *file;
        uint64_t version;
        bool known = false;

        if (!slash || (size_t)(slash - p) >= sizeof(name))
                return -ENOENT;
        memcpy(name, p, (size_t)(slash - p));
        name[slash - p] = '\0';
        p = slash + 1;
        if (!image_name_valid(name) || !(slash = strchr(p, '/')) || (size_t)(slash - p) >= sizeof(vtext))
                return -ENOENT;
        memcpy(vtext, p, (size_t)(slash - p));
        vtext[slash - p] = '\0';
        if (vtext[0] == '0' || parse_u64(vtext, 1, IMAGE_MAX_VERSION, &version) < 0)
                return -ENOENT;
        file = slash + 1;
        for (size_t i = 0; i < ARRAY_SIZE(files); i++)
                known |= strcmp(file, files[i]) == 0;
        if (!known)
                return -ENOENT;
        return (size_t)snprintf(ret, cap, "images/%s/%llu/%s", name, (unsigned long long)version, file) < cap
                       ? 0 : -ENAMETOOLONG;
}

static int open_artifact_at(const struct http_service *s, const char *path, int *ret_fd)
{
        char rel[CONFIG_MAX_PATH_BYTES];
        int r;

        if (str_has_prefix(path, IMAGE_HTTP_PREFIX)) {
                if (s->state_fd < 0)
                        return -ENOENT;
                if ((r = catalog_path(path, rel, sizeof(rel))) < 0)
                        return r;
                return fs_open_beneath(s->state_fd, rel, O_RDONLY | O_NONBLOCK, ret_fd);
        }
        return open_served_at(s, path, ret_fd);
}

static int open_served_at(const struct http_service *s, const char *path, int *ret_fd)
{
        bool built = s->enroll_fd >= 0 && str_has_prefix(path, HTTP_ENROLL_PREFIX);
        const char *rel = built ? path + strlen(HTTP_ENROLL_PREFIX) : path + 1;

        /* of the state directory only the current image is served, not its lock or older builds */
        if (built && strcmp(path + 1, s->enroll_initrd) != 0)
                return -ENOENT;
        /* O_NONBLOCK means nothing to a regular file; keeping it spares fs_open_beneath two fcntl(2) calls */
        return fs_open_beneath(built ? s->enroll_fd : s->root_fd, rel, O_RDONLY | O_NONBLOCK, ret_fd);
}

static int open_artifact(struct http_request *req)
{
        int r = open_artifact_at(req->svc, req->target.path, &req->fd);

        if (r < 0)
                return r;
        return http_file_key_from_fd(req->fd, &req->key);
}

bool http_static_is_large(const struct http_service *s, const char *path, uint64_t min_bytes)
{
        _cleanup_close_ int fd = -1;
        struct http_file_key key;

        return open_artifact_at(s, path, &fd) == 0 && http_file_key_from_fd(fd, &key) == 0 && key.size >= min_bytes;
}

enum MHD_Result http_static_serve(struct http_request *req)
{
        struct http_preconditions pre;
        struct http_decision dec;
        char etag[HTTP_ETAG_BYTES];
        int64_t mtime;
        int r;

        if (req->fd < 0 && (r = open_artifact(req)) < 0)
                return refuse_open(req, r);
        if (file_etag(req, etag))
                return MHD_YES;
        mtime = req->key.mtime_ns / 1000000000LL;
        pre = (struct http_preconditions){
                .range = header(req, MHD_HTTP_HEADER_RANGE),
                .if_range = header(req, MHD_HTTP_HEADER_IF_RANGE),
                .if_match = header(req, MHD_HTTP_HEADER_IF_MATCH),
                .if_none_match = header(req, MHD_HTTP_HEADER_IF_NONE_MATCH),
                .if_modified_since = header(req, MHD_HTTP_HEADER_IF_MODIFIED_SINCE),
                .if_unmodified_since = header(req, MHD_HTTP_HEADER_IF_UNMODIFIED_SINCE),
        };
        http_decide(&(struct http_validators){ .size = req->key.size, .mtime = mtime, .etag = *etag ? etag : NULL },
                    &pre, !req->is_head, (int64_t)time(NULL), &dec);
        if (dec.status == 200 || dec.status == 206)
                return respond_body(req, &dec, mtime, etag);
        return respond_empty(req, dec.status, mtime, etag);
}
