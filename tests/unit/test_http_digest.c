/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>

#include "metald/http.h"
#include "metald/util.h"
#include "test.h"

static int make_file(const char *name, size_t size, uint8_t fill, char path[256])
{
        uint8_t chunk[4096];
        int fd;

        snprintf(path, 256, "%s/%s", test_tmpdir(), name);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -1;
        memset(chunk, fill, sizeof(chunk));
        for (size_t done = 0; done < size;) {
                size_t n = MIN(sizeof(chunk), size - done);

                if (write(fd, chunk, n) != (ssize_t)n)
                        return -1;
                done += n;
        }
        return fd;
}

static void expected_etag(int fd, size_t size, char etag[HTTP_ETAG_BYTES])
{
        uint8_t md[32], *data = malloc(size ? size : 1);
        unsigned len = 0;

        if (!data || pread(fd, data, size, 0) != (ssize_t)size)
                abort();
        EVP_Digest(data, size, md, &len, EVP_sha256(), NULL);
        free(data);
        etag[0] = '"';
        format_hex(etag + 1, md, 32);
        memcpy(etag + 65, "\"", 2);
}

TEST(http_digest_known_vector)
{
        struct http_file_key key;
        char path[256], etag[HTTP_ETAG_BYTES], scratch[2];
        int fd = make_file("abc", 0, 0, path);

        CHECK(fd >= 0);
        CHECK_EQ(write(fd, "abc", 3), 3);
        CHECK_EQ(http_file_key_from_fd(fd, &key), 0);
        /* a scratch buffer smaller than the file: several reads */
        CHECK_EQ(http_digest_file(fd, &key, scratch, sizeof(scratch), NULL, NULL, etag), 0);
        CHECK_STREQ(etag, "\"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"");
        close(fd);
}

TEST(http_digest_changed_file)
{
        struct http_file_key key;
        char path[256], etag[HTTP_ETAG_BYTES], scratch[64];
        struct timespec ts[2] = { { 0, UTIME_OMIT }, { 12345, 0 } };
        int fd = make_file("changing", 100, 'x', path);

        CHECK(fd >= 0);
        CHECK_EQ(http_file_key_from_fd(fd, &key), 0);
        CHECK_EQ(futimens(fd, ts), 0);
        CHECK_EQ(http_digest_file(fd, &key, scratch, sizeof(scratch), NULL, NULL, etag), -ESTALE);
        /* shorter than the key says */
        CHECK_EQ(http_file_key_from_fd(fd, &key), 0);
        CHECK_EQ(ftruncate(fd, 50), 0);
        CHECK_EQ(http_digest_file(fd, &key, scratch, sizeof(scratch), NULL, NULL, etag), -ESTALE);
        close(fd);
}

struct wake_flag {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        int woken;
};

static void wake(void *arg)
{
        struct wake_flag *w = arg;

        pthread_mutex_lock(&w->lock);
        w->woken++;
        pthread_cond_signal(&w->cond);
        pthread_mutex_unlock(&w->lock);
}

/* Waits up to five seconds for n wake-ups. */
static int wait_woken(struct wake_flag *w, int n)
{
        struct timespec ts;
        int r = 0;

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 5;
        pthread_mutex_lock(&w->lock);
        while (w->woken < n && r == 0)
                r = pthread_cond_timedwait(&w->cond, &w->lock, &ts);
        r = w->woken;
        pthread_mutex_unlock(&w->lock);
        return r;
}

TEST(http_digests_small_inline)
{
        struct http_digests *d = NULL;
        struct http_file_key key;
        char path[256], etag[HTTP_ETAG_BYTES], want[HTTP_ETAG_BYTES];
        struct timespec ts[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
        struct stat st;
        int fd = make_file("small", 1000, 'a', path);

        CHECK(fd >= 0);
        CHECK_EQ(http_digests_new(&d), 0);
        CHECK_EQ(http_file_key_from_fd(fd, &key), 0);
        expected_etag(fd, 1000, want);
        CHECK_EQ(http_digests_get(d, &key, fd, NULL, etag), HTTP_DIGEST_READY);
        CHECK_STREQ(etag, want);
        /* same size and time, other bytes: the cached version answers, proving it is keyed by version */
        CHECK_EQ(fstat(fd, &st), 0);
        CHECK_EQ(pwrite(fd, "b", 1, 0), 1);
        ts[1] = st.st_mtim;
        CHECK_EQ(futimens(fd, ts), 0);
        CHECK_EQ(http_digests_get(d, &key, fd, NULL, etag), HTTP_DIGEST_READY);
        CHECK_STREQ(etag, want);
        http_digests_free(d);
        close(fd);
}

TEST(http_digests_large_waits)
{
        struct wake_flag flag = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
        struct http_digest_waiter w1 = { .wake = wake, .arg = &flag }, w2 = { .wake = wake, .arg = &flag };
        struct http_digests *d = NULL;
        struct http_file_key key;
        char path[256], etag[HTTP_ETAG_BYTES], want[HTTP_ETAG_BYTES];
        size_t size = HTTP_DIGEST_INLINE_MAX_BYTES + 12345;
        int fd = make_file("large", size, 'z', path);

        CHECK(fd >= 0);
        CHECK_EQ(http_digests_new(&d), 0);
        CHECK_EQ(http_file_key_from_fd(fd, &key), 0);
        expected_etag(fd, size, want);
        CHECK_EQ(http_digests_get(d, &key, fd, NULL, etag), HTTP_DIGEST_MISS);
        /* two requests wait for the same job, or the second finds it done */
        CHECK_EQ(http_digests_get(d, &key, fd, &w1, etag), HTTP_DIGEST_PENDING);
        if (http_digests_get(d, &key, fd, &w2, etag) == HTTP_DIGEST_PENDING)
                CHECK_EQ(wait_woken(&flag, 2), 2);
        else
                CHECK_EQ(wait_woken(&flag, 1), 1);
        CHECK_EQ(http_digests_get(d, &key, fd, NULL, etag), HTTP_DIGEST_READY);
        CHECK_STREQ(etag, want);
        CHECK_EQ(http_digests_busy_since(d), 0);
        http_digests_free(d);
        close(fd);
}

TEST(http_digests_failure_and_stop)
{
        struct wake_flag flag = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0 };
        struct http_digest_waiter w = { .wake = wake, .arg = &flag };
        struct http_file_key key = { .size = HTTP_DIGEST_INLINE_MAX_BYTES + 1 };
        struct http_digests *d = NULL;
        char etag[HTTP_ETAG_BYTES];
        int p[2];

        CHECK_EQ(pipe(p), 0);
        CHECK_EQ(http_digests_new(&d), 0);
        /* a pipe cannot be read at an offset: the job fails, the waiter is still woken */
        CHECK_EQ(http_digests_get(d, &key, p[0], &w, etag), HTTP_DIGEST_PENDING);
        CHECK_EQ(wait_woken(&flag, 1), 1);
        CHECK_EQ(http_digests_get(d, &key, p[0], NULL, etag), HTTP_DIGEST_MISS);
        http_digests_stop(d);
        CHECK_EQ(http_digests_get(d, &key, p[0], &w, etag), HTTP_DIGEST_UNAVAILABLE);
        http_digests_free(d);
        close(p[0]);
        close(p[1]);
}

TEST(http_digest_sparse_file)
{
        struct http_file_key key;
        char path[256], etag[HTTP_ETAG_BYTES], want[HTTP_ETAG_BYTES], scratch[65536];
        size_t size = 3 << 20;
        int fd = make_file("sparse", 0, 0, path);

        /* holes at the start, between the two data blocks and at the end */
        CHECK(fd >= 0);
        CHECK_EQ(ftruncate(fd, (off_t)size), 0);
        CHECK_EQ(pwrite(fd, "data", 4, 1 << 20), 4);
        CHECK_EQ(pwrite(fd, "more", 4, (2 << 20) + 100), 4);
        CHECK_EQ(http_file_key_from_fd(fd, &key), 0);
        expected_etag(fd, size, want);
        CHECK_EQ(http_digest_file(fd, &key, scratch, sizeof(scratch), NULL, NULL, etag), 0);
        CHECK_STREQ(etag, want);
        close(fd);
}
