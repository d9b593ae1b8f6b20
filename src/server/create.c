/* A create request from its arrival to its answer: the object, its stages and what each
 * thread does with it (see create.h). */
#include "create.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admission.h"
#include "caller.h"
#include "container_of.h"
#include "idempotency.h"
#include "keys_client.h"
#include "linkjson.h"
#include "linkwriter.h"
#include "log.h"
#include "metrics.h"
#include "pwhash.h"
#include "request.h"
#include "server.h"
#include "store.h"
#include "urlcheck.h"

/* A generated key can collide with a custom alias spelt like one; the next key will not. */
#define KEY_ATTEMPTS 5

enum create_stage {
    CREATE_VALIDATED, /* on the request thread, not parked yet */
    CREATE_COUNTING,  /* at the admission thread */
    CREATE_COUNTED,   /* back on the request thread to decide on the count */
    CREATE_HASHING,   /* passwords at the hashing threads */
    CREATE_WRITING,   /* at a link writer */
    CREATE_WRITTEN    /* back on the request thread to answer */
};

struct create;

/* Why one link cannot be made: its answer (a whole create's, or one bulk item's). */
struct create_error {
    unsigned status;
    const char *type;
    char detail[256];
};

/* One link of a create. */
struct create_item {
    struct create *create;
    struct link_job job;    /* the writer's part */
    struct pwhash_job hash; /* the hashing thread's part, for a link with a password */
    char *url;              /* owned: the job points at it */
    char *password;         /* owned until hashed, then wiped and freed */
    size_t password_len;
    char *response; /* an idempotent create's answer, recorded with the link */
    bool alias;     /* a key the caller chose, rather than a generated one */
    bool failed;    /* err holds its answer: nothing to write */
    bool to_write;  /* goes to the writer at the next CREATE_WRITING */
    int attempts;   /* keys tried */
    struct create_error err;
    struct create_item *next; /* a list being handed to a thread */
};

struct create {
    struct http_request *req;
    struct caller caller; /* the admission part: caller.count is the admission thread's job */
    enum create_stage stage;
    bool bulk;
    atomic_size_t pending; /* items still at the hashing threads or the writer */
    char *idem_key;        /* an idempotent create's reserved Idempotency-Key */
    size_t nitems;
    struct create_item items[];
};

static void create_free(void *p)
{
    struct create *c = p;

    for (size_t i = 0; c && i < c->nitems; i++) {
        struct create_item *it = &c->items[i];
        free(it->url);
        if (it->password)
            sodium_memzero(it->password, it->password_len);
        free(it->password);
        free(it->response);
    }
    if (c)
        free(c->idem_key);
    free(c);
}

static struct create *create_new(struct http_request *r, size_t nitems, bool bulk)
{
    struct create *c = calloc(1, sizeof(*c) + nitems * sizeof(c->items[0]));

    if (!c)
        return NULL;
    c->req = r;
    c->bulk = bulk;
    c->nitems = nitems;
    atomic_init(&c->pending, 0);
    for (size_t i = 0; i < nitems; i++)
        c->items[i].create = c;
    r->state = c;
    r->state_free = create_free;
    return c;
}

static void advance(struct create *c, enum create_stage next);

static bool any_password(const struct create *c)
{
    for (size_t i = 0; i < c->nitems; i++)
        if (c->items[i].password)
            return true;
    return false;
}

/* Where a create goes once it may be made. */
static enum create_stage after_count(const struct create *c)
{
    return any_password(c) ? CREATE_HASHING : CREATE_WRITING;
}

/* One item is back from a hashing thread or the writer; the last one moves the create on. */
static void item_back(struct create *c)
{
    if (atomic_fetch_sub_explicit(&c->pending, 1, memory_order_acq_rel) == 1)
        advance(c, c->stage == CREATE_HASHING ? CREATE_WRITING : CREATE_WRITTEN);
}

static void item_written(struct link_job *job)
{
    item_back(container_of(job, struct create_item, job)->create);
}

static void item_hashed(struct pwhash_job *job)
{
    struct create_item *it = container_of(job, struct create_item, hash);

    /* Hashed: the password itself is not needed any more. */
    sodium_memzero(it->password, it->password_len);
    free(it->password);
    it->password = NULL;
    if (job->rc < 0) {
        it->failed = true;
        it->to_write = false;
        it->err = (struct create_error){.status = 500, .type = "internal"};
        snprintf(it->err.detail, sizeof(it->err.detail), "the password could not be hashed");
    } else {
        it->job.password_hash = it->hash.hash;
        it->job.a.password_protected = true;
    }
    item_back(it->create);
}

/* On the admission thread: the create was counted. The common case (admitted, key confirmed
 * recently, no revocation since) goes straight on, so a create parks once; anything else
 * wakes the request to decide. */
static void counted(struct admission_job *job)
{
    struct create *c = container_of(job, struct create, caller.count);
    advance(c, caller_count_settled(&c->caller) ? after_count(c) : CREATE_COUNTED);
}

/* The answer an idempotent create records with its link (and gives): made before the write,
 * since it must be in the same commit. */
static char *link_text(struct create *c, const struct create_item *it)
{
    struct link l = {
        .url = it->url, .created_us = it->job.created_us, .visits = -1, .a = it->job.a};
    snprintf(l.key, sizeof(l.key), "%s", it->job.key);
    return linkjson_format(c->req->srv->base_url, &l);
}

/* Hands every item marked to_write to the writers, or every item with a password to the
 * hashing threads. The last of them back may resume the request at once, which may then
 * change the items: so the list is made first, and nothing of the create is touched after
 * the last submit. */
static void submit_items(struct create *c, bool hashing)
{
    struct server *s = c->req->srv;
    struct create_item *head = NULL, **tail = &head, *it, *next;
    size_t n = 0;

    for (size_t i = 0; i < c->nitems; i++) {
        it = &c->items[i];
        if (hashing ? !it->password || it->failed : !it->to_write)
            continue;
        if (hashing) {
            it->hash = (struct pwhash_job){
                .password = it->password, .len = it->password_len, .done = item_hashed};
        } else {
            it->to_write = false;
            it->attempts++;
            it->job.done = item_written;
            if (c->idem_key) {
                free(it->response);
                it->response = link_text(c, it);
                it->job.idem_key = c->idem_key;
                it->job.idem_response = it->response;
            }
        }
        it->next = NULL;
        *tail = it;
        tail = &it->next;
        n++;
    }
    atomic_store_explicit(&c->pending, n, memory_order_release);
    if (n == 0) {
        advance(c, hashing ? CREATE_WRITING : CREATE_WRITTEN);
        return;
    }
    for (it = head; it; it = next) {
        next = it->next;
        if (hashing) {
            if (pwhash_submit(s->pwhash, &it->hash) < 0) {
                it->hash.rc = -ENOMEM; /* shutting down */
                item_hashed(&it->hash);
            }
        } else if ((c->idem_key && !it->response) || linkwriter_submit(s->writer, &it->job) < 0) {
            it->job.rc = -EAGAIN; /* out of memory, or shutting down */
            item_written(&it->job);
        }
    }
}

/* Every change of stage happens here, on whichever thread makes it. The request is parked
 * whenever a create is past CREATE_VALIDATED, and only CREATE_COUNTED and CREATE_WRITTEN
 * resume it: from then on only the request thread touches the create until it parks it
 * again. */
static void advance(struct create *c, enum create_stage next)
{
    struct http_request *r = c->req;

    c->stage = next;
    switch (next) {
    case CREATE_VALIDATED:
        return;
    case CREATE_COUNTING:
        c->caller.count.done = counted;
        if (admission_submit(r->srv->admission, &c->caller.count) < 0) {
            /* Shutting down: count on this thread instead, answer when resumed. */
            caller_count_here(r, &c->caller);
            advance(c, CREATE_COUNTED);
        }
        return;
    case CREATE_HASHING:
        submit_items(c, true);
        return;
    case CREATE_WRITING:
        submit_items(c, false);
        return;
    case CREATE_COUNTED:
    case CREATE_WRITTEN:
        http_resume(r->conn);
        return;
    }
}

/* Parks the request, then moves on: the thread the create goes to may resume it at once. */
static enum http_step park(struct create *c, enum create_stage next)
{
    http_suspend(c->req);
    advance(c, next);
    return HTTP_ANSWERED;
}

static void set_error(struct create_error *err, unsigned status, const char *type,
                      const char *detail)
{
    err->status = status;
    err->type = type;
    snprintf(err->detail, sizeof(err->detail), "%s", detail);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Checks what one link's fields mean and fills in its item, taking a generated key unless
 * it names an alias. Returns 0, or -1 with the answer to give in err. */
static int validate(struct http_request *r, struct create_request *req, struct create_item *it,
                    struct create_error *err)
{
    struct server *s = r->srv;
    struct link_attrs *a = &it->job.a;
    enum urlcheck_result uc;
    int64_t now = time(NULL);

    err->status = 400;
    err->type = "invalid-url";
    if (!req->url) {
        snprintf(err->detail, sizeof(err->detail), "url is required");
        return -1;
    }
    uc = urlcheck_check(req->url, req->url_len, &s->self_hosts, &it->url);
    if (uc == URLCHECK_NOMEM) {
        set_error(err, 500, "internal", "out of memory");
        return -1;
    }
    if (uc != URLCHECK_OK) {
        snprintf(err->detail, sizeof(err->detail), "%s", urlcheck_describe(uc));
        return -1;
    }
    err->type = "invalid-alias";
    if (req->alias && request_check_alias(req->alias, err->detail, sizeof(err->detail)) < 0)
        return -1;
    err->type = "invalid-expiry";
    if (request_resolve_expiry(req, now, s->cfg.default_ttl, &a->expires_at, err->detail,
                               sizeof(err->detail)) < 0)
        return -1;
    if (req->has_valid_from && a->expires_at && req->valid_from >= a->expires_at) {
        set_error(err, 400, "invalid-field", "valid_from must be before the link expires");
        return -1;
    }
    a->valid_from = req->has_valid_from ? req->valid_from : 0;
    a->redirect_status = req->has_redirect_status ? req->redirect_status : 0;
    a->max_visits = req->has_max_visits ? req->max_visits : 0;
    a->public_stats = req->has_public_stats && req->public_stats;
    a->ntags = req->ntags;
    memcpy(a->tags, req->tags, sizeof(a->tags));
    /* The password moves to the item, to be hashed off this thread. */
    it->password = req->password;
    it->password_len = req->password_len;
    req->password = NULL;
    it->job.url = it->url;
    it->job.created_us = now_us();
    it->to_write = true;
    if (req->alias) {
        it->alias = true;
        snprintf(it->job.key, sizeof(it->job.key), "%s", req->alias);
    } else if (keys_client_take(s->keys, it->job.key) < 0) {
        metrics_inc(&s->metrics.kgs_errors);
        set_error(err, 503, "unavailable",
                  "the key generation service is unavailable; try again shortly");
        return -1;
    }
    return 0;
}

/* Parses the body into the create's one link. Returns 0, or -1 with the answer in err. */
static int parse_body(struct create *c, struct create_error *err)
{
    struct http_request *r = c->req;
    struct create_request req = {0};
    enum body_type type = request_body_type(http_header(r, "Content-Type"));
    int rc;

    if (type == BODY_UNSUPPORTED) {
        set_error(err, 415, "unsupported-media-type",
                  "send application/json or application/x-www-form-urlencoded");
        return -1;
    }
    set_error(err, 400, "invalid-body", "");
    rc = request_parse_create(type, r->body ? r->body : "", r->body_len, &req, err->detail,
                              sizeof(err->detail));
    if (rc == -ENOMEM)
        set_error(err, 500, "internal", "out of memory");
    if (rc == 0)
        rc = validate(r, &req, &c->items[0], err);
    create_request_release(&req);
    return rc < 0 ? -1 : 0;
}

static void set_owner(struct create *c)
{
    for (size_t i = 0; i < c->nitems; i++)
        c->items[i].job.owner = c->caller.key.id;
}

/* Counts the create on this thread (an idempotent or bulk create: it must know the outcome
 * before it goes on). HTTP_GO_ON when admitted. */
static enum http_step count_here(struct create *c)
{
    if (!c->caller.uncounted)
        return HTTP_GO_ON;
    caller_count_here(c->req, &c->caller);
    return caller_counted(c->req, &c->caller);
}

/* An idempotent create, counted and valid: reserve its key, or answer as the first create
 * with it was answered. HTTP_GO_ON when reserved. */
static enum http_step reserve_idempotency(struct create *c, const char *idem_key)
{
    struct http_request *r = c->req;
    unsigned char hash[IDEMPOTENCY_HASH_LEN];
    struct idempotency_record rec;
    enum http_step step;
    int rc;

    idempotency_body_hash(http_header(r, "Content-Type"), r->body, r->body_len, hash);
    rc = store_reserve_idempotency(r->worker->store, c->caller.key.id, idem_key, hash, &rec);
    if (rc == 0) {
        c->idem_key = strdup(idem_key);
        if (!c->idem_key) {
            store_release_idempotency(r->worker->store, c->caller.key.id, idem_key);
            return http_problem(r, 500, "internal", "out of memory");
        }
        return HTTP_GO_ON;
    }
    if (rc != -EEXIST) {
        metrics_inc(&r->srv->metrics.db_errors);
        return http_unavailable(r, "the database");
    }
    step = idempotency_answer(r, &rec, hash);
    free(rec.response);
    return step;
}

static void set_alias_taken(struct create_item *it)
{
    it->err = (struct create_error){.status = 409, .type = "alias-taken"};
    snprintf(it->err.detail, sizeof(it->err.detail), "the alias '%s' is taken", it->job.key);
}

/* An alias named again later in the same bulk is taken by the first item that names it. Left
 * to the writer threads, the two would go in different batches, and whichever committed first
 * would win. */
static void refuse_repeated_aliases(struct create *c)
{
    for (size_t i = 0; i < c->nitems; i++) {
        struct create_item *it = &c->items[i];
        if (it->failed || !it->alias)
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct create_item *first = &c->items[j];
            if (!first->failed && first->alias && strcmp(first->job.key, it->job.key) == 0) {
                it->failed = true;
                it->to_write = false;
                set_alias_taken(it);
                break;
            }
        }
    }
}

/* A bulk create's items: each parsed and checked on its own; those that fail keep their
 * answer and are not written. Returns 0, or -1 with the whole request's answer in err. */
static int parse_bulk(struct create *c, json_t *array, struct create_error *err)
{
    for (size_t i = 0; i < c->nitems; i++) {
        struct create_item *it = &c->items[i];
        struct create_request req;
        int rc;

        set_error(&it->err, 400, "invalid-body", "");
        rc = request_parse_object((const struct json_t *)json_array_get(array, i), REQUEST_CREATE,
                                  &req, it->err.detail, sizeof(it->err.detail));
        if (rc == -ENOMEM) {
            set_error(err, 500, "internal", "out of memory");
            return -1;
        }
        if (rc == 0) {
            rc = validate(c->req, &req, it, &it->err);
            create_request_release(&req);
        }
        if (rc < 0) {
            it->failed = true;
            it->to_write = false;
        }
    }
    refuse_repeated_aliases(c);
    return 0;
}

/* The array of a bulk body, checked for size before anything else. Returns it (json_decref)
 * or NULL with the answer in err. */
static json_t *bulk_array(struct http_request *r, struct create_error *err)
{
    json_error_t jerr;
    json_t *array;

    if (request_body_type(http_header(r, "Content-Type")) != BODY_JSON) {
        set_error(err, 415, "unsupported-media-type", "send a JSON array (application/json)");
        return NULL;
    }
    array = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!array) {
        set_error(err, 400, "invalid-body", "malformed JSON");
        return NULL;
    }
    if (!json_is_array(array) || json_array_size(array) < 1 ||
        json_array_size(array) > CREATE_BULK_MAX) {
        snprintf(err->detail, sizeof(err->detail), "the body must be a JSON array of 1 to %d links",
                 CREATE_BULK_MAX);
        err->status = 400;
        err->type = "invalid-body";
        json_decref(array);
        return NULL;
    }
    return array;
}

/* A bulk create: one admission for all its links (n units of the rate limit, all or none),
 * one pass through the writer, one answer listing each link's fate in order. */
static enum http_step bulk_start(struct http_request *r)
{
    struct create_error err;
    struct caller caller;
    struct create *c;
    enum http_step step;
    json_t *array;

    if (r->body_too_large)
        return http_problem(r, 413, "body-too-large", "the body is over %d bytes",
                            CREATE_BULK_MAX_BODY);
    /* Anonymous callers create one link at a time: a bulk create needs a key to be counted
     * against. */
    step = caller_begin(r, false, &caller);
    if (step != HTTP_GO_ON)
        return step;
    if (http_header(r, "Idempotency-Key")) {
        caller_show_unspent(r, &caller);
        return http_problem(r, 400, "invalid-header",
                            "Idempotency-Key is for single creates; retry a bulk create's failed "
                            "items instead");
    }
    array = bulk_array(r, &err);
    if (!array) {
        /* Refused before counting: the array's size decides whatever the limit. */
        caller_show_unspent(r, &caller);
        return http_problem(r, err.status, err.type, "%s", err.detail);
    }
    c = create_new(r, json_array_size(array), true);
    if (!c) {
        json_decref(array);
        return http_problem(r, 500, "internal", "out of memory");
    }
    c->caller = caller;
    if (c->caller.uncounted) {
        step = caller_count_all_here(r, &c->caller, (int64_t)c->nitems);
        if (step != HTTP_GO_ON) {
            json_decref(array);
            return step;
        }
    }
    if (parse_bulk(c, array, &err) < 0) {
        json_decref(array);
        return http_problem(r, err.status, err.type, "%s", err.detail);
    }
    json_decref(array);
    set_owner(c);
    return park(c, after_count(c));
}

/* A new create: admitted as far as can be without counting, validated, then parked while
 * the admission thread counts it (or straight on when there is nothing to count). The count
 * is made after validation so that a create parks only once in the common case; an invalid
 * one is counted here before its error is sent, so every create counts. */
static enum http_step create_start(struct http_request *r)
{
    struct create_error err;
    struct create *c;
    enum http_step step;
    char idem_key[IDEMPOTENCY_KEY_MAX + 1];
    const char *idem_header = http_header(r, "Idempotency-Key");

    if (r->body_too_large)
        return http_problem(r, 413, "body-too-large", "the body is over %d bytes",
                            REQUEST_MAX_BODY);
    c = create_new(r, 1, false);
    if (!c)
        return http_problem(r, 500, "internal", "out of memory");
    step = caller_begin(r, r->srv->cfg.allow_anonymous, &c->caller);
    if (step != HTTP_GO_ON)
        return step;
    if (idem_header && idempotency_parse_key(idem_header, idem_key) < 0) {
        step = count_here(c);
        if (step != HTTP_GO_ON)
            return step;
        return http_problem(r, 400, "invalid-header",
                            "Idempotency-Key must be 1 to %d visible ASCII characters, or such "
                            "a string in double quotes",
                            IDEMPOTENCY_KEY_MAX);
    }
    if (parse_body(c, &err) < 0) {
        step = count_here(c);
        if (step != HTTP_GO_ON)
            return step;
        return http_problem(r, err.status, err.type, "%s", err.detail);
    }
    if (idem_header) {
        step = count_here(c);
        if (step == HTTP_GO_ON)
            step = reserve_idempotency(c, idem_key);
        if (step != HTTP_GO_ON)
            return step;
    }
    set_owner(c);
    return park(c, c->caller.uncounted ? CREATE_COUNTING : after_count(c));
}

/* Resumed in CREATE_COUNTED: refused, or the key was looked at again. */
static enum http_step create_counted(struct create *c)
{
    enum http_step step = caller_counted(c->req, &c->caller);

    if (step != HTTP_GO_ON)
        return step;
    set_owner(c);
    return park(c, after_count(c));
}

/* Takes the next key for every generated key that turned out to be taken. Returns how many
 * items go to the writer again. */
static size_t retry_taken_keys(struct create *c)
{
    struct server *s = c->req->srv;
    size_t n = 0;

    for (size_t i = 0; i < c->nitems; i++) {
        struct create_item *it = &c->items[i];
        if (it->failed || it->job.rc != -EEXIST || it->alias || it->attempts >= KEY_ATTEMPTS)
            continue;
        if (keys_client_take(s->keys, it->job.key) < 0) {
            metrics_inc(&s->metrics.kgs_errors);
            it->failed = true;
            set_error(&it->err, 503, "unavailable",
                      "the key generation service is unavailable; try again shortly");
            continue;
        }
        it->to_write = true;
        n++;
    }
    return n;
}

/* What the writer made of one item: 0 when stored, else its answer in it->err. */
static int item_outcome(struct create *c, struct create_item *it)
{
    struct server *s = c->req->srv;
    int rc = it->job.rc;

    if (it->failed)
        return -1;
    if (rc == 0) {
        metrics_inc(&s->metrics.links_created);
        return 0;
    }
    if (rc == -EEXIST && it->alias) {
        set_alias_taken(it);
    } else if (rc == -EEXIST) {
        set_error(&it->err, 500, "internal", "could not find a free key");
    } else {
        metrics_inc(&s->metrics.db_errors);
        if (rc == -EAGAIN)
            set_error(&it->err, 503, "unavailable",
                      "the database is unavailable; try again shortly");
        else
            set_error(&it->err, 500, "internal", "the link could not be stored");
    }
    return -1;
}

/* The answer for a create of one link. */
static enum http_step answer_one(struct create *c)
{
    struct http_request *r = c->req;
    struct create_item *it = &c->items[0];
    char location[sizeof("/api/v1/urls/") + KEY_MAX_LEN];

    if (item_outcome(c, it) < 0) {
        if (c->idem_key)
            store_release_idempotency(r->worker->store, c->caller.key.id, c->idem_key);
        return http_problem(r, it->err.status, it->err.type, "%s", it->err.detail);
    }
    snprintf(location, sizeof(location), "/api/v1/urls/%s", it->job.key);
    const char *headers[] = {"Location", location, NULL};
    if (it->response) {
        char *text = it->response;
        it->response = NULL;
        return http_send_json(r, 201, text, headers);
    }
    return http_send_json(r, 201, link_text(c, it), headers);
}

/* The answer for a bulk create: each item's fate, in order. */
static enum http_step answer_bulk(struct create *c)
{
    json_t *items = json_array(), *root = json_pack("{s:o}", "items", items);
    char *text;

    for (size_t i = 0; root && i < c->nitems; i++) {
        struct create_item *it = &c->items[i];
        json_t *entry;
        if (item_outcome(c, it) == 0) {
            struct link l = {
                .url = it->url, .created_us = it->job.created_us, .visits = -1, .a = it->job.a};
            snprintf(l.key, sizeof(l.key), "%s", it->job.key);
            entry = json_pack("{s:i, s:o}", "status", 201, "link",
                              (json_t *)linkjson_object(c->req->srv->base_url, &l));
        } else {
            entry = json_pack("{s:i, s:o}", "status", (int)it->err.status, "problem",
                              http_problem_object(it->err.status, it->err.type, it->err.detail));
        }
        if (!entry || json_array_append_new(items, entry) < 0) {
            json_decref(root);
            root = NULL;
        }
    }
    text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return http_send_json(c->req, 200, text, NULL);
}

/* Resumed in CREATE_WRITTEN: answer, or try the next keys. */
static enum http_step create_written(struct create *c)
{
    struct http_request *r = c->req;

    if (c->caller.count.name[0]) {
        /* Counted on another thread: the answer carries what it found. */
        r->rl_result = c->caller.count.result;
        r->rl_policy = c->caller.count.policy;
        r->ratelimited = true;
    }
    if (retry_taken_keys(c) > 0)
        return park(c, CREATE_WRITING);
    return c->bulk ? answer_bulk(c) : answer_one(c);
}

enum http_step create_handle(struct http_request *r, bool bulk)
{
    struct create *c = r->state;

    if (!c)
        return bulk ? bulk_start(r) : create_start(r);
    switch (c->stage) {
    case CREATE_COUNTED:
        return create_counted(c);
    case CREATE_WRITTEN:
        return create_written(c);
    case CREATE_VALIDATED:
    case CREATE_COUNTING:
    case CREATE_HASHING:
    case CREATE_WRITING:
        break;
    }
    log_error("request %llu: create resumed in stage %d", (unsigned long long)r->id, c->stage);
    return HTTP_BROKEN;
}
