/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <strings.h>

#include "metald/log.h"
#include "metald/util.h"
#include "registry_private.h"

static void refuse(struct agent_reply *ret, int status, const char *msg)
{
        ret->status = status;
        str_copy(ret->error, sizeof(ret->error), msg);
}

/* The machine's view for a successful reply: its state and what it should do (an install takes its slot). */
static void reply_ok(struct registry *r, const struct store_machine *m, int64_t now, struct agent_reply *ret)
{
        ret->status = 200;
        ret->m = *m;
        reg_instruction(r, m, now, true, NULL, &ret->instruction);
}

/* The nonce must be this machine's, outstanding and unexpired; compared in constant time. */
static bool nonce_valid(struct registry *r, const struct store_machine *m, const char *nonce, int64_t now,
                        const char **why)
{
        struct store_session ss;
        uint8_t h[32];

        *why = "unknown or already used nonce";
        if (store_session_get(r->store, m->id, &ss) < 0 || ss.nonce_expires == 0)
                return false;
        secret_hash(nonce, h);
        if (!secret_hash_equal(h, ss.nonce_hash))
                return false;
        if (now > ss.nonce_expires) {
                *why = "the boot nonce has expired; boot the machine again";
                return false;
        }
        return true;
}

static void take_identity(struct store_machine *m, const struct agent_identity *id)
{
        char uuid[UUID_TEXT_BYTES];

        if (uuid_normalize(id->uuid, strnlen(id->uuid, sizeof(id->uuid)), uuid) == 0 && *uuid)
                str_copy(m->uuid, sizeof(m->uuid), uuid);
        str_copy(m->serial, sizeof(m->serial), id->serial);
        str_copy(m->vendor, sizeof(m->vendor), id->vendor);
        str_copy(m->product, sizeof(m->product), id->product);
}

/* The profile's host name template applies once the inventory is known; a clash keeps the old name. */
static void maybe_rename(struct registry *r, struct store_machine *m, const struct profile *p)
{
        struct store_machine other;
        struct profile_facts f;
        char name[sizeof(m->name)];

        if (!p || !*p->hostname)
                return;
        reg_facts_of(m, &f);
        profile_machine_name(p, &f, name, sizeof(name));
        if (strcmp(name, m->name) == 0)
                return;
        if (store_machine_get(r->store, STORE_BY_NAME, name, &other) == 0) {
                log_warning("machine %s: name %s from profile %s is taken by another machine", m->name, name, p->name);
                return;
        }
        str_copy(m->name, sizeof(m->name), name);
}

/*
 * The approval policy, applied after a registration and again on later agent
 * calls and at start-up: a crash between the two commits only delays it.
 */
void reg_auto_approve(struct registry *r, struct store_machine *m, int64_t now)
{
        const char *why, *tie;
        const struct profile *p = reg_profile_of(r, m, &tie);

        if (m->state != MS_REGISTERED || !p || tie)
                return;
        if (p->approval == PROFILE_APPROVE_AUTO)
                why = "approved by profile policy";
        else if (m->approved)
                why = "approved before by an operator";
        else
                return;
        if (reg_apply(r, m, &(struct change){ .ev = ME_APPROVE, .detail = why }, now, NULL) < 0)
                log_warning("machine %s: automatic approval failed", m->name);
}

static void register_locked(struct registry *r, const char *nonce, const uint8_t mac[6], const struct agent_identity *id,
                            const char *inventory_json, uint32_t ip, int64_t now, struct agent_reply *ret)
{
        struct store_session ss = { .session_created = now };
        struct store_machine m;
        const struct profile *p;
        const char *why, *tie;
        unsigned actions = 0;
        char detail[160];
        int e;

        if (!secret_is_wellformed(nonce, SECRET_NONCE_BYTES) || store_machine_get(r->store, STORE_BY_MAC, mac, &m) < 0)
                return refuse(ret, 401, "unknown or already used nonce");
        if (!nonce_valid(r, &m, nonce, now, &why))
                return refuse(ret, 401, why);
        if (uuid_is_identity(m.uuid) && uuid_is_identity(id->uuid) && strcasecmp(m.uuid, id->uuid) != 0) {
                snprintf(detail, sizeof(detail), "registration refused: SMBIOS UUID %s, but this MAC belongs to %s",
                         id->uuid, m.uuid);
                (void)reg_note(r, &m, "identity-conflict", detail, now);
                log_warning("machine %s: %s", m.name, detail);
                return refuse(ret, 409, "identity conflict: this MAC is registered with a different SMBIOS UUID");
        }
        take_identity(&m, id);
        m.ip = ip;
        m.last_seen = now;
        p = reg_profile_of(r, &m, &tie);
        str_copy(m.profile, sizeof(m.profile), p && !tie ? p->name : "");
        maybe_rename(r, &m, p);
        if ((e = secret_new(SECRET_SESSION_BYTES, ret->session, sizeof(ret->session))) < 0)
                return refuse(ret, 500, "cannot create a session");
        secret_hash(ret->session, ss.session_hash);
        snprintf(detail, sizeof(detail), "agent registered from %u.%u.%u.%u", ip >> 24, ip >> 16 & 255,
                 ip >> 8 & 255, ip & 255);
        e = reg_apply(r, &m, &(struct change){ .ev = ME_REGISTER, .detail = detail, .session = &ss,
                                               .inventory_json = inventory_json }, now, &actions);
        if (e == -EPERM)
                return refuse(ret, 409, "registration is not allowed in the machine's state");
        if (e < 0)
                return refuse(ret, 500, "cannot store the registration");
        if (actions & MA_AUTO_APPROVE)
                reg_auto_approve(r, &m, now);
        reply_ok(r, &m, now, ret);
}

void registry_register(struct registry *r, const char *nonce, const uint8_t boot_mac[6],
                       const struct agent_identity *id, const char *inventory_json, uint32_t ip, int64_t now,
                       struct agent_reply *ret)
{
        memset(ret, 0, sizeof(*ret));
        ret->heartbeat_s = r->cfg->lifecycle.heartbeat_s;
        pthread_mutex_lock(&r->lock);
        register_locked(r, nonce, boot_mac, id, inventory_json, ip, now, ret);
        pthread_mutex_unlock(&r->lock);
        if (ret->status != 200)
                explicit_bzero(ret->session, sizeof(ret->session));
}

int registry_authenticate(struct registry *r, const char *secret, int64_t *ret_id)
{
        struct store_session ss;
        struct store_machine m;
        uint8_t h[32];
        int64_t id;
        int e = -EACCES;

        if (!secret_is_wellformed(secret, SECRET_SESSION_BYTES))
                return -EACCES;
        secret_hash(secret, h);
        pthread_mutex_lock(&r->lock);
        if (store_session_find(r->store, h, &id) == 0 && store_session_get(r->store, id, &ss) == 0 &&
            ss.session_created && secret_hash_equal(h, ss.session_hash) && reg_load(r, id, &m) == 0 &&
            fsm_is_enrolling((enum machine_state)m.state)) {
                *ret_id = id;
                e = 0;
        }
        pthread_mutex_unlock(&r->lock);
        return e;
}

/* Liveness: the agent's call moves the deadline of agent-bound states. */
static int touch(struct registry *r, struct store_machine *m, uint32_t ip, int64_t now)
{
        struct store_machine_txn t = { .m = m };

        m->last_seen = now;
        if (ip)
                m->ip = ip;
        m->deadline = reg_deadline(r, m, now);
        return store_machine_commit(r->store, &t);
}

void registry_heartbeat(struct registry *r, int64_t id, int progress, const char *status, uint32_t ip, int64_t now,
                        struct agent_reply *ret)
{
        struct store_machine m;

        memset(ret, 0, sizeof(*ret));
        ret->heartbeat_s = r->cfg->lifecycle.heartbeat_s;
        pthread_mutex_lock(&r->lock);
        if (reg_load(r, id, &m) < 0) {
                refuse(ret, 401, "no such session");
        } else {
                if (progress >= 0)
                        m.progress = progress;
                if (touch(r, &m, ip, now) < 0) {
                        refuse(ret, 503, "the machine changed meanwhile; call again");
                } else {
                        reg_auto_approve(r, &m, now);
                        reply_ok(r, &m, now, ret);
                }
        }
        pthread_mutex_unlock(&r->lock);
        if (status && *status)
                log_debug("machine %s: agent status: %s", ret->m.name, status);
}

void registry_instruction(struct registry *r, int64_t id, int64_t now, struct agent_reply *ret)
{
        struct store_machine m;

        memset(ret, 0, sizeof(*ret));
        ret->heartbeat_s = r->cfg->lifecycle.heartbeat_s;
        pthread_mutex_lock(&r->lock);
        if (reg_load(r, id, &m) < 0)
                refuse(ret, 401, "no such session");
        else
                reply_ok(r, &m, now, ret);
        pthread_mutex_unlock(&r->lock);
}

static int event_of(const char *name, enum machine_event *ev)
{
        static const struct { const char *name; enum machine_event ev; } map[] = {
                { "install-started", ME_INSTALL_START },
                { "install-succeeded", ME_INSTALL_DONE },
                { "install-failed", ME_INSTALL_FAIL },
        };

        for (size_t i = 0; i < ARRAY_SIZE(map); i++)
                if (strcmp(map[i].name, name) == 0) {
                        *ev = map[i].ev;
                        return 0;
                }
        return -ENOENT;
}

static void event_locked(struct registry *r, struct store_machine *m, const char *event, const char *detail,
                         int progress, int64_t now, struct agent_reply *ret)
{
        enum machine_event ev;
        int e;

        if (progress >= 0)
                m->progress = progress;
        m->last_seen = now;
        if (event_of(event, &ev) == 0) {
                if (ev == ME_INSTALL_FAIL && !*detail)
                        detail = "the agent reported that the install failed";
                e = reg_apply(r, m, &(struct change){ .ev = ev, .detail = detail }, now, NULL);
                if (e == 0)
                        reg_install_event(r, m, ev, now);
                if (e == 0 && ev == ME_INSTALL_DONE)
                        reg_after_imaged(r, m, now);
        } else if (strcmp(event, "install-progress") == 0) {
                /* kept in memory and in the row, not in the timeline: an install reports every few seconds */
                e = m->state != MS_IMAGING ? -EPERM : touch(r, m, 0, now);
                if (e == 0)
                        (void)reg_install_progress(r, m, detail);
        } else {
                e = reg_note(r, m, event, detail, now);
        }
        if (e == -EPERM) {
                snprintf(ret->error, sizeof(ret->error), "event %s is not allowed while the machine is %s", event,
                         machine_state_name((enum machine_state)m->state));
                ret->status = 409;
                return;
        }
        if (e < 0)
                return refuse(ret, 503, "the machine changed meanwhile; send the event again");
        reply_ok(r, m, now, ret);
}

void registry_agent_event(struct registry *r, int64_t id, const char *event, const char *detail, int progress,
                          int64_t now, struct agent_reply *ret)
{
        struct store_machine m;

        memset(ret, 0, sizeof(*ret));
        ret->heartbeat_s = r->cfg->lifecycle.heartbeat_s;
        pthread_mutex_lock(&r->lock);
        if (reg_load(r, id, &m) < 0)
                refuse(ret, 401, "no such session");
        else
                event_locked(r, &m, event, detail, progress, now, ret);
        pthread_mutex_unlock(&r->lock);
}
