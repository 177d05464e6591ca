/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP service in-process, on a loopback port, with a raw socket client. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "metald/buf.h"
#include "metald/config.h"
#include "metald/http.h"
#include "metald/services.h"
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

static int server_start(struct server *s)
{
        char yaml[1024], err[512];

        s->port = free_port();
        snprintf(yaml, sizeof(yaml),
                 "server: { address: 127.0.0.1 }\n"
                 "http: { listen_address: 127.0.0.1, port: %u, root: %s, threads: 2, max_per_client: 64 }\n"
                 "boot: { enroll: { kernel: vmlinuz, initrd: initrd.img, cmdline: quiet } }\n",
                 s->port, test_tmpdir());
        if (config_load_string(yaml, "test.yaml", &s->cfg, err, sizeof(err)) < 0) {
                fprintf(stderr, "  %s\n", err);
                return -EINVAL;
        }
        s->rt = (struct runtime){ .cfg = s->cfg, .server_ip = INADDR_LOOPBACK };
        return http_service_start(&s->rt, &s->svc);
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

TEST(http_server_large_file_waits_for_digest)
{
        struct server s = { 0 };
        struct buf r = BUF_INIT(64 << 20);
        char v[256], etag[256];
        uint64_t hb;

        make_sparse("big", 32 << 20);
        CHECK_EQ(server_start(&s), 0);
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
        /* the heartbeat moves while the service is healthy */
        usleep(1500 * 1000);
        CHECK(http_service_heartbeat(s.svc) > hb);
        server_stop(&s);
        buf_free(&r);
}

TEST(http_server_stop_while_waiting)
{
        struct server s = { 0 };
        int fd;

        make_sparse("huge", 1ULL << 30);
        CHECK_EQ(server_start(&s), 0);
        fd = connect_to(s.port);
        CHECK(write(fd, GET("/huge", ""), strlen(GET("/huge", ""))) > 0);
        usleep(50 * 1000);
        /* the request is suspended on the digest: stopping must resume and close it */
        server_stop(&s);
        close(fd);
}
