/* A create request from its arrival to its answer: the object, its stages and what each
 * thread does with it (see create.h). */
#include "create.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admission.h"
#include "caller.h"
#include "container_of.h"
#include "keys_client.h"
#include "linkjson.h"
#include "linkwriter.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "server.h"
#include "urlcheck.h"

/* A generated key can collide with a custom alias spelt like one; the next key will not. */
#define KEY_ATTEMPTS 5

enum create_stage {
    CREATE_VALIDATED, /* on the request thread, not parked yet */
    CREATE_COUNTING,  /* at the admission thread */
    CREATE_COUNTED,   /* back on the request thread to decide on the count */
    CREATE_WRITING,   /* at a link writer */
    CREATE_WRITTEN    /* back on the request thread to answer */
};

struct create;

/* One link of a create. */
struct create_item {
    struct create *create;
    struct link_job job; /* the writer's part */
    char *url;           /* owned: the job points at it */
    bool alias;          /* a key the caller chose, rather than a generated one */
    bool to_write;       /* goes to the writer at the next CREATE_WRITING */
    int attempts;        /* keys tried */
    struct create_item *next_write;
};

struct create {
    struct http_request *req;
    struct caller caller; /* the admission part: caller.count is the admission thread's job */
    enum create_stage stage;
    atomic_size_t writing; /* items still at the writer */
    size_t nitems;
    struct create_item items[];
};

/* Why a create cannot go ahead, to be sent once it has been counted. */
struct create_error {
    unsigned status;
    const char *type;
    char detail[256];
};

static void create_free(void *p)
{
    struct create *c = p;

    for (size_t i = 0; c && i < c->nitems; i++)
        free(c->items[i].url);
    free(c);
}

static struct create *create_new(struct http_request *r, size_t nitems)
{
    struct create *c = calloc(1, sizeof(*c) + nitems * sizeof(c->items[0]));

    if (!c)
        return NULL;
    c->req = r;
    c->nitems = nitems;
    atomic_init(&c->writing, 0);
    for (size_t i = 0; i < nitems; i++)
        c->items[i].create = c;
    r->state = c;
    r->state_free = create_free;
    return c;
}

static void advance(struct create *c, enum create_stage next);

/* On a writer thread: one link is stored or refused; the last one moves the create on. */
static void item_written(struct link_job *job)
{
    struct create_item *it = container_of(job, struct create_item, job);
    struct create *c = it->create;

    if (atomic_fetch_sub_explicit(&c->writing, 1, memory_order_acq_rel) == 1)
        advance(c, CREATE_WRITTEN);
}

/* On the admission thread: the create was counted. The common case (admitted, key confirmed
 * recently, no revocation since) goes straight on to the writer, so a create parks once;
 * anything else wakes the request to decide. */
static void counted(struct admission_job *job)
{
    struct create *c = container_of(job, struct create, caller.count);
    advance(c, caller_count_settled(&c->caller) ? CREATE_WRITING : CREATE_COUNTED);
}

/* Hands every item marked to_write to the writers. The last of them to be stored may resume
 * the request at once, which may then change the items: so the list is made first, and
 * nothing of the create is touched after the last submit. */
static void submit_writes(struct create *c)
{
    struct linkwriter *writer = c->req->srv->writer;
    struct create_item *head = NULL, **tail = &head, *it, *next;
    size_t n = 0;

    for (size_t i = 0; i < c->nitems; i++) {
        it = &c->items[i];
        if (!it->to_write)
            continue;
        it->to_write = false;
        it->attempts++;
        it->job.done = item_written;
        it->next_write = NULL;
        *tail = it;
        tail = &it->next_write;
        n++;
    }
    atomic_store_explicit(&c->writing, n, memory_order_release);
    if (n == 0) {
        advance(c, CREATE_WRITTEN);
        return;
    }
    for (it = head; it; it = next) {
        next = it->next_write;
        if (linkwriter_submit(writer, &it->job) < 0) {
            it->job.rc = -EAGAIN; /* shutting down */
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
    case CREATE_WRITING:
        submit_writes(c);
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

/* Checks one link's fields and fills in its item, taking a generated key unless it names an
 * alias. Returns 0, or -1 with the answer to give in err. */
static int validate(struct http_request *r, const struct create_request *req,
                    struct create_item *it, struct create_error *err)
{
    struct server *s = r->srv;
    enum urlcheck_result uc;

    err->status = 400;
    err->type = "invalid-url";
    if (!req->url) {
        snprintf(err->detail, sizeof(err->detail), "url is required");
        return -1;
    }
    uc = urlcheck_validate(req->url, req->url_len, s->base_url, &it->url);
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
    if (request_resolve_expiry(req, time(NULL), s->cfg.default_ttl, &it->job.expires_at,
                               err->detail, sizeof(err->detail)) < 0)
        return -1;
    it->job.url = it->url;
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

/* A new create: admitted as far as can be without counting, validated, then parked while
 * the admission thread counts it (or straight for the writer when there is nothing to
 * count). The count is made after validation so that a create parks only once in the
 * common case; an invalid one is counted here before its error is sent, so every create
 * counts. */
static enum http_step create_start(struct http_request *r)
{
    struct create_error err;
    struct create *c;
    enum http_step step;

    if (r->body_too_large)
        return http_problem(r, 413, "body-too-large", "the body is over %d bytes",
                            REQUEST_MAX_BODY);
    c = create_new(r, 1);
    if (!c)
        return http_problem(r, 500, "internal", "out of memory");
    step = caller_begin(r, r->srv->cfg.allow_anonymous, &c->caller);
    if (step != HTTP_GO_ON)
        return step;
    if (parse_body(c, &err) < 0) {
        if (c->caller.uncounted) {
            caller_count_here(r, &c->caller);
            step = caller_counted(r, &c->caller);
            if (step != HTTP_GO_ON)
                return step;
        }
        return http_problem(r, err.status, err.type, "%s", err.detail);
    }
    set_owner(c);
    return park(c, c->caller.uncounted ? CREATE_COUNTING : CREATE_WRITING);
}

/* Resumed in CREATE_COUNTED: refused, or the key was looked at again. */
static enum http_step create_counted(struct create *c)
{
    enum http_step step = caller_counted(c->req, &c->caller);

    if (step != HTTP_GO_ON)
        return step;
    set_owner(c);
    return park(c, CREATE_WRITING);
}

/* Takes the next key for every generated key that turned out to be taken. Returns how many
 * items go to the writer again, or -EAGAIN when kgs is unavailable. */
static int retry_taken_keys(struct create *c)
{
    struct server *s = c->req->srv;
    int n = 0;

    for (size_t i = 0; i < c->nitems; i++) {
        struct create_item *it = &c->items[i];
        if (it->job.rc != -EEXIST || it->alias || it->attempts >= KEY_ATTEMPTS)
            continue;
        if (keys_client_take(s->keys, it->job.key) < 0) {
            metrics_inc(&s->metrics.kgs_errors);
            return -EAGAIN;
        }
        it->to_write = true;
        n++;
    }
    return n;
}

/* The answer for a create of one link. */
static enum http_step answer_one(struct create *c)
{
    struct http_request *r = c->req;
    struct server *s = r->srv;
    const struct link_job *job = &c->items[0].job;
    char location[sizeof("/api/v1/urls/") + LINK_KEY_MAX];

    if (job->rc == -EEXIST)
        return c->items[0].alias
                   ? http_problem(r, 409, "alias-taken", "the alias '%s' is taken", job->key)
                   : http_problem(r, 500, "internal", "could not find a free key");
    if (job->rc < 0) {
        metrics_inc(&s->metrics.db_errors);
        return job->rc == -EAGAIN
                   ? http_unavailable(r, "the database")
                   : http_problem(r, 500, "internal", "the link could not be stored");
    }
    metrics_inc(&s->metrics.links_created);
    snprintf(location, sizeof(location), "/api/v1/urls/%s", job->key);
    const char *headers[] = {"Location", location, NULL};
    return http_send_json(
        r, 201,
        linkjson_format(s->base_url, job->key, job->url, job->created_at, job->expires_at, -1),
        headers);
}

/* Resumed in CREATE_WRITTEN: answer, or try the next key. */
static enum http_step create_written(struct create *c)
{
    struct http_request *r = c->req;
    int n;

    if (c->caller.count.name[0]) {
        /* Counted on the admission thread: the answer carries what it found. */
        r->rl_result = c->caller.count.result;
        r->rl_policy = c->caller.count.policy;
        r->ratelimited = true;
    }
    n = retry_taken_keys(c);
    if (n < 0)
        return http_unavailable(r, "the key generation service");
    if (n > 0)
        return park(c, CREATE_WRITING);
    return answer_one(c);
}

enum http_step create_handle(struct http_request *r)
{
    struct create *c = r->state;

    if (!c)
        return create_start(r);
    switch (c->stage) {
    case CREATE_COUNTED:
        return create_counted(c);
    case CREATE_WRITTEN:
        return create_written(c);
    case CREATE_VALIDATED:
    case CREATE_COUNTING:
    case CREATE_WRITING:
        break;
    }
    log_error("request %llu: create resumed in stage %d", (unsigned long long)r->id, c->stage);
    return HTTP_BROKEN;
}
