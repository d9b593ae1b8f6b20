/* The stats endpoint (see stats.h). */
#include "stats.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analytics.h"
#include "caller.h"
#include "metrics.h"
#include "server.h"
#include "statsquery.h"
#include "store.h"
#include "timefmt.h"

static enum http_step db_error(struct http_request *r, int rc)
{
    metrics_inc(&r->srv->metrics.db_errors);
    return rc == -EAGAIN ? http_unavailable(r, "the database")
                         : http_problem(r, 500, "internal", "the database failed");
}

static json_t *top_list(const struct stats_top *t)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < t->n; i++)
        json_array_append_new(
            list, json_pack("{s:s, s:I}", "name", t->name[i], "visits", (json_int_t)t->visits[i]));
    return list;
}

/* The series as JSON text, written directly: a year by the hour is 8,761 buckets, and
 * building and dumping an object per bucket with jansson cost several times the query. NULL
 * when out of memory (free() it). */
static char *series_text(const struct stats_query *q, const struct stats_result *res)
{
    /* ,{"t":"2030-01-01T00:00:00Z","visits":<up to 20 digits>} */
    enum { BUCKET_MAX = 64 };
    int64_t *sums = calloc(q->nbuckets, sizeof(*sums));
    size_t cap = q->nbuckets * BUCKET_MAX + 3, len = 0;
    char *out = malloc(cap), t[TIMEFMT_LEN];

    if (!sums || !out) {
        free(sums);
        free(out);
        return NULL;
    }
    for (size_t i = 0; i < res->npoints; i++) {
        int64_t b = stats_floor(res->points[i].t, q->step);
        if (b < q->first_bucket)
            continue;
        size_t at = (size_t)((b - q->first_bucket) / q->step);
        if (at < q->nbuckets)
            sums[at] += res->points[i].visits;
    }
    out[len++] = '[';
    for (size_t i = 0; i < q->nbuckets; i++) {
        timefmt_format(q->first_bucket + (int64_t)i * q->step, t);
        len += (size_t)snprintf(out + len, cap - len, "%s{\"t\":\"%s\",\"visits\":%lld}",
                                i ? "," : "", t, (long long)sums[i]);
    }
    out[len++] = ']';
    out[len] = '\0';
    free(sums);
    return out;
}

/* head (a compact JSON object) with "series":series added at its end. */
static char *with_series(const char *head, const char *series)
{
    static const char name[] = ",\"series\":";
    size_t hl = strlen(head), sl = strlen(series);
    char *text = hl >= 2 ? malloc(hl - 1 + sizeof(name) - 1 + sl + 2) : NULL;

    if (!text)
        return NULL;
    memcpy(text, head, hl - 1);
    memcpy(text + hl - 1, name, sizeof(name) - 1);
    memcpy(text + hl - 1 + sizeof(name) - 1, series, sl);
    memcpy(text + hl - 1 + sizeof(name) - 1 + sl, "}", 2);
    return text;
}

static enum http_step answer(struct http_request *r, const char *key, const struct stats_query *q)
{
    const int64_t range[6] = {q->first_hour, q->last_hour,  q->day_from,
                              q->day_to,     q->block_from, q->block_to};
    /* An hourly series reads every hour from the hourly rows. */
    const int64_t hourly[4] = {q->first_hour, q->last_hour, q->last_hour + STATS_HOUR,
                               q->last_hour + STATS_HOUR};
    struct stats_result res;
    int64_t human = 0, bots = 0;
    char from[TIMEFMT_LEN], to[TIMEFMT_LEN], *head, *series, *text;
    json_t *root;
    int rc;

    rc = store_stats(r->worker->store, key, range, q->step == STATS_HOUR ? hourly : range, &res);
    if (rc < 0) {
        free(res.points);
        return db_error(r, rc);
    }
    const struct stats_top *b = &res.top[DIM_BOT - 1];
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->name[i], "bot") == 0)
            bots += b->visits[i];
        else
            human += b->visits[i];
    }
    timefmt_format(q->from, from);
    timefmt_format(q->to, to);
    root = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:o?, s:o?, s:o?, s:o?, s:o?}", "key", key, "from",
        from, "to", to, "interval", q->step == STATS_HOUR ? "hour" : "day", "total",
        (json_int_t)(human + bots), "human", (json_int_t)human, "bots", (json_int_t)bots,
        "referrers", top_list(&res.top[DIM_REFERRER - 1]), "countries",
        top_list(&res.top[DIM_COUNTRY - 1]), "browsers", top_list(&res.top[DIM_BROWSER - 1]), "os",
        top_list(&res.top[DIM_OS - 1]), "devices", top_list(&res.top[DIM_DEVICE - 1]));
    head = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    series = series_text(q, &res);
    free(res.points);
    text = head && series ? with_series(head, series) : NULL;
    free(head);
    free(series);
    return http_send_json(r, 200, text, NULL);
}

enum http_step stats_handle(struct http_request *r, const char *key)
{
    struct caller caller;
    struct stats_query q;
    bool sent = caller_sent_credentials(r), public_stats = false;
    enum http_step step;
    int64_t owner = 0;
    char err[256];
    int rc;

    if (sent) {
        step = caller_admit(r, false, &caller);
        if (step != HTTP_GO_ON)
            return step;
    }
    rc = store_stats_link(r->worker->store, key, &owner, &public_stats);
    if (rc < 0 && rc != -ENOENT)
        return db_error(r, rc);
    if (rc == -ENOENT || !public_stats) {
        /* Without credentials: 401, as for any private read (existence is not leaked). */
        if (!sent)
            return caller_admit(r, false, &caller);
        if (rc == -ENOENT || (!caller.key.is_admin && caller.key.id != owner))
            return http_problem(r, 404, "not-found", "no link with this key");
    }
    if (stats_query_parse(http_query(r, "from"), http_query(r, "to"), http_query(r, "interval"),
                          (int64_t)time(NULL), &q, err, sizeof(err)) < 0)
        return http_problem(r, 400, "invalid-parameter", "%s", err);
    return answer(r, key, &q);
}
