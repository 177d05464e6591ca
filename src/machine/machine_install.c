/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Installing images: which image an approved machine gets (the catalog under
 * state_dir), the queue of images.max_concurrent_installs, and what the
 * install events leave behind. Slots and progress live in memory: after a
 * restart an approved machine asks again and an imaging one reports again.
 */
#include <stdio.h>
#include <stdlib.h>

#include "metald/image.h"
#include "metald/log.h"
#include "metald/util.h"
#include "registry_private.h"

static void image_ref(const char *name, uint64_t version, char *out, size_t cap)
{
        if (version)
                snprintf(out, cap, "%s:%llu", name, (unsigned long long)version);
        else
                snprintf(out, cap, "%s", name);
}

/* Looks name (pinned version want; 0: the newest) up in the catalog into e. */
static void catalog_lookup(const char *state_dir, const char *name, uint64_t want, struct reg_image *e)
{
        _cleanup_free_ uint8_t *data = NULL;
        uint8_t sha[MANIFEST_SHA256_BYTES];
        const struct manifest_artifact *disk;
        struct manifest m;
        uint64_t v = want;
        char why[256];
        size_t len;
        int r;

        e->verdict = INSTALL_NOT_IMPORTED;
        if (v == 0 && image_newest(state_dir, name, &v) < 0)
                return;
        r = image_read_file(state_dir, name, v, IMAGE_MANIFEST_FILE, IMAGE_MAX_MANIFEST_BYTES, &data, &len);
        if (r == -ENOENT || r == -ENOTDIR)
                return;
        e->version = v;
        e->verdict = INSTALL_UNUSABLE;
        if (r < 0 || manifest_sha256(data, len, sha) < 0 || manifest_parse(data, len, &m, why, sizeof(why)) < 0)
                return;
        disk = &m.artifacts[MANIFEST_DISK];
        if (strcmp(m.name, name) == 0 && m.version == v && disk->present) {
                e->verdict = INSTALL_GO;
                e->expires = m.expires;
                e->disk_size = disk->size;
                manifest_hex(sha, MANIFEST_SHA256_BYTES, e->sha256);
        }
        manifest_free(&m);
}

/* Image name (version want, 0: the newest) as the catalog holds it, looked up again after IMAGE_CATALOG_CACHE_S. */
static const struct reg_image *image_of(struct registry *r, const char *name, uint64_t want, int64_t now)
{
        struct reg_image *e = NULL, *oldest = &r->images[0];

        for (size_t i = 0; i < ARRAY_SIZE(r->images) && !e; i++) {
                struct reg_image *c = &r->images[i];

                if (c->checked_at && c->want == want && strcmp(c->name, name) == 0)
                        e = c;
                else if (c->checked_at < oldest->checked_at)
                        oldest = c;
        }
        if (e && now >= e->checked_at && now - e->checked_at < IMAGE_CATALOG_CACHE_S)
                return e;
        if (!e)
                e = oldest;
        *e = (struct reg_image){ .want = want, .checked_at = MAX(now, 1) };
        str_copy(e->name, sizeof(e->name), name);
        catalog_lookup(r->cfg->state_dir, name, want, e);
        return e;
}

/*
 * Whether m could be told to install now, and with what: its own image or
 * its profile's (machine_image()); *ret_img is set from INSTALL_NOT_IMPORTED on.
 */
static enum install_verdict candidate(struct registry *r, const struct store_machine *m, int64_t now,
                                      const struct profile **ret_p, const struct reg_image **ret_img)
{
        const char *tie, *name;
        const struct profile *p = reg_profile_of(r, m, &tie);
        const struct reg_image *img;
        uint64_t want;

        *ret_p = p && !tie ? p : NULL;
        if (!p || tie)
                return INSTALL_NONE;
        name = machine_image(m, p, &want);
        if (!*name)
                return INSTALL_NONE;
        if (strcmp(p->install_mode, "diskless") == 0)
                return INSTALL_DISKLESS;
        *ret_img = img = image_of(r, name, want, now);
        if (img->verdict == INSTALL_GO && img->expires <= now)
                return INSTALL_EXPIRED;
        return img->verdict;
}

static struct reg_install *install_find(struct registry *r, int64_t id)
{
        for (size_t i = 0; i < ARRAY_SIZE(r->installs); i++)
                if (r->installs[i].id == id)
                        return &r->installs[i];
        return NULL;
}

const struct reg_install *reg_install_of(const struct registry *r, int64_t id)
{
        return install_find((struct registry *)r, id);
}

static bool grant_live(const struct reg_install *g, int64_t now)
{
        return g && !g->started && now >= g->granted_at && now - g->granted_at < IMAGE_INSTALL_GRACE_S;
}

struct queue_scan {
        struct registry *r;
        int64_t now;
        struct reg_queue *q;
};

static int queue_one(const struct store_machine *m, void *u)
{
        struct queue_scan *s = u;
        struct reg_queue *q = s->q;
        struct reg_install *g = install_find(s->r, m->id);
        const struct reg_image *img;
        const struct profile *p;

        if (g && (m->state == MS_APPROVED || m->state == MS_IMAGING))
                g->seen = true;
        if (m->state == MS_IMAGING || (m->state == MS_APPROVED && grant_live(g, s->now))) {
                q->active++;
                return 0;
        }
        if (m->state != MS_APPROVED || candidate(s->r, m, s->now, &p, &img) != INSTALL_GO)
                return 0;
        if (q->n == q->cap) {
                size_t cap = q->cap ? 2 * q->cap : 64;
                struct reg_queue_entry *v = reallocarray(q->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                q->v = v;
                q->cap = cap;
        }
        q->v[q->n++] = (struct reg_queue_entry){ m->id, m->state_since };
        return 0;
}

/* Oldest approval first; the id keeps machines approved in the same second in a stable order. */
static int queue_cmp(const void *a, const void *b)
{
        const struct reg_queue_entry *x = a, *y = b;

        if (x->since != y->since)
                return x->since < y->since ? -1 : 1;
        return x->id < y->id ? -1 : x->id > y->id;
}

int reg_queue_build(struct registry *r, int64_t now, struct reg_queue *ret)
{
        struct reg_queue q = { 0 };
        struct queue_scan s = { r, now, &q };
        int e;

        for (size_t i = 0; i < ARRAY_SIZE(r->installs); i++)
                r->installs[i].seen = false;
        if ((e = store_machine_foreach(r->store, queue_one, &s)) < 0) {
                free(q.v);
                return e;
        }
        /* a machine that left approved and imaging no longer holds anything */
        for (size_t i = 0; i < ARRAY_SIZE(r->installs); i++)
                if (r->installs[i].id && !r->installs[i].seen)
                        r->installs[i] = (struct reg_install){ 0 };
        if (q.n)
                qsort(q.v, q.n, sizeof(*q.v), queue_cmp);       /* q.v is NULL when nothing waits */
        *ret = q;
        return 0;
}

void reg_queue_free(struct reg_queue *q)
{
        free(q->v);
        *q = (struct reg_queue){ 0 };
}

/* The instruction's image: the catalog's facts and what the profile says about the machine. */
static int fill_image(const struct registry *r, const struct store_machine *m, const struct profile *p,
                      const char *name, uint64_t version, const char *sha256, uint64_t size,
                      struct instruction_image *ret)
{
        if (!*r->boot_base_url)
                return -EAGAIN;
        *ret = (struct instruction_image){ .version = version, .size = size, .allow_removable = p->allow_removable };
        str_copy(ret->name, sizeof(ret->name), name);
        str_copy(ret->sha256, sizeof(ret->sha256), sha256);
        snprintf(ret->url, sizeof(ret->url), "%s%s%s/%llu", r->boot_base_url, IMAGE_HTTP_PREFIX, name,
                 (unsigned long long)version);
        profile_disk_rule(p, ret->disk, sizeof(ret->disk));
        str_copy(ret->hostname, sizeof(ret->hostname), m->name);
        return 0;
}

/* A slot for m: its old entry or a free one; NULL when all are taken. */
static struct reg_install *slot_for(struct registry *r, int64_t id)
{
        struct reg_install *g = install_find(r, id);

        return g ? g : install_find(r, 0);
}

/* Where m stands in the queue: 0 when it may start now, else its position of *ret_queued. */
static unsigned queue_position(const struct registry *r, const struct reg_queue *q, int64_t id, unsigned *ret_queued)
{
        unsigned max = MAX(r->cfg->images.max_concurrent_installs, 1u);
        size_t free_slots = q->active < max ? max - q->active : 0, rank = 0, n = q->n;

        while (rank < q->n && q->v[rank].id != id)
                rank++;
        if (rank == q->n)
                n++;                    /* not in the snapshot: behind everyone in it */
        if (rank < free_slots)
                return 0;
        *ret_queued = (unsigned)(n - free_slots);
        return (unsigned)(rank + 1 - free_slots);
}

static void approved_facts(struct registry *r, const struct store_machine *m, int64_t now, bool grant,
                           const struct reg_queue *snapshot, struct install_facts *f)
{
        struct reg_install *g = install_find(r, m->id);
        const struct reg_image *img = NULL;
        const struct profile *p;
        struct reg_queue own = { 0 };
        const struct reg_queue *q = snapshot;

        uint64_t want;
        const char *name;

        f->verdict = candidate(r, m, now, &p, &img);
        name = machine_image(m, p, &want);
        image_ref(name, want, f->ref, sizeof(f->ref));
        if (f->verdict == INSTALL_EXPIRED)
                f->expired_at = img->expires;
        if (p && grant_live(g, now)) {
                /* told already: the same image until it starts or the grace runs out */
                f->verdict = fill_image(r, m, p, g->name, g->version, g->sha256, g->disk_size, &f->image) < 0
                                     ? INSTALL_NO_URL : INSTALL_GO;
                return;
        }
        if (f->verdict != INSTALL_GO)
                return;
        if (!q && reg_queue_build(r, now, &own) < 0) {
                f->verdict = INSTALL_QUEUED;
                f->position = f->queued = 1;
                return;
        }
        if (!q)
                q = &own;
        f->position = queue_position(r, q, m->id, &f->queued);
        reg_queue_free(&own);
        if (f->position) {
                f->verdict = INSTALL_QUEUED;
                return;
        }
        if (fill_image(r, m, p, img->name, img->version, img->sha256, img->disk_size, &f->image) < 0) {
                f->verdict = INSTALL_NO_URL;
                return;
        }
        if (!grant)
                return;
        if (!(g = slot_for(r, m->id))) {
                f->verdict = INSTALL_QUEUED;    /* every entry is taken: never more than there is room for */
                f->position = f->queued = 1;
                return;
        }
        *g = (struct reg_install){ .id = m->id, .granted_at = now, .version = img->version,
                                   .disk_size = img->disk_size };
        str_copy(g->name, sizeof(g->name), img->name);
        str_copy(g->sha256, sizeof(g->sha256), img->sha256);
}

static void imaging_facts(struct registry *r, const struct store_machine *m, struct install_facts *f)
{
        const struct reg_install *g = install_find(r, m->id);
        const char *tie;
        const struct profile *p = reg_profile_of(r, m, &tie);

        if (!g || !*g->name)
                return;
        f->progress = g->progress;
        if (p && !tie)
                (void)fill_image(r, m, p, g->name, g->version, g->sha256, g->disk_size, &f->image);
        if (!*f->image.name) {
                str_copy(f->image.name, sizeof(f->image.name), g->name);
                f->image.version = g->version;
        }
}

void reg_instruction(struct registry *r, const struct store_machine *m, int64_t now, bool grant,
                     const struct reg_queue *q, struct instruction *ret)
{
        struct install_facts f = { .verdict = INSTALL_NONE };
        const char *tie;
        const struct profile *p = reg_profile_of(r, m, &tie);

        r->last_now = MAX(r->last_now, now);
        if (m->state == MS_APPROVED)
                approved_facts(r, m, now, grant, q, &f);
        else if (m->state == MS_IMAGING)
                imaging_facts(r, m, &f);
        machine_instruction(m, p, tie, &f, ret);
}

/* The image an imaging machine installs when nothing was recorded (metald restarted meanwhile). */
static struct reg_install *adopt(struct registry *r, const struct store_machine *m, int64_t now)
{
        const struct reg_image *img = NULL;
        const struct profile *p;
        struct reg_install *g = slot_for(r, m->id);

        if (!g)
                return NULL;
        *g = (struct reg_install){ .id = m->id, .granted_at = now, .started = true };
        if (candidate(r, m, now, &p, &img) == INSTALL_GO) {
                str_copy(g->name, sizeof(g->name), img->name);
                str_copy(g->sha256, sizeof(g->sha256), img->sha256);
                g->version = img->version;
                g->disk_size = img->disk_size;
        }
        return g;
}

void reg_install_event(struct registry *r, const struct store_machine *m, enum machine_event ev, int64_t now)
{
        struct reg_install *g = install_find(r, m->id);

        if (ev == ME_INSTALL_START) {
                if (!g)
                        g = adopt(r, m, now);
                if (g) {
                        g->started = true;
                        g->progress = (struct install_progress){ 0 };
                }
        } else if ((ev == ME_INSTALL_DONE || ev == ME_INSTALL_FAIL) && g) {
                *g = (struct reg_install){ 0 };
        }
}

int reg_install_progress(struct registry *r, const struct store_machine *m, const char *detail)
{
        struct reg_install *g = install_find(r, m->id);
        struct install_progress p = { 0 };
        int e = install_progress_parse(detail, &p);

        if (!g && !(g = adopt(r, m, r->last_now)))
                return -ENOSPC;
        if (e < 0)
                p = (struct install_progress){ .eta_s = UINT64_MAX };
        /* the agent API let only one printable line through */
        str_copy(p.detail, sizeof(p.detail), detail);
        g->progress = p;
        return e;
}

void reg_after_imaged(struct registry *r, struct store_machine *m, int64_t now)
{
        const char *tie;
        const struct profile *p = reg_profile_of(r, m, &tie);

        if (m->state != MS_IMAGED || (p && !tie && *p->cluster))
                return;
        if (reg_apply(r, m, &(struct change){ .ev = ME_NO_CLUSTER, .detail = "the profile names no cluster to join" },
                      now, NULL) < 0)
                log_warning("machine %s: cannot move on to ready", m->name);
}

static int manifest_locked(struct registry *r, int64_t id, bool sig, int64_t now, uint8_t **ret, size_t *ret_len)
{
        struct store_machine m;
        struct reg_install *g;

        if (reg_load(r, id, &m) < 0)
                return -EACCES;
        g = install_find(r, id);
        if (m.state == MS_IMAGING && (!g || !*g->name))
                g = adopt(r, &m, now);
        if (!g || !*g->name || (m.state == MS_APPROVED && !grant_live(g, now)) ||
            (m.state != MS_APPROVED && m.state != MS_IMAGING))
                return -ENOENT;
        return image_read_file(r->cfg->state_dir, g->name, g->version, sig ? IMAGE_SIG_FILE : IMAGE_MANIFEST_FILE,
                               IMAGE_MAX_MANIFEST_BYTES, ret, ret_len);
}

int registry_image_manifest(struct registry *r, int64_t id, bool sig, int64_t now, uint8_t **ret, size_t *ret_len)
{
        int e;

        pthread_mutex_lock(&r->lock);
        e = manifest_locked(r, id, sig, now, ret, ret_len);
        pthread_mutex_unlock(&r->lock);
        return e == -ENOTDIR ? -ENOENT : e;
}
