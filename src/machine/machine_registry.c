/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdio.h>

#include "metald/log.h"
#include "metald/util.h"
#include "registry_private.h"

#define REGISTRY_CAS_RETRIES 8          /* a lost race is retried from the fresh row this often */

int registry_open(const char *db_path, const struct config *cfg, struct registry **ret)
{
        struct registry *r = calloc(1, sizeof(*r));
        int e;

        if (!r)
                return -ENOMEM;
        pthread_mutex_init(&r->lock, NULL);
        r->cfg = cfg;
        if ((e = store_open(db_path, &r->store)) < 0) {
                free(r);
                return e;
        }
        *ret = r;
        return 0;
}

void registry_close(struct registry *r)
{
        if (!r)
                return;
        store_close(r->store);
        pthread_mutex_destroy(&r->lock);
        free(r);
}

int registry_set_enroll_boot(struct registry *r, const char *base_url, const char *initrd)
{
        if (strlen(base_url) >= sizeof(r->boot_base_url) || strlen(initrd) >= sizeof(r->boot_initrd))
                return -ENAMETOOLONG;
        pthread_mutex_lock(&r->lock);
        str_copy(r->boot_base_url, sizeof(r->boot_base_url), base_url);
        str_copy(r->boot_initrd, sizeof(r->boot_initrd), initrd);
        pthread_mutex_unlock(&r->lock);
        return 0;
}

void reg_facts_of(const struct store_machine *m, struct profile_facts *f)
{
        *f = (struct profile_facts){ .uuid = m->uuid, .serial = m->serial, .vendor = m->vendor,
                                     .product = m->product, .labels = m->labels };
        memcpy(f->mac, m->mac, 6);
}

/* The machine's profile now (NULL: none); *tie names a rival of equal specificity. */
const struct profile *reg_profile_of(const struct registry *r, const struct store_machine *m, const char **tie)
{
        const struct profile *p = NULL, *other = NULL;
        struct profile_facts f;

        reg_facts_of(m, &f);
        *tie = NULL;
        if (profile_choose(r->cfg->profiles, r->cfg->n_profiles, &f, &p, &other) == PROFILE_TIE)
                *tie = other->name;
        return p;
}

enum boot_kind reg_boot_kind(const struct registry *r, const struct store_machine *m)
{
        const char *tie;
        const struct profile *p = reg_profile_of(r, m, &tie);

        return machine_boot_kind_for(m, tie ? NULL : p);
}

int64_t reg_deadline(const struct registry *r, const struct store_machine *m, int64_t last_seen)
{
        if (reg_boot_kind(r, m) == BOOT_KIND_NETBOOT)
                return 0;
        return fsm_deadline((enum machine_state)m->state, &r->cfg->lifecycle.timeouts, m->state_since, last_seen);
}

static void log_transition(const struct store_machine *m, int from, const struct change *c)
{
        char mac[18];
        struct log_field f[2] = { { "MACHINE", m->name }, { "STATE", machine_state_name(m->state) } };

        if (!log_enabled(LOG_INFO) || (from == m->state && c->ev != ME_BOOT))
                return;
        format_mac(mac, m->mac);
        log_fields(LOG_INFO, f, 2, "machine %s (%s): %s -> %s (%s)%s%s", m->name, mac,
                   machine_state_name((enum machine_state)from), machine_state_name(m->state),
                   machine_event_name(c->ev), c->detail ? ": " : "", c->detail ? c->detail : "");
}

/*
 * Applies one event to m (as loaded) and commits it with its timeline entry.
 * -EPERM when the table forbids it; -ESTALE when another writer moved the
 * machine first (the caller reloads and decides again).
 */
static int commit_event(struct registry *r, struct store_machine *m, const struct change *c, int64_t now,
                        unsigned *ret_actions)
{
        struct store_event ev = { .ts = now, .from = m->state };
        struct store_machine_txn t = { .m = m, .event = &ev, .inventory_json = c->inventory_json };
        struct store_machine before = *m;
        struct fsm_result res;
        int e;

        if (fsm_step((enum machine_state)m->state, c->ev, &res) < 0) {
                log_notice("machine %s: %s refused in state %s", m->name, machine_event_name(c->ev),
                           machine_state_name((enum machine_state)m->state));
                return -EPERM;
        }
        if ((int)res.to != m->state)
                m->state_since = now;
        m->state = (int)res.to;
        str_copy(m->last_event, sizeof(m->last_event), machine_event_name(c->ev));
        /* a failure keeps its first reason; a new state or a boot ends what any other reason explained */
        if (res.to == MS_FAILED && before.state != MS_FAILED)
                str_copy(m->reason, sizeof(m->reason), c->detail ? c->detail : "");
        else if (res.to != MS_FAILED && (res.to != (enum machine_state)before.state || c->ev == ME_BOOT))
                m->reason[0] = '\0';
        m->deadline = reg_deadline(r, m, m->last_seen);
        str_copy(ev.event, sizeof(ev.event), machine_event_name(c->ev));
        ev.to = m->state;
        str_copy(ev.detail, sizeof(ev.detail), c->detail ? c->detail : "");
        if (c->session) {
                t.session_op = STORE_SESSION_SET;
                t.session = c->session;
        } else if (res.actions & MA_END_SESSION) {
                t.session_op = STORE_SESSION_CLEAR;
        }
        if ((e = store_machine_commit(r->store, &t)) < 0) {
                *m = before;
                return e;
        }
        log_transition(m, before.state, c);
        if (ret_actions)
                *ret_actions = res.actions;
        return 0;
}

/* Records an event that is not a transition (a log line from the agent, a refusal). */
int reg_note(struct registry *r, struct store_machine *m, const char *event, const char *detail,
                       int64_t now)
{
        struct store_event ev = { .ts = now, .from = -1, .to = -1 };
        struct store_machine_txn t = { .m = m, .event = &ev };

        str_copy(ev.event, sizeof(ev.event), event);
        str_copy(ev.detail, sizeof(ev.detail), detail ? detail : "");
        return store_machine_commit(r->store, &t);
}

int reg_load(struct registry *r, int64_t id, struct store_machine *m)
{
        return store_machine_get(r->store, STORE_BY_ID, &id, m);
}

/* Loads the machine again after a lost race; -ESTALE is spent retries. */
static int reload_after(struct registry *r, int e, int tries, struct store_machine *m)
{
        if (e != -ESTALE || tries >= REGISTRY_CAS_RETRIES)
                return e;
        return reg_load(r, m->id, m) < 0 ? -ENOENT : 0;
}

/* Applies an event, retrying lost races from the fresh row. */
int reg_apply(struct registry *r, struct store_machine *m, const struct change *c, int64_t now, unsigned *actions)
{
        for (int tries = 1;; tries++) {
                int e = commit_event(r, m, c, now, actions);

                if (e == 0 || (e = reload_after(r, e, tries, m)) != 0)
                        return e;
        }
}

static int create(struct registry *r, const struct boot_contact *c, int64_t now, struct store_machine *m)
{
        struct store_event ev = { .ts = now, .event = "discovered", .from = -1, .to = MS_DISCOVERED };
        struct store_machine_txn t = { .m = m, .event = &ev };
        struct profile_facts f = { .uuid = c->uuid, .serial = c->serial };

        *m = (struct store_machine){ .state = MS_DISCOVERED, .progress = -1, .ip = c->ip, .created = now,
                                     .state_since = now, .last_seen = now };
        memcpy(m->mac, c->mac, 6);
        memcpy(f.mac, c->mac, 6);
        str_copy(m->uuid, sizeof(m->uuid), c->uuid);
        str_copy(m->serial, sizeof(m->serial), c->serial);
        profile_machine_name(NULL, &f, m->name, sizeof(m->name));
        str_copy(m->last_event, sizeof(m->last_event), "discovered");
        m->deadline = fsm_deadline(MS_DISCOVERED, &r->cfg->lifecycle.timeouts, now, now);
        snprintf(ev.detail, sizeof(ev.detail), "first network boot");
        if (store_machine_commit(r->store, &t) < 0)
                return -EIO;
        log_info("machine %s: discovered", m->name);
        return 0;
}

int reg_mint_nonce(struct registry *r, int64_t now, char *nonce, struct store_session *ss)
{
        int e = secret_new(SECRET_NONCE_BYTES, nonce, SECRET_MAX_TEXT);

        if (e < 0)
                return e;
        *ss = (struct store_session){ .nonce_expires = now + r->cfg->lifecycle.nonce_ttl_s };
        secret_hash(nonce, ss->nonce_hash);
        return 0;
}

/* A netboot ends the session of an earlier enrollment boot, and runs no deadline: no agent calls in from it. */
static int boot_netboot(struct registry *r, struct store_machine *m, int64_t now, const struct profile **ret)
{
        struct store_event ev = { .ts = now, .from = -1, .to = -1 };
        struct store_machine_txn t = { .m = m, .event = &ev, .session_op = STORE_SESSION_CLEAR };
        const char *tie;
        const struct profile *p = reg_profile_of(r, m, &tie);
        int e;

        m->deadline = 0;
        str_copy(ev.event, sizeof(ev.event), "boot-netboot");
        snprintf(ev.detail, sizeof(ev.detail), "netboot profile %s (unsigned)", p->name);
        if ((e = store_machine_commit(r->store, &t)) < 0)
                return e;
        *ret = p;
        return 0;
}

static int boot_locked(struct registry *r, const struct boot_contact *c, int64_t now, struct registry_boot *ret)
{
        struct store_machine *m = &ret->m;
        struct store_session ss;
        int e = store_machine_get(r->store, STORE_BY_MAC, c->mac, m);

        if (e == -ENOENT)
                e = create(r, c, now, m);
        if (e < 0)
                return e;
        m->ip = c->ip;
        m->last_seen = now;
        if (!uuid_is_identity(m->uuid))
                str_copy(m->uuid, sizeof(m->uuid), c->uuid);
        ret->kind = reg_boot_kind(r, m);
        ret->netboot = NULL;
        if (ret->kind == BOOT_KIND_NETBOOT) {
                ret->nonce[0] = '\0';
                return boot_netboot(r, m, now, &ret->netboot);
        }
        if (ret->kind != BOOT_KIND_ENROLL) {
                ret->nonce[0] = '\0';
                return reg_note(r, m, ret->kind == BOOT_KIND_LOCAL ? "boot-local" : "boot-refused",
                                   ret->kind == BOOT_KIND_LOCAL ? "booting the installed system" : "retired", now);
        }
        if ((e = reg_mint_nonce(r, now, ret->nonce, &ss)) < 0)
                return e;
        return reg_apply(r, m, &(struct change){ .ev = ME_BOOT, .detail = "enrollment boot", .session = &ss }, now, NULL);
}

int registry_boot(struct registry *r, const struct boot_contact *c, int64_t now, struct registry_boot *ret)
{
        struct boot_contact cc = *c;
        int e;

        if (uuid_normalize(cc.uuid, strnlen(cc.uuid, sizeof(cc.uuid)), cc.uuid) < 0)
                cc.uuid[0] = '\0';
        pthread_mutex_lock(&r->lock);
        e = boot_locked(r, &cc, now, ret);
        pthread_mutex_unlock(&r->lock);
        if (e < 0)
                explicit_bzero(ret->nonce, sizeof(ret->nonce));
        return e;
}
