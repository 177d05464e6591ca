/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <strings.h>

#include "metald/api_json.h"
#include "metald/api.h"
#include "metald/log.h"
#include "metald/util.h"

void api_response_init(struct api_response *r)
{
        *r = (struct api_response){ .status = 500, .body = BUF_INIT(API_MAX_RESPONSE) };
}

void api_response_free(struct api_response *r)
{
        buf_free(&r->body);
}

static int respond_error(struct api_response *resp, int status, const char *msg)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "error", json_object_new_string(msg));
        resp->status = status;
        buf_reset(&resp->body);
        buf_puts(&resp->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return 0;
}

/* --- request parsing --- */

static int parse_system(json_object *inv, struct agent_identity *id, json_object *norm, char *why, size_t cap)
{
        static const char *const keys[] = { "uuid", "serial", "vendor", "product", NULL };
        char *const dst[] = { id->uuid, id->serial, id->vendor, id->product };
        const size_t caps[] = { sizeof(id->uuid), sizeof(id->serial), sizeof(id->vendor), sizeof(id->product) };
        json_object *sys, *out = json_object_new_object();
        int e;

        json_object_object_add(norm, "system", out);
        if ((e = jv_child(inv, "system", json_type_object, &sys, why, cap)) < 0 ||
            (e = jv_only_keys(sys, "inventory.system", keys, why, cap)) < 0)
                return e;
        for (size_t i = 0; keys[i]; i++)
                if ((e = jv_string(sys, keys[i], false, API_MAX_TEXT, dst[i], caps[i], why, cap)) < 0)
                        return e;
        /* all zero or all FF is no identity: stored as none, like an absent UUID */
        if (uuid_normalize(id->uuid, strlen(id->uuid), id->uuid) < 0)
                return jv_fail(why, cap, "inventory.system.uuid is not a canonical UUID");
        for (size_t i = 0; keys[i]; i++)
                json_object_object_add(out, keys[i], json_object_new_string(dst[i]));
        return 0;
}

static int parse_cpu_memory(json_object *inv, json_object *norm, char *why, size_t cap)
{
        static const char *const keys[] = { "count", "model", NULL };
        json_object *cpu, *out = json_object_new_object();
        char model[API_MAX_TEXT + 1];
        int64_t count, mem;
        int e;

        json_object_object_add(norm, "cpu", out);
        if ((e = jv_child(inv, "cpu", json_type_object, &cpu, why, cap)) < 0 ||
            (e = jv_only_keys(cpu, "inventory.cpu", keys, why, cap)) < 0 ||
            (e = jv_int(cpu, "count", true, 1, 65536, &count, why, cap)) < 0 ||
            (e = jv_string(cpu, "model", false, API_MAX_TEXT, model, sizeof(model), why, cap)) < 0 ||
            (e = jv_int(inv, "memory_bytes", true, 0, INT64_MAX, &mem, why, cap)) < 0)
                return e;
        json_object_object_add(out, "count", json_object_new_int64(count));
        json_object_object_add(out, "model", json_object_new_string(model));
        json_object_object_add(norm, "memory_bytes", json_object_new_int64(mem));
        return 0;
}

static int parse_nic(json_object *n, json_object *list, char *why, size_t cap)
{
        static const char *const keys[] = { "name", "mac", "link", "speed_mbps", NULL };
        json_object *out;
        char name[API_MAX_TEXT + 1], mac[32];
        uint8_t m[6];
        int64_t speed = 0;
        bool link;
        int e;

        if (!json_object_is_type(n, json_type_object))
                return jv_fail(why, cap, "inventory.nics entries must be objects");
        if ((e = jv_only_keys(n, "inventory.nics[]", keys, why, cap)) < 0 ||
            (e = jv_string(n, "name", true, 64, name, sizeof(name), why, cap)) < 0 ||
            (e = jv_string(n, "mac", true, 17, mac, sizeof(mac), why, cap)) < 0 ||
            (e = jv_bool(n, "link", &link, why, cap)) < 0 ||
            (e = jv_int(n, "speed_mbps", false, 0, 10000000, &speed, why, cap)) < 0)
                return e;
        if (parse_mac(mac, m) < 0)
                return jv_fail(why, cap, "inventory.nics[].mac is not a MAC address");
        format_mac(mac, m);
        out = json_object_new_object();
        json_object_object_add(out, "name", json_object_new_string(name));
        json_object_object_add(out, "mac", json_object_new_string(mac));
        json_object_object_add(out, "link", json_object_new_boolean(link));
        json_object_object_add(out, "speed_mbps", json_object_new_int64(speed));
        json_object_array_add(list, out);
        return 0;
}

static int parse_disk(json_object *d, json_object *list, char *why, size_t cap)
{
        static const char *const keys[] = { "name", "size_bytes", "model", "serial", "rotational", "removable", NULL };
        char name[API_MAX_TEXT + 1], model[API_MAX_TEXT + 1], serial[API_MAX_TEXT + 1];
        json_object *out;
        bool rot, rem;
        int64_t size;
        int e;

        if (!json_object_is_type(d, json_type_object))
                return jv_fail(why, cap, "inventory.disks entries must be objects");
        if ((e = jv_only_keys(d, "inventory.disks[]", keys, why, cap)) < 0 ||
            (e = jv_string(d, "name", true, 64, name, sizeof(name), why, cap)) < 0 ||
            (e = jv_int(d, "size_bytes", true, 0, INT64_MAX, &size, why, cap)) < 0 ||
            (e = jv_string(d, "model", false, API_MAX_TEXT, model, sizeof(model), why, cap)) < 0 ||
            (e = jv_string(d, "serial", false, API_MAX_TEXT, serial, sizeof(serial), why, cap)) < 0 ||
            (e = jv_bool(d, "rotational", &rot, why, cap)) < 0 || (e = jv_bool(d, "removable", &rem, why, cap)) < 0)
                return e;
        out = json_object_new_object();
        json_object_object_add(out, "name", json_object_new_string(name));
        json_object_object_add(out, "size_bytes", json_object_new_int64(size));
        json_object_object_add(out, "model", json_object_new_string(model));
        json_object_object_add(out, "serial", json_object_new_string(serial));
        json_object_object_add(out, "rotational", json_object_new_boolean(rot));
        json_object_object_add(out, "removable", json_object_new_boolean(rem));
        json_object_array_add(list, out);
        return 0;
}

static int parse_list(json_object *inv, const char *key, size_t max, json_object *norm,
                      int (*one)(json_object *, json_object *, char *, size_t), char *why, size_t cap)
{
        json_object *arr, *out = json_object_new_array();
        int e;

        json_object_object_add(norm, key, out);
        if ((e = jv_child(inv, key, json_type_array, &arr, why, cap)) < 0)
                return e;
        if (json_object_array_length(arr) > max)
                return jv_fail(why, cap, "inventory.%s has more than %zu entries", key, max);
        for (size_t i = 0; i < json_object_array_length(arr); i++)
                if ((e = one(json_object_array_get_idx(arr, i), out, why, cap)) < 0)
                        return e;
        return 0;
}

static int parse_inventory(json_object *root, struct agent_register_req *req, char *why, size_t cap)
{
        static const char *const keys[] = { "system", "cpu", "memory_bytes", "nics", "disks", NULL };
        json_object *inv, *norm = json_object_new_object();
        int e;

        if ((e = jv_child(root, "inventory", json_type_object, &inv, why, cap)) < 0 ||
            (e = jv_only_keys(inv, "inventory", keys, why, cap)) < 0 ||
            (e = parse_system(inv, &req->id, norm, why, cap)) < 0 || (e = parse_cpu_memory(inv, norm, why, cap)) < 0 ||
            (e = parse_list(inv, "nics", AGENT_MAX_NICS, norm, parse_nic, why, cap)) < 0 ||
            (e = parse_list(inv, "disks", AGENT_MAX_DISKS, norm, parse_disk, why, cap)) < 0) {
                json_object_put(norm);
                return e;
        }
        e = buf_puts(&req->inventory, json_object_to_json_string_ext(norm, JSON_C_TO_STRING_PLAIN));
        json_object_put(norm);
        return e < 0 ? jv_fail(why, cap, "inventory is too large") : 0;
}

int agent_parse_register(const char *body, size_t len, struct agent_register_req *req, char *why, size_t cap)
{
        static const char *const keys[] = { "nonce", "boot_mac", "inventory", NULL };
        json_object *o;
        char mac[32];
        int e;

        memset(req, 0, offsetof(struct agent_register_req, inventory));
        req->inventory = BUF_INIT(STORE_MAX_INVENTORY);
        if ((e = jv_parse_object(body, len, &o, why, cap)) < 0)
                return e;
        if ((e = jv_only_keys(o, "request", keys, why, cap)) < 0 ||
            (e = jv_string(o, "nonce", true, SECRET_MAX_TEXT - 1, req->nonce, sizeof(req->nonce), why, cap)) < 0 ||
            (e = jv_string(o, "boot_mac", true, 17, mac, sizeof(mac), why, cap)) < 0)
                goto out;
        if (parse_mac(mac, req->boot_mac) < 0) {
                e = jv_fail(why, cap, "field \"boot_mac\" is not a MAC address");
                goto out;
        }
        e = parse_inventory(o, req, why, cap);
out:
        json_object_put(o);
        return e;
}

int agent_parse_heartbeat(const char *body, size_t len, int *ret_progress, char *status, size_t status_cap,
                          char *why, size_t cap)
{
        static const char *const keys[] = { "progress", "status", NULL };
        int64_t progress = -1;
        json_object *o;
        int e;

        status[0] = '\0';
        if (len == 0) {
                *ret_progress = -1;
                return 0;       /* an empty heartbeat is a heartbeat */
        }
        if ((e = jv_parse_object(body, len, &o, why, cap)) < 0)
                return e;
        e = jv_only_keys(o, "request", keys, why, cap);
        if (e == 0)
                e = jv_int(o, "progress", false, 0, 100, &progress, why, cap);
        if (e >= 0)
                e = jv_string(o, "status", false, API_MAX_TEXT, status, status_cap, why, cap);
        json_object_put(o);
        *ret_progress = (int)progress;
        return e < 0 ? e : 0;
}

int agent_parse_event(const char *body, size_t len, char *event, size_t event_cap, char *detail, size_t detail_cap,
                      int *ret_progress, char *why, size_t cap)
{
        static const char *const keys[] = { "event", "detail", "progress", NULL };
        static const char *const events[] = { "install-started", "install-progress", "install-succeeded",
                                              "install-failed", "log" };
        int64_t progress = -1;
        json_object *o;
        bool known = false;
        int e;

        if ((e = jv_parse_object(body, len, &o, why, cap)) < 0)
                return e;
        if ((e = jv_only_keys(o, "request", keys, why, cap)) < 0 ||
            (e = jv_string(o, "event", true, 32, event, event_cap, why, cap)) < 0 ||
            (e = jv_string(o, "detail", false, API_MAX_TEXT, detail, detail_cap, why, cap)) < 0 ||
            (e = jv_int(o, "progress", false, 0, 100, &progress, why, cap)) < 0)
                goto out;
        e = 0;
        for (size_t i = 0; i < ARRAY_SIZE(events); i++)
                known |= strcmp(events[i], event) == 0;
        if (!known)
                e = jv_fail(why, cap, "unknown event \"%.32s\"", event);
out:
        json_object_put(o);
        *ret_progress = (int)progress;
        return e < 0 ? e : 0;
}

/* --- responses --- */

/* The install instruction's image: exactly these fields (docs/AGENT-API.md, "Instructions"). */
static json_object *image_json(const struct instruction_image *im)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "name", json_object_new_string(im->name));
        json_object_object_add(o, "version", json_object_new_int64((int64_t)im->version));
        json_object_object_add(o, "sha256", json_object_new_string(im->sha256));
        json_object_object_add(o, "size", json_object_new_int64((int64_t)im->size));
        json_object_object_add(o, "url", json_object_new_string(im->url));
        json_object_object_add(o, "disk", json_object_new_string(im->disk));
        json_object_object_add(o, "allow_removable", json_object_new_boolean(im->allow_removable));
        json_object_object_add(o, "hostname", json_object_new_string(im->hostname));
        return o;
}

static int respond_reply(const struct agent_reply *rep, bool with_session, struct api_response *resp)
{
        json_object *o, *ins;

        if (rep->status != 200)
                return respond_error(resp, rep->status, rep->error);
        o = json_object_new_object();
        ins = json_object_new_object();
        json_object_object_add(o, "machine", json_object_new_string(rep->m.name));
        if (with_session)
                json_object_object_add(o, "session", json_object_new_string(rep->session));
        json_object_object_add(o, "state", json_object_new_string(machine_state_name((enum machine_state)rep->m.state)));
        json_object_object_add(o, "heartbeat_seconds", json_object_new_int64(rep->heartbeat_s));
        json_object_object_add(ins, "action", json_object_new_string(instruction_action_name(rep->instruction.action)));
        json_object_object_add(ins, "reason", json_object_new_string(rep->instruction.reason));
        if (rep->instruction.action == INS_INSTALL)
                json_object_object_add(ins, "image", image_json(&rep->instruction.image));
        json_object_object_add(o, "instruction", ins);
        resp->status = 200;
        buf_reset(&resp->body);
        buf_puts(&resp->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return 0;
}

static bool json_content(const char *ct)
{
        size_t n = strlen("application/json");

        return ct && strncasecmp(ct, "application/json", n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* "Bearer <secret>": the machine id, or -EACCES. */
static int bearer(struct registry *reg, const char *auth, int64_t *id)
{
        if (!auth || strncmp(auth, "Bearer ", 7) != 0)
                return -EACCES;
        return registry_authenticate(reg, auth + 7, id);
}

static int do_register(struct registry *reg, const struct api_request *req, int64_t now, struct api_response *resp)
{
        struct agent_register_req r;
        struct agent_reply rep;
        char why[256];
        int e = agent_parse_register(req->body, req->body_len, &r, why, sizeof(why));

        if (e < 0) {
                buf_free(&r.inventory);
                return respond_error(resp, 400, why);
        }
        registry_register(reg, r.nonce, r.boot_mac, &r.id, r.inventory.data, req->peer_ip, now, &rep);
        explicit_bzero(r.nonce, sizeof(r.nonce));
        buf_free(&r.inventory);
        e = respond_reply(&rep, true, resp);
        explicit_bzero(rep.session, sizeof(rep.session));
        return e;
}

static int do_authenticated(struct registry *reg, const char *what, const struct api_request *req, int64_t now,
                            struct api_response *resp)
{
        char why[256], status[API_MAX_TEXT + 1], event[40], detail[API_MAX_TEXT + 1];
        struct agent_reply rep;
        int64_t id;
        int progress;

        if (bearer(reg, req->authorization, &id) < 0)
                return respond_error(resp, 401, "missing or invalid session");
        if (strcmp(what, "heartbeat") == 0) {
                if (agent_parse_heartbeat(req->body, req->body_len, &progress, status, sizeof(status), why,
                                          sizeof(why)) < 0)
                        return respond_error(resp, 400, why);
                registry_heartbeat(reg, id, progress, status, req->peer_ip, now, &rep);
        } else if (strcmp(what, "events") == 0) {
                if (agent_parse_event(req->body, req->body_len, event, sizeof(event), detail, sizeof(detail), &progress,
                                      why, sizeof(why)) < 0)
                        return respond_error(resp, 400, why);
                registry_agent_event(reg, id, event, detail, progress, now, &rep);
        } else {
                registry_instruction(reg, id, now, &rep);
        }
        if (rep.status == 503)
                resp->retry_after_s = 1;
        return respond_reply(&rep, false, resp);
}

/* GET /v1/agent/image/manifest[.sig]: the exact bytes metald holds, for the agent to verify itself. */
static int do_manifest(struct registry *reg, const struct api_request *req, bool sig, int64_t now,
                       struct api_response *resp)
{
        uint8_t *data = NULL;
        size_t len = 0;
        int64_t id;
        int e;

        if (bearer(reg, req->authorization, &id) < 0)
                return respond_error(resp, 401, "missing or invalid session");
        e = registry_image_manifest(reg, id, sig, now, &data, &len);
        if (e == -EACCES)
                return respond_error(resp, 401, "missing or invalid session");
        if (e == -ENOENT)
                return respond_error(resp, 404, "no image is assigned to this machine");
        if (e < 0)
                return respond_error(resp, 503, "the image's manifest cannot be read");
        buf_free(&resp->body);
        resp->body = BUF_INIT(IMAGE_MAX_MANIFEST_BYTES);
        e = buf_append(&resp->body, data, len);
        free(data);
        if (e < 0)
                return respond_error(resp, 503, "the image's manifest cannot be read");
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        return 0;
}

int agent_api_handle(struct registry *reg, const struct api_request *req, int64_t now, struct api_response *resp)
{
        static const struct { const char *path, *method; } routes[] = {
                { "/v1/agent/register", "POST" }, { "/v1/agent/heartbeat", "POST" },
                { "/v1/agent/events", "POST" }, { "/v1/agent/instruction", "GET" },
                { "/v1/agent/image/manifest", "GET" }, { "/v1/agent/image/manifest.sig", "GET" },
        };

        for (size_t i = 0; i < ARRAY_SIZE(routes); i++) {
                if (strcmp(req->path, routes[i].path) != 0)
                        continue;
                if (strcmp(req->method, routes[i].method) != 0)
                        return respond_error(resp, 405, "method not allowed");
                if (i >= 4)
                        return req->body_len ? respond_error(resp, 413, "no request body expected")
                                             : do_manifest(reg, req, i == 5, now, resp);
                if (strcmp(req->method, "POST") == 0 && req->body_len > 0 && !json_content(req->content_type))
                        return respond_error(resp, 415, "the body must be application/json");
                if (req->body_len > API_MAX_BODY)
                        return respond_error(resp, 413, "the body is larger than 64 KiB");
                if (i == 0)
                        return do_register(reg, req, now, resp);
                return do_authenticated(reg, routes[i].path + strlen("/v1/agent/"), req, now, resp);
        }
        return respond_error(resp, 404, "no such agent API route");
}
