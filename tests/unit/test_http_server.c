/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP service in-process, on a loopback port, with a raw socket client. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "metald/buf.h"
#include "metald/config.h"
#include "metald/http.h"
#include "metald/http_service.h"
#include "metald/util.h"
#include "test.h"

struct server {
        struct config *cfg;
        struct runtime rt;
        struct http_service *svc;
        uint16_t port;
};

static uint16_t free_port(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                abort();
        close(fd);
        return ntohs(sa.sin_port);
}

static void write_file(const char *name, const char *text)
{
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
                abort();
        close(fd);
}

/* extra: more keys of the http section, "" for none */
static int server_start_with(struct server *s, const char *extra)
{
        char yaml[1024], err[512];

        s->port = free_port();
        snprintf(yaml, sizeof(yaml),
                 "server: { address: 127.0.0.1 }\n"
                 "http: { listen_address: 127.0.0.1, port: %u, root: %s, threads: 2%s }\n"
                 "boot: { enroll: { kernel: vmlinuz, initrd: initrd.img, cmdline: quiet } }\n",
                 s->port, test_tmpdir(), extra);
        if (config_load_string(yaml, "test.yaml", &s->cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "  %s\n", err);
                return -EINVAL;
        }
        s->rt = (struct runtime){ .cfg = s->cfg, .server_ip = INADDR_LOOPBACK };
        return http_service_start(&s->rt, &s->svc);
}

static int server_start(struct server *s)
{
        return server_start_with(s, ", max_per_client: 64");
}

static void server_stop(struct server *s)
{
        http_service_stop(s->svc);
        config_free(s->cfg);
}

static int connect_to(uint16_t port)
{
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct timeval tv = { 10, 0 };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                abort();
        return fd;
}

/* A connection that has sent request (perhaps only part of one) and reads nothing back. */
static int hold(uint16_t port, const char *request)
{
        int fd = connect_to(port);

        if (write(fd, request, strlen(request)) != (ssize_t)strlen(request))
                abort();
        return fd;
}

/* Sends one request and reads the whole answer (the server closes: Connection: close). */
static void exchange(uint16_t port, const char *request, struct buf *resp)
{
        int fd = connect_to(port);
        char chunk[65536];
        ssize_t n;

        buf_reset(resp);
        if (write(fd, request, strlen(request)) != (ssize_t)strlen(request))
                abort();
        while ((n = read(fd, chunk, sizeof(chunk))) > 0)
                if (buf_append(resp, chunk, (size_t)n) < 0)
                        abort();
        close(fd);
}

static unsigned status_of(const struct buf *resp)
{
        unsigned st = 0;

        if (!resp->data || sscanf(resp->data, "HTTP/1.1 %u", &st) != 1)
                return 0;
        return st;
}

/* A header's value, copied; "" when absent. */
static const char *header_of(const struct buf *resp, const char *name, char *out, size_t cap)
{
        char needle[64];
        const char *p, *end;

        snprintf(needle, sizeof(needle), "\r\n%s: ", name);
        out[0] = '\0';
        if (!resp->data || !(p = strcasestr(resp->data, needle)))
                return out;
        p += strlen(needle);
        end = strstr(p, "\r\n");
        snprintf(out, cap, "%.*s", (int)(end ? end - p : 0), p);
        return out;
}

#define GET(path, extra) "GET " path " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" extra "\r\n"

TEST(http_server_routes)
{
        struct server s = { 0 };
        struct buf r = BUF_INIT(8 << 20);
        char v[256];

        write_file("hello.txt", "hello\n");
        write_file("ipxe.efi", "MZ fake");
        CHECK_EQ(server_start(&s), 0);
        exchange(s.port, GET("/healthz", ""), &r);
        CHECK_EQ(status_of(&r), 200);
        CHECK(strstr(r.data, "\r\n\r\nok\n"));
        exchange(s.port, GET("/hello.txt", ""), &r);
        CHECK_EQ(status_of(&r), 200);
        CHECK_STREQ(header_of(&r, "ETag", v, sizeof(v)),
                    "\"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03\"");
        CHECK_STREQ(header_of(&r, "Accept-Ranges", v, sizeof(v)), "bytes");
        exchange(s.port, GET("/ipxe.efi", ""), &r);
        CHECK_STREQ(header_of(&r, "Content-Type", v, sizeof(v)), "application/efi");
        exchange(s.port, GET("/hello.txt", "Range: bytes=1-3\r\n"), &r);
        CHECK_EQ(status_of(&r), 206);
        CHECK_STREQ(header_of(&r, "Content-Range", v, sizeof(v)), "bytes 1-3/6");
        CHECK(strstr(r.data, "\r\n\r\nell"));
        exchange(s.port, GET("/missing", ""), &r);
        CHECK_EQ(status_of(&r), 404);
        exchange(s.port, "POST /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", &r);
        CHECK_EQ(status_of(&r), 405);
        CHECK_STREQ(header_of(&r, "Allow", v, sizeof(v)), "GET, HEAD");
        exchange(s.port, "GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", &r);
        CHECK_EQ(status_of(&r), 413);
        exchange(s.port, GET("/a%00b", ""), &r);
        CHECK_EQ(status_of(&r), 400);
        exchange(s.port, GET("/boot.ipxe", ""), &r);
        CHECK_EQ(status_of(&r), 200);
        CHECK(strstr(r.data, "chain --replace http://127.0.0.1:"));
        exchange(s.port, GET("/boot.ipxe?mac=52-54-00-00-00-01&arch=x86_64&platform=efi", ""), &r);
        CHECK(strstr(r.data, "the enrollment kernel is missing"));
        exchange(s.port, GET("/metrics", ""), &r);
        CHECK_STREQ(header_of(&r, "Content-Type", v, sizeof(v)), "text/plain; version=0.0.4; charset=utf-8");
        CHECK(strstr(r.data, "# TYPE metald_http_requests_total counter"));
        CHECK(strstr(r.data, "metald_http_requests_total{route=\"static\",status=\"2xx\"}"));
        server_stop(&s);
        buf_free(&r);
}

static void make_sparse(const char *name, uint64_t size)
{
        char path[512];
        int fd;

        snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)size) < 0 || pwrite(fd, "end", 3, (off_t)size - 3) != 3)
                abort();
        close(fd);
}

/* A large file, its digest computed by the worker while the request waits, in either daemon. */
static void large_file_waits_for_digest(const char *extra)
{
        struct server s = { 0 };
        struct buf r = BUF_INIT(64 << 20);
        char v[256], etag[256];
        uint64_t hb;

        make_sparse("big", 32 << 20);
        CHECK_EQ(server_start_with(&s, extra), 0);
        hb = http_service_heartbeat(s.svc);
        exchange(s.port, "HEAD /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
        CHECK_EQ(status_of(&r), 200);
        CHECK_STREQ(header_of(&r, "Content-Length", v, sizeof(v)), "33554432");
        header_of(&r, "ETag", etag, sizeof(etag));
        CHECK_EQ(strlen(etag), 66);
        exchange(s.port, GET("/big", "Range: bytes=-3\r\n"), &r);
        CHECK_EQ(status_of(&r), 206);
        CHECK(strstr(r.data, "\r\n\r\nend"));
        CHECK_STREQ(header_of(&r, "ETag", v, sizeof(v)), etag);
        exchange(s.port, GET("/big", ""), &r);
        CHECK_EQ(status_of(&r), 200);
        CHECK(r.len > (32 << 20) && memcmp(r.data + r.len - 3, "end", 3) == 0);
        /* the heartbeat moves while the service is healthy */
        usleep(1500 * 1000);
        CHECK(http_service_heartbeat(s.svc) > hb);
        server_stop(&s);
        buf_free(&r);
}

TEST(http_server_large_file_waits_for_digest)
{
        large_file_waits_for_digest(", stream_connections: 0");
}

TEST(http_server_large_file_waits_for_digest_streamed)
{
        large_file_waits_for_digest(", stream_min_bytes: 1048576");
}

static void stop_while_waiting(const char *extra)
{
        struct server s = { 0 };
        int fd;

        make_sparse("huge", 1ULL << 30);
        CHECK_EQ(server_start_with(&s, extra), 0);
        fd = hold(s.port, GET("/huge", ""));
        usleep(50 * 1000);
        /* the request waits on the digest: stopping must wake it and close it */
        server_stop(&s);
        close(fd);
}

TEST(http_server_stop_while_waiting)
{
        stop_while_waiting(", stream_connections: 0");
}

TEST(http_server_stop_while_streaming_waits)
{
        stop_while_waiting("");
}

/* The counter of connections a daemon started, read from /metrics. */
static long long connections_started(uint16_t port, const char *mode)
{
        struct buf r = BUF_INIT(1 << 20);
        char needle[96];
        const char *p;
        long long n = -1;

        exchange(port, GET("/metrics", ""), &r);
        snprintf(needle, sizeof(needle), "metald_http_connections_total{mode=\"%s\"} ", mode);
        if (r.data && (p = strstr(r.data, needle)))
                n = strtoll(p + strlen(needle), NULL, 10);
        buf_free(&r);
        return n;
}

/* Whether the server closed fd (within the socket's receive timeout) without an answer. */
static bool closed_by_server(int fd)
{
        char c;

        return read(fd, &c, 1) <= 0;
}

TEST(http_server_routes_connections_by_file_size)
{
        struct server s = { 0 };
        struct buf r = BUF_INIT(8 << 20);
        long long pool, stream;

        write_file("small.txt", "small\n");
        make_sparse("big", 4 << 20);
        CHECK_EQ(server_start_with(&s, ", stream_min_bytes: 1048576, stream_connections: 8"), 0);
        pool = connections_started(s.port, "pool");
        stream = connections_started(s.port, "stream");
        exchange(s.port, GET("/big", ""), &r);
        CHECK_EQ(status_of(&r), 200);
        exchange(s.port, "HEAD /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
        CHECK_EQ(status_of(&r), 200);
        exchange(s.port, GET("/small.txt", ""), &r);
        CHECK_EQ(status_of(&r), 200);
        exchange(s.port, GET("/missing-and-large-enough", ""), &r);
        CHECK_EQ(status_of(&r), 404);
        exchange(s.port, "\r\nGET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
        CHECK_EQ(status_of(&r), 200);
        /* /big three times streamed; small, missing and three /metrics reads (each counts itself) in the pool */
        CHECK_EQ(connections_started(s.port, "stream") - stream, 3);
        CHECK_EQ(connections_started(s.port, "pool") - pool, 5);
        server_stop(&s);
        buf_free(&r);
}

TEST(http_server_streams_are_capped)
{
        struct server s = { 0 };
        struct buf r = BUF_INIT(1 << 20);
        long long pool, stream;
        int held;

        make_sparse("big", 64 << 20);
        CHECK_EQ(server_start_with(&s, ", stream_min_bytes: 1048576, stream_connections: 1"), 0);
        exchange(s.port, "HEAD /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);   /* the digest */
        usleep(200 * 1000);
        pool = connections_started(s.port, "pool");
        stream = connections_started(s.port, "stream");
        held = hold(s.port, GET("/big", ""));
        usleep(300 * 1000);
        /* the one stream thread is taken: the next large file is served from the pool */
        exchange(s.port, GET("/big", "Range: bytes=-3\r\n"), &r);
        CHECK_EQ(status_of(&r), 206);
        /* pool: the range request and three /metrics reads */
        CHECK_EQ(connections_started(s.port, "stream") - stream, 1);
        CHECK_EQ(connections_started(s.port, "pool") - pool, 4);
        close(held);
        server_stop(&s);
        buf_free(&r);
}

TEST(http_server_limits_span_both_daemons)
{
        struct server s = { 0 };
        struct buf r = BUF_INIT(1 << 20);
        int streaming, slow, third;
        long long stream;

        make_sparse("big", 256 << 20);
        CHECK_EQ(server_start_with(&s, ", stream_min_bytes: 1048576, max_per_client: 2, idle_timeout: 2s"), 0);
        stream = connections_started(s.port, "stream");
        usleep(200 * 1000);     /* the client may see the end before the server has counted it closed */
        /* one connection streams (and is not read, so it stays), one sits in the pool mid-request */
        streaming = hold(s.port, GET("/big", ""));
        slow = hold(s.port, "GET /healthz HTTP/1.1\r\n");
        usleep(300 * 1000);
        third = connect_to(s.port);
        CHECK(closed_by_server(third));
        close(third);
        /* the idle timeout frees the slow one */
        CHECK(closed_by_server(slow));
        close(slow);
        exchange(s.port, GET("/healthz", ""), &r);
        CHECK_EQ(status_of(&r), 200);
        CHECK_EQ(connections_started(s.port, "stream") - stream, 1);
        close(streaming);
        server_stop(&s);
        buf_free(&r);
}

TEST(http_server_closes_silent_connections)
{
        struct server s = { 0 };
        struct timespec t0, t1;
        int fd;

        CHECK_EQ(server_start_with(&s, ", idle_timeout: 1s"), 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        fd = connect_to(s.port);
        CHECK(closed_by_server(fd));
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* closed by the acceptor's timeout, not by the client's 10 s receive timeout */
        CHECK(t1.tv_sec - t0.tv_sec < 8);
        close(fd);
        server_stop(&s);
}

/* The catalog under state_dir is served below IMAGE_HTTP_PREFIX: the artifacts, nothing else. */
TEST(http_server_serves_the_image_catalog)
{
        static const char *const refused[] = {
                "/_metald/images/debian-worker/7/manifest.json", "/_metald/images/debian-worker/7/manifest.json.sig",
                "/_metald/images/debian-worker/highest", "/_metald/images/debian-worker/7/",
                "/_metald/images/debian-worker/07/disk", "/_metald/images/debian-worker/7/disk/",
                "/_metald/images/debian-worker/7/../7/disk", "/_metald/images/../images/debian-worker/7/disk",
                "/_metald/images/debian-worker/7/%2e%2e/7/disk", "/_metald/images/..%2fdebian-worker/7/disk",
                "/_metald/images/Debian/7/disk", "/_metald/images/debian-worker/0/disk",
                "/_metald/images/evil/1/disk", "/_metald/images/debian-worker/7/kernel",
        };
        struct server s = { 0 };
        struct buf r = BUF_INIT(8 << 20), req = BUF_INIT(4096);
        char yaml[2048], err[512], dir[512], v[256];
        const char *t = test_tmpdir();

        snprintf(dir, sizeof(dir), "%s/state/images/debian-worker/7", t);
        CHECK_EQ(mkdir_p(dir, 0755), 0);
        snprintf(dir, sizeof(dir), "%s/state/images/evil/1", t);
        CHECK_EQ(mkdir_p(dir, 0755), 0);
        make_sparse("state/images/debian-worker/7/disk", 3 * 1024 * 1024);
        write_file("state/images/debian-worker/7/manifest.json", "{}");
        write_file("state/images/debian-worker/7/manifest.json.sig", "sig");
        write_file("state/images/debian-worker/highest", "7 00\n");
        snprintf(dir, sizeof(dir), "%s/state/images/evil/1/disk", t);
        CHECK_EQ(symlink("/etc/passwd", dir), 0);
        /* the same names below http.root are not what is served */
        snprintf(dir, sizeof(dir), "%s/_metald/images/debian-worker/7", t);
        CHECK_EQ(mkdir_p(dir, 0755), 0);
        write_file("_metald/images/debian-worker/7/kernel", "from http.root");
        s.port = free_port();
        snprintf(yaml, sizeof(yaml),
                 "state_dir: %s/state\nserver: { address: 127.0.0.1 }\n"
                 "http: { listen_address: 127.0.0.1, port: %u, root: %s, threads: 2, max_per_client: 64 }\n",
                 t, s.port, t);
        CHECK_EQ(config_load_string(yaml, "test.yaml", &s.cfg, err, sizeof(err)), 0);
        s.rt = (struct runtime){ .cfg = s.cfg, .server_ip = INADDR_LOOPBACK };
        CHECK_EQ(http_service_start(&s.rt, &s.svc), 0);
        exchange(s.port, GET("/_metald/images/debian-worker/7/disk", "Range: bytes=3145725-\r\n"), &r);
        CHECK_EQ(status_of(&r), 206);
        CHECK_STREQ(header_of(&r, "Content-Range", v, sizeof(v)), "bytes 3145725-3145727/3145728");
        CHECK(strstr(r.data, "\r\n\r\nend"));
        CHECK_STREQ(header_of(&r, "Content-Type", v, sizeof(v)), "application/octet-stream");
        CHECK(*header_of(&r, "ETag", v, sizeof(v)) == '"');
        /* a resumed chunk: If-Range with the ETag gives the range again */
        buf_printf(&req, "GET /_metald/images/debian-worker/7/disk HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                         "Range: bytes=0-4095\r\nIf-Range: %s\r\n\r\n", v);
        exchange(s.port, req.data, &r);
        CHECK_EQ(status_of(&r), 206);
        CHECK_STREQ(header_of(&r, "Content-Range", v, sizeof(v)), "bytes 0-4095/3145728");
        exchange(s.port, GET("/_metald/images/debian-worker/7/disk", ""), &r);
        CHECK_EQ(status_of(&r), 200);
        CHECK_STREQ(header_of(&r, "Content-Length", v, sizeof(v)), "3145728");
        for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
                unsigned st;

                buf_reset(&req);
                buf_printf(&req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", refused[i]);
                exchange(s.port, req.data, &r);
                st = status_of(&r);
                if (st == 200 || st == 206 || st == 0)
                        fprintf(stderr, "  %s: %u\n", refused[i], st);
                CHECK(st == 404 || st == 403 || st == 400);
        }
        server_stop(&s);
        buf_free(&r);
        buf_free(&req);
}
