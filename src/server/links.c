/* The owner's side of existing links: read, list, edit and delete (see links.h). */
#include "links.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "caller.h"
#include "container_of.h"
#include "cursor.h"
#include "hotcache.h"
#include "linkjson.h"
#include "log.h"
#include "metrics.h"
#include "numparse.h"
#include "pwhash.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "urlcheck.h"

#define LIST_DEFAULT 100
#define LIST_MAX     1000
/* The longest ?q=: longer than any key, and than any part of a URL worth searching for. */
#define QUERY_MAX 256

static enum http_step db_error(struct http_request *r, int rc)
{
    metrics_inc(&r->srv->metrics.db_errors);
    return rc == -EAGAIN ? http_unavailable(r, "the database")
                         : http_problem(r, 500, "internal", "the database failed");
}

static enum http_step not_found(struct http_request *r)
{
    return http_problem(r, 404, "not-found", "no link with this key");
}

/* After a link changed or went: this server's hot cache at once, Redis and every other
 * server's hot cache through it (cache.h). */
static void invalidate(struct http_request *r, const char *key, bool deleted)
{
    struct server *s = r->srv;
    int rc;

    hotcache_evict(s->hot, key, strlen(key));
    rc = deleted ? cache_tombstone(r->worker->cache, key, s->change_ttl)
                 : cache_invalidate(r->worker->cache, key, s->change_ttl);
    if (rc < 0) {
        metrics_inc(&s->metrics.cache_errors);
        log_warn("request %llu: changed %s but could not evict it from redis: %s",
                 (unsigned long long)r->id, key, cache_error(r->worker->cache));
    }
}

enum http_step links_read(struct http_request *r, const char *key)
{
    struct caller caller;
    struct link link = {0};
    enum http_step step;
    int rc;

    step = caller_admit(r, false, &caller);
    if (step != HTTP_GO_ON)
        return step;
    rc = store_get_link(r->worker->store, key, caller_owner_filter(&caller), &link);
    if (rc == -ENOENT)
        return not_found(r);
    if (rc < 0)
        return db_error(r, rc);
    step = http_send_json(r, 200, linkjson_format(r->srv->base_url, &link), NULL);
    link_release(&link);
    return step;
}

enum http_step links_delete(struct http_request *r, const char *key)
{
    struct caller caller;
    enum http_step step;
    int rc;

    step = caller_admit(r, false, &caller);
    if (step != HTTP_GO_ON)
        return step;
    rc = store_delete_link(r->worker->store, key, caller_owner_filter(&caller));
    if (rc == -ENOENT)
        return not_found(r);
    if (rc < 0)
        return db_error(r, rc);
    /* Committed first, then the caches: no server can serve the link from Redis after this. */
    invalidate(r, key, true);
    metrics_inc(&r->srv->metrics.links_deleted);
    return http_send(r, 204, NULL, "", 0, NULL);
}

/* The list's parameters, checked. Returns 0 or -1 with the reason in err. */
struct list_params {
    size_t limit;
    const char *tag, *q;
    int64_t after_us;
    char after_key[KEY_MAX_LEN + 1];
    bool after;
};

static int list_params(struct http_request *r, int64_t owner, struct list_params *p, char *err,
                       size_t errlen)
{
    const char *limit = http_query(r, "limit"), *cursor = http_query(r, "cursor");
    long long n = LIST_DEFAULT;

    memset(p, 0, sizeof(*p));
    if (limit && numparse_ll(limit, 1, LIST_MAX, 0, &n) < 0) {
        snprintf(err, errlen, "limit must be a whole number from 1 to %d", LIST_MAX);
        return -1;
    }
    p->limit = (size_t)n;
    /* An empty tag or q filters nothing (a form's empty field sends "tag=" or "q="). */
    p->tag = http_query(r, "tag");
    if (p->tag && !p->tag[0])
        p->tag = NULL;
    if (p->tag && !request_is_tag(p->tag, strlen(p->tag))) {
        snprintf(err, errlen, "tag must be 1 to %d of letters, digits, '_' and '-'",
                 LINK_TAG_MAX_LEN);
        return -1;
    }
    p->q = http_query(r, "q");
    if (p->q && !p->q[0])
        p->q = NULL;
    if (p->q) {
        size_t len = strlen(p->q);
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)p->q[i] < 0x20 || p->q[i] == 0x7f) {
                snprintf(err, errlen, "q may not contain control characters");
                return -1;
            }
        if (len > QUERY_MAX) {
            snprintf(err, errlen, "q must be at most %d bytes", QUERY_MAX);
            return -1;
        }
    }
    if (cursor) {
        if (cursor_decode(cursor, owner, p->tag, p->q, &p->after_us, p->after_key) < 0) {
            snprintf(err, errlen,
                     "the cursor is not one this list gave out (take next_cursor as it is, with "
                     "the same tag and q)");
            return -1;
        }
        p->after = true;
    }
    return 0;
}

static enum http_step send_list(struct http_request *r, int64_t owner, const struct list_params *p,
                                struct link *links, size_t n)
{
    json_t *items = json_array(), *root;
    char next[CURSOR_MAX];
    size_t shown = n > p->limit ? p->limit : n;

    for (size_t i = 0; items && i < shown; i++)
        json_array_append_new(items, (json_t *)linkjson_object(r->srv->base_url, &links[i]));
    /* One more than a page was asked for: if it came, there is a next page. */
    if (n > p->limit)
        cursor_encode(owner, p->tag, p->q, links[shown - 1].created_us, links[shown - 1].key, next);
    root = json_pack("{s:o, s:o}", "items", items ? items : json_null(), "next_cursor",
                     n > p->limit ? json_string(next) : json_null());
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return http_send_json(r, 200, text, NULL);
}

enum http_step links_list(struct http_request *r)
{
    struct caller caller;
    struct list_params p;
    struct link *links = NULL;
    enum http_step step;
    char err[256];
    size_t n = 0;
    int rc;

    step = caller_admit(r, false, &caller);
    if (step != HTTP_GO_ON)
        return step;
    if (list_params(r, caller.key.id, &p, err, sizeof(err)) < 0)
        return http_problem(r, 400, "invalid-parameter", "%s", err);
    links = calloc(p.limit + 1, sizeof(*links));
    if (!links)
        return http_problem(r, 500, "internal", "out of memory");
    rc = store_list_links(r->worker->store, caller.key.id, p.tag, p.q, p.after_us,
                          p.after ? p.after_key : NULL, p.limit + 1, links, &n);
    step = rc < 0 ? db_error(r, rc) : send_list(r, caller.key.id, &p, links, n);
    for (size_t i = 0; i < n; i++)
        link_release(&links[i]);
    free(links);
    return step;
}

/* An edit waiting for its new password to be hashed. */
struct edit {
    struct http_request *req;
    char key[KEY_MAX_LEN + 1];
    struct caller caller;
    struct create_request fields;
    char *url; /* the new URL, checked */
    struct pwhash_job hash;
    bool hashed;
};

static void edit_free(void *p)
{
    struct edit *e = p;
    if (!e)
        return;
    create_request_release(&e->fields);
    free(e->url);
    sodium_memzero(e->hash.hash, sizeof(e->hash.hash));
    free(e);
}

static void edit_hashed(struct pwhash_job *job)
{
    struct edit *e = container_of(job, struct edit, hash);
    e->hashed = true;
    http_resume(e->req->conn);
}

/* What an edit's fields mean, checked as a create checks them; the struct link_edit for the
 * store. Returns 0 or -1 with the answer in status, type and err. */
static int edit_check(struct http_request *r, struct edit *e, struct link_edit *out,
                      unsigned *status, const char **type, char *err, size_t errlen)
{
    struct create_request *f = &e->fields;
    unsigned bit = 0;

    memset(out, 0, sizeof(*out));
    *status = 400;
    for (int i = 0; i < FIELD_COUNT; i++)
        if (f->nulls & (1u << i))
            bit |= 1u << i;
    out->change = bit;
    if (f->url) {
        enum urlcheck_result uc = urlcheck_check(f->url, f->url_len, &r->srv->self_hosts, &e->url);
        *type = "invalid-url";
        if (uc != URLCHECK_OK) {
            snprintf(err, errlen, "%s",
                     uc == URLCHECK_NOMEM ? "out of memory" : urlcheck_describe(uc));
            return -1;
        }
        out->url = e->url;
        out->change |= 1u << FIELD_URL;
    }
    if (f->has_expires_at || f->has_ttl) {
        *type = "invalid-expiry";
        if (request_resolve_expiry(f, time(NULL), 0, &out->a.expires_at, err, errlen) < 0)
            return -1;
        out->change |= 1u << FIELD_EXPIRES_AT;
    }
    if (f->has_redirect_status) {
        out->a.redirect_status = f->redirect_status;
        out->change |= 1u << FIELD_REDIRECT_STATUS;
    }
    if (f->has_max_visits) {
        out->a.max_visits = f->max_visits;
        out->change |= 1u << FIELD_MAX_VISITS;
    }
    if (f->has_valid_from) {
        out->a.valid_from = f->valid_from;
        out->change |= 1u << FIELD_VALID_FROM;
    }
    if (f->has_tags) {
        out->a.ntags = f->ntags;
        memcpy(out->a.tags, f->tags, sizeof(out->a.tags));
        out->change |= 1u << FIELD_TAGS;
    }
    if (f->nulls & (1u << FIELD_TAGS))
        out->a.ntags = 0;
    if (f->has_public_stats) {
        out->a.public_stats = f->public_stats;
        out->change |= 1u << FIELD_PUBLIC_STATS;
    }
    if (f->nulls & (1u << FIELD_PUBLIC_STATS)) {
        out->a.public_stats = false; /* cleared: back to its default */
        out->change |= 1u << FIELD_PUBLIC_STATS;
    }
    if (e->hashed) {
        out->password_hash = e->hash.hash;
        out->change |= 1u << FIELD_PASSWORD;
    }
    return 0;
}

/* Stores the checked edit and answers with the link as it is now. */
static enum http_step edit_apply(struct edit *e)
{
    struct http_request *r = e->req;
    struct link_edit edit;
    struct link link = {0};
    const char *type = "invalid-body";
    enum http_step step;
    unsigned status;
    char err[256];
    int rc;

    if (e->hashed && e->hash.rc < 0)
        return http_problem(r, 500, "internal", "the password could not be hashed");
    if (edit_check(r, e, &edit, &status, &type, err, sizeof(err)) < 0)
        return http_problem(r, status, type, "%s", err);
    rc = store_update_link(r->worker->store, e->key, caller_owner_filter(&e->caller), &edit, &link);
    if (rc == -ENOENT)
        return not_found(r);
    if (rc == -EINVAL)
        return http_problem(r, 400, "invalid-field", "valid_from must be before the link expires");
    if (rc < 0)
        return db_error(r, rc);
    invalidate(r, link.key, false);
    step = http_send_json(r, 200, linkjson_format(r->srv->base_url, &link), NULL);
    link_release(&link);
    return step;
}

enum http_step links_edit(struct http_request *r, const char *key)
{
    struct edit *e = r->state;
    enum http_step step;
    char err[256];
    int rc;

    if (e)
        return edit_apply(e); /* resumed: the password is hashed */
    if (r->body_too_large)
        return http_problem(r, 413, "body-too-large", "the body is over %zu bytes", r->body_limit);
    e = calloc(1, sizeof(*e));
    if (!e)
        return http_problem(r, 500, "internal", "out of memory");
    e->req = r;
    snprintf(e->key, sizeof(e->key), "%s", key);
    r->state = e;
    r->state_free = edit_free;
    step = caller_admit(r, false, &e->caller);
    if (step != HTTP_GO_ON)
        return step;
    if (request_body_type(http_header(r, "Content-Type")) != BODY_JSON)
        return http_problem(r, 415, "unsupported-media-type",
                            "send the fields to change as application/json");
    rc = request_parse_edit(r->body, r->body_len, &e->fields, err, sizeof(err));
    if (rc < 0)
        return rc == -ENOMEM ? http_problem(r, 500, "internal", "out of memory")
                             : http_problem(r, 400, "invalid-body", "%s", err);
    if (!e->fields.password)
        return edit_apply(e);
    /* Argon2id off this thread: park until it is done. */
    e->hash = (struct pwhash_job){
        .password = e->fields.password, .len = e->fields.password_len, .done = edit_hashed};
    http_suspend(r);
    if (pwhash_submit(r->srv->pwhash, &e->hash) < 0) {
        e->hash.rc = -ENOMEM; /* shutting down */
        edit_hashed(&e->hash);
    }
    return HTTP_ANSWERED;
}
