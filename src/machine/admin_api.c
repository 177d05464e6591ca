/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>

#include "metald/api_json.h"
#include "metald/api.h"
#include "metald/util.h"

static int respond(struct api_response *resp, int status, const char *msg)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, status < 300 ? "result" : "error", json_object_new_string(msg));
        resp->status = status;
        buf_reset(&resp->body);
        buf_puts(&resp->body, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return 0;
}

static int status_of(int e)
{
        switch (e) {
        case 0:        return 200;
        case -ENOENT:  return 404;
        case -EPERM:   return 409;
        case -EINVAL:  return 400;
        case -ESTALE:  return 503;
        default:       return 500;
        }
}

static int labels_body(const struct api_request *req, char *labels, size_t cap, char *why, size_t why_cap)
{
        static const char *const keys[] = { "labels", NULL };
        json_object *o;
        int e;

        if ((e = jv_parse_object(req->body, req->body_len, &o, why, why_cap)) < 0)
                return e;
        if ((e = jv_only_keys(o, "request", keys, why, why_cap)) == 0)
                e = jv_string(o, "labels", true, cap - 1, labels, cap, why, why_cap);
        json_object_put(o);
        return e;
}

/* {"image": "NAME[:VERSION]"} sets the machine's own image, "" drops it; {} (or no body) keeps it. */
static int reimage_body(const struct api_request *req, char *image, size_t cap, bool *ret_has, char *why,
                        size_t why_cap)
{
        static const char *const keys[] = { "image", NULL };
        json_object *o, *v;
        int e;

        *ret_has = false;
        if (req->body_len == 0)
                return 0;
        if ((e = jv_parse_object(req->body, req->body_len, &o, why, why_cap)) < 0)
                return e;
        if ((e = jv_only_keys(o, "request", keys, why, why_cap)) == 0 && json_object_object_get_ex(o, "image", &v)) {
                e = jv_string(o, "image", true, cap - 1, image, cap, why, why_cap);
                *ret_has = e == 0;
        }
        json_object_put(o);
        return e;
}

/* A reimage, then the power cycle that takes the machine into enrollment. */
static int reimage_op(struct registry *reg, const struct api_request *req, const char *who, int64_t now,
                      struct api_response *resp)
{
        char err[256], image[IMAGE_MAX_NAME + 32], power[STORE_MAX_TEXT + 1], done[STORE_MAX_TEXT + 128];
        struct store_machine m;
        bool has_image;
        int e;

        if (reimage_body(req, image, sizeof(image), &has_image, err, sizeof(err)) < 0)
                return respond(resp, 400, err);
        e = registry_admin(reg, ADMIN_REIMAGE, who, has_image ? image : NULL, now, &m, err, sizeof(err));
        if (e < 0)
                return respond(resp, status_of(e), err);
        registry_reimage_power(reg, &m, now, power, sizeof(power));
        snprintf(done, sizeof(done), "%s is %s; %s", m.name, machine_state_name((enum machine_state)m.state), power);
        return respond(resp, 200, done);
}

static int machine_op(struct registry *reg, const struct api_request *req, const char *who, const char *verb,
                      int64_t now, struct api_response *resp)
{
        static const struct { const char *verb; enum admin_op op; } ops[] = {
                { "approve", ADMIN_APPROVE }, { "reimage", ADMIN_REIMAGE }, { "retire", ADMIN_RETIRE },
                { "labels", ADMIN_LABEL },
        };
        char err[256], labels[STORE_MAX_TEXT + 1] = "", done[128];
        struct store_machine m;

        for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
                int e;

                if (strcmp(ops[i].verb, verb) != 0)
                        continue;
                if (strcmp(req->method, "POST") != 0)
                        return respond(resp, 405, "method not allowed");
                if (ops[i].op == ADMIN_REIMAGE)
                        return reimage_op(reg, req, who, now, resp);
                if (ops[i].op == ADMIN_LABEL && labels_body(req, labels, sizeof(labels), err, sizeof(err)) < 0)
                        return respond(resp, 400, err);
                e = registry_admin(reg, ops[i].op, who, labels, now, &m, err, sizeof(err));
                if (e < 0)
                        return respond(resp, status_of(e), err);
                snprintf(done, sizeof(done), "%s is %s", m.name, machine_state_name((enum machine_state)m.state));
                return respond(resp, 200, done);
        }
        return respond(resp, 404, "no such machine operation");
}

static int machine_route(struct registry *reg, const struct api_request *req, const char *rest, int64_t now,
                         struct api_response *resp)
{
        char who[STORE_MAX_NAME + 1], err[256];
        const char *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        struct store_machine m;
        int e;

        if (n == 0 || n >= sizeof(who))
                return respond(resp, 404, "no such machine");
        memcpy(who, rest, n);
        who[n] = '\0';
        if (slash)
                return machine_op(reg, req, who, slash + 1, now, resp);
        if (strcmp(req->method, "DELETE") == 0) {
                e = registry_admin(reg, ADMIN_FORGET, who, NULL, now, &m, err, sizeof(err));
                return e < 0 ? respond(resp, status_of(e), err) : respond(resp, 200, "forgotten");
        }
        if (strcmp(req->method, "GET") != 0)
                return respond(resp, 405, "method not allowed");
        buf_reset(&resp->body);
        e = registry_show_json(reg, who, &resp->body);
        if (e == -ENOENT)
                return respond(resp, 404, "no machine is named or has that MAC address");
        resp->status = e < 0 ? 500 : 200;
        return 0;
}

int admin_api_handle(struct registry *reg, const struct api_request *req, int64_t now, struct api_response *resp)
{
        static const char machines[] = "/v1/admin/machines/";

        if (req->body_len > API_MAX_BODY)
                return respond(resp, 413, "the body is larger than 64 KiB");
        if (strcmp(req->path, "/v1/admin/status") == 0 || strcmp(req->path, "/v1/admin/machines") == 0) {
                if (strcmp(req->method, "GET") != 0)
                        return respond(resp, 405, "method not allowed");
                buf_reset(&resp->body);
                resp->status = registry_status_json(reg, now, &resp->body) < 0 ? 500 : 200;
                return 0;
        }
        if (str_has_prefix(req->path, machines))
                return machine_route(reg, req, req->path + strlen(machines), now, resp);
        return respond(resp, 404, "no such admin API route");
}
