/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include "metald/http.h"
#include "metald/util.h"

#define HTTP_DIGEST_INLINE_CHUNK (32 * 1024)    /* stack buffer of a request thread hashing a small file */

struct digest_entry {
        struct http_file_key key;
        uint64_t used;                  /* LRU tick; 0 = empty way */
        char etag[HTTP_ETAG_BYTES];
};

struct digest_job {
        bool queued, running;
        uint64_t seq;                   /* FIFO order */
        struct http_file_key key;
        int fd;                         /* our own duplicate */
        struct http_digest_waiter *waiters;
};

struct http_digests {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t thread;
        bool thread_started;
        _Atomic bool stopping;
        uint64_t tick, seq;
        _Atomic uint64_t progress;      /* worker: last chunk read, 0 when idle */
        struct digest_entry cache[HTTP_DIGEST_CACHE_SETS][HTTP_DIGEST_CACHE_WAYS];
        struct digest_job jobs[HTTP_DIGEST_MAX_JOBS];
        uint8_t *scratch;               /* the worker's read buffer */
};

static bool key_eq(const struct http_file_key *a, const struct http_file_key *b)
{
        return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns;
}

static size_t key_set(const struct http_file_key *k)
{
        uint64_t h = 1469598103934665603ULL;
        const uint64_t v[] = { k->dev, k->ino, k->size, (uint64_t)k->mtime_ns };

        for (size_t i = 0; i < ARRAY_SIZE(v); i++)
                h = (h ^ v[i]) * 1099511628211ULL;
        return (size_t)(h >> 32) % HTTP_DIGEST_CACHE_SETS;
}

int http_file_key_from_fd(int fd, struct http_file_key *ret)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        *ret = (struct http_file_key){
                .dev = (uint64_t)st.st_dev, .ino = (uint64_t)st.st_ino, .size = (uint64_t)st.st_size,
                .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
        };
        return 0;
}

static void etag_from_md(const uint8_t md[32], char etag[HTTP_ETAG_BYTES])
{
        etag[0] = '"';
        format_hex(etag + 1, md, 32);
        etag[65] = '"';
        etag[66] = '\0';
}

static void note_progress(_Atomic uint64_t *progress)
{
        if (progress)
                atomic_store_explicit(progress, now_monotonic_usec(), memory_order_relaxed);
}

/* The hole [off, end) of a sparse file: zeros, hashed without reading (or caching) them. */
static int digest_zeros(EVP_MD_CTX *ctx, uint64_t off, uint64_t end, uint8_t *buf, size_t cap,
                        _Atomic uint64_t *progress, _Atomic bool *cancel)
{
        memset(buf, 0, cap);
        while (off < end) {
                size_t n = (size_t)MIN((uint64_t)cap, end - off);

                if (EVP_DigestUpdate(ctx, buf, n) != 1)
                        return -EIO;
                off += n;
                note_progress(progress);
                if (cancel && atomic_load_explicit(cancel, memory_order_relaxed))
                        return -ECANCELED;
        }
        return 0;
}

/* Where the data at or after off starts and ends; the whole rest when the file system cannot say. */
static void data_extent(int fd, uint64_t off, uint64_t size, uint64_t *ret_start, uint64_t *ret_end)
{
        off_t data = lseek(fd, (off_t)off, SEEK_DATA), hole;

        *ret_start = off;
        *ret_end = size;
        if (data < 0) {
                if (errno == ENXIO)
                        *ret_start = size;      /* only a hole remains */
                return;
        }
        hole = lseek(fd, data, SEEK_HOLE);
        *ret_start = MIN((uint64_t)data, size);
        if (hole > data)
                *ret_end = MIN((uint64_t)hole, size);
}

static int digest_update(EVP_MD_CTX *ctx, int fd, const struct http_file_key *key, uint8_t *buf, size_t cap,
                         _Atomic uint64_t *progress, _Atomic bool *cancel)
{
        uint64_t data = 0, data_end = 0;
        int r;

        for (uint64_t off = 0; off < key->size;) {
                size_t want;
                ssize_t n;

                if (off >= data_end) {
                        data_extent(fd, off, key->size, &data, &data_end);
                        r = digest_zeros(ctx, off, data, buf, cap, progress, cancel);
                        if (r < 0)
                                return r;
                        off = data;
                        continue;
                }
                want = (size_t)MIN((uint64_t)cap, data_end - off);
                n = pread(fd, buf, want, (off_t)off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ESTALE;         /* shorter than when we looked */
                if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
                        return -EIO;
                off += (uint64_t)n;
                note_progress(progress);
                if (cancel && atomic_load_explicit(cancel, memory_order_relaxed))
                        return -ECANCELED;
        }
        return 0;
}

int http_digest_file(int fd, const struct http_file_key *key, void *scratch, size_t scratch_len,
                     _Atomic uint64_t *progress, _Atomic bool *cancel, char etag[HTTP_ETAG_BYTES])
{
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        struct http_file_key after;
        uint8_t md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        int r;

        if (!ctx)
                return -ENOMEM;
        r = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
        if (r == 0)
                r = digest_update(ctx, fd, key, scratch, scratch_len, progress, cancel);
        if (r == 0 && (EVP_DigestFinal_ex(ctx, md, &md_len) != 1 || md_len != 32))
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        if (r == 0)
                r = http_file_key_from_fd(fd, &after);
        /* a file rewritten in place while we read it has no single digest */
        if (r == 0 && !key_eq(key, &after))
                r = -ESTALE;
        if (r == 0)
                etag_from_md(md, etag);
        return r;
}

static bool cache_lookup(struct http_digests *d, const struct http_file_key *k, char etag[HTTP_ETAG_BYTES])
{
        struct digest_entry *set = d->cache[key_set(k)];

        for (size_t i = 0; i < HTTP_DIGEST_CACHE_WAYS; i++)
                if (set[i].used && key_eq(&set[i].key, k)) {
                        set[i].used = ++d->tick;
                        memcpy(etag, set[i].etag, HTTP_ETAG_BYTES);
                        return true;
                }
        return false;
}

static void cache_insert(struct http_digests *d, const struct http_file_key *k, const char etag[HTTP_ETAG_BYTES])
{
        struct digest_entry *set = d->cache[key_set(k)], *victim = &set[0];

        for (size_t i = 0; i < HTTP_DIGEST_CACHE_WAYS; i++) {
                if (set[i].used && key_eq(&set[i].key, k)) {
                        victim = &set[i];
                        break;
                }
                if (set[i].used < victim->used)
                        victim = &set[i];
        }
        victim->key = *k;
        victim->used = ++d->tick;
        memcpy(victim->etag, etag, HTTP_ETAG_BYTES);
}

static struct digest_job *job_find(struct http_digests *d, const struct http_file_key *k)
{
        for (size_t i = 0; i < HTTP_DIGEST_MAX_JOBS; i++)
                if (d->jobs[i].queued && key_eq(&d->jobs[i].key, k))
                        return &d->jobs[i];
        return NULL;
}

static struct digest_job *job_next(struct http_digests *d)
{
        struct digest_job *best = NULL;

        for (size_t i = 0; i < HTTP_DIGEST_MAX_JOBS; i++)
                if (d->jobs[i].queued && !d->jobs[i].running && (!best || d->jobs[i].seq < best->seq))
                        best = &d->jobs[i];
        return best;
}

/* Queues a job for k with its first waiter; false when the queue is full or fd cannot be duplicated. */
static bool job_add(struct http_digests *d, const struct http_file_key *k, int fd, struct http_digest_waiter *w)
{
        for (size_t i = 0; i < HTTP_DIGEST_MAX_JOBS; i++) {
                struct digest_job *j = &d->jobs[i];
                int copy;

                if (j->queued)
                        continue;
                copy = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (copy < 0)
                        return false;
                *j = (struct digest_job){ .queued = true, .seq = ++d->seq, .key = *k, .fd = copy, .waiters = w };
                w->next = NULL;
                pthread_cond_signal(&d->cond);
                return true;
        }
        return false;
}

static void wake_all(struct http_digest_waiter *w)
{
        while (w) {
                struct http_digest_waiter *next = w->next;      /* w may be gone once woken */

                w->wake(w->arg);
                w = next;
        }
}

enum http_digest_state http_digests_get(struct http_digests *d, const struct http_file_key *key, int fd,
                                        struct http_digest_waiter *w, char etag[HTTP_ETAG_BYTES])
{
        uint8_t scratch[HTTP_DIGEST_INLINE_CHUNK];
        enum http_digest_state state = HTTP_DIGEST_UNAVAILABLE;
        struct digest_job *j;

        pthread_mutex_lock(&d->lock);
        if (cache_lookup(d, key, etag))
                state = HTTP_DIGEST_READY;
        else if (atomic_load(&d->stopping))
                state = HTTP_DIGEST_UNAVAILABLE;
        else if (key->size <= HTTP_DIGEST_INLINE_MAX_BYTES || !w)
                state = HTTP_DIGEST_MISS;               /* small files are hashed below, without the lock */
        else if ((j = job_find(d, key))) {
                w->next = j->waiters;
                j->waiters = w;
                state = HTTP_DIGEST_PENDING;
        } else if (job_add(d, key, fd, w))
                state = HTTP_DIGEST_PENDING;
        pthread_mutex_unlock(&d->lock);
        if (state != HTTP_DIGEST_MISS || key->size > HTTP_DIGEST_INLINE_MAX_BYTES)
                return state;
        if (http_digest_file(fd, key, scratch, sizeof(scratch), NULL, NULL, etag) < 0)
                return HTTP_DIGEST_UNAVAILABLE;
        pthread_mutex_lock(&d->lock);
        cache_insert(d, key, etag);
        pthread_mutex_unlock(&d->lock);
        return HTTP_DIGEST_READY;
}

/* Runs one job without the lock; returns its waiters, detached, for the caller to wake. */
static struct http_digest_waiter *run_job(struct http_digests *d, struct digest_job *j)
{
        struct http_digest_waiter *w;
        char etag[HTTP_ETAG_BYTES];
        int r;

        j->running = true;
        atomic_store(&d->progress, now_monotonic_usec());
        pthread_mutex_unlock(&d->lock);
        (void)posix_fadvise(j->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        r = http_digest_file(j->fd, &j->key, d->scratch, HTTP_DIGEST_CHUNK_BYTES, &d->progress, &d->stopping, etag);
        close(j->fd);
        pthread_mutex_lock(&d->lock);
        atomic_store(&d->progress, 0);
        if (r == 0)
                cache_insert(d, &j->key, etag);
        w = j->waiters;
        *j = (struct digest_job){ .fd = -1 };
        return w;
}

static void *digest_thread(void *arg)
{
        struct http_digests *d = arg;

        pthread_mutex_lock(&d->lock);
        while (!atomic_load(&d->stopping)) {
                struct digest_job *j = job_next(d);
                struct http_digest_waiter *w;

                if (!j) {
                        pthread_cond_wait(&d->cond, &d->lock);
                        continue;
                }
                w = run_job(d, j);
                pthread_mutex_unlock(&d->lock);
                wake_all(w);
                pthread_mutex_lock(&d->lock);
        }
        pthread_mutex_unlock(&d->lock);
        return NULL;
}

int http_digests_new(struct http_digests **ret)
{
        struct http_digests *d = calloc(1, sizeof(*d));
        int r;

        if (!d)
                return -ENOMEM;
        d->scratch = malloc(HTTP_DIGEST_CHUNK_BYTES);
        if (!d->scratch) {
                free(d);
                return -ENOMEM;
        }
        for (size_t i = 0; i < HTTP_DIGEST_MAX_JOBS; i++)
                d->jobs[i].fd = -1;
        pthread_mutex_init(&d->lock, NULL);
        pthread_cond_init(&d->cond, NULL);
        r = -pthread_create(&d->thread, NULL, digest_thread, d);
        if (r < 0) {
                http_digests_free(d);
                return r;
        }
        d->thread_started = true;
        *ret = d;
        return 0;
}

void http_digests_stop(struct http_digests *d)
{
        struct http_digest_waiter *all = NULL;

        if (!d || !d->thread_started)
                return;
        pthread_mutex_lock(&d->lock);
        atomic_store(&d->stopping, true);
        pthread_cond_broadcast(&d->cond);
        pthread_mutex_unlock(&d->lock);
        pthread_join(d->thread, NULL);
        d->thread_started = false;
        /* the worker is gone: what is still queued will never run */
        for (size_t i = 0; i < HTTP_DIGEST_MAX_JOBS; i++) {
                struct digest_job *j = &d->jobs[i];
                struct http_digest_waiter *w = j->waiters, *next;

                if (!j->queued)
                        continue;
                close(j->fd);
                for (; w; w = next) {
                        next = w->next;
                        w->next = all;
                        all = w;
                }
                *j = (struct digest_job){ .fd = -1 };
        }
        wake_all(all);
}

void http_digests_free(struct http_digests *d)
{
        if (!d)
                return;
        http_digests_stop(d);
        pthread_cond_destroy(&d->cond);
        pthread_mutex_destroy(&d->lock);
        free(d->scratch);
        free(d);
}

uint64_t http_digests_busy_since(const struct http_digests *d)
{
        return atomic_load_explicit(&((struct http_digests *)d)->progress, memory_order_relaxed);
}
