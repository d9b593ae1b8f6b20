/* The refill thread of kgs: keeps claimed keys in memory and unclaimed keys in the
 * PostgreSQL pool above their low-water marks, through one connection it owns. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "keypool.h"
#include "kgs.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
/* How often the refill thread looks at the pool when nothing drains memory: other kgs
 * instances may be emptying it meanwhile. */
#define POOL_CHECK_MS 1000

struct refill_state {
    PGconn *conn;
    bool outage_logged;
    unsigned failures;
    int backoff_ms;
    bool mem_filling, pool_filling;
    char (*batch)[KEYBUF_SLOT];
    char err[512];
};

/* One line when an outage starts, one when it ends; attempts in between only at debug. */
static void refill_failed(struct kgs *k, struct refill_state *st)
{
    if (st->conn) {
        PQfinish(st->conn);
        st->conn = NULL;
    }
    st->failures++;
    if (!st->outage_logged) {
        log_error("postgresql unavailable, retrying until it is back: %s", st->err);
        st->outage_logged = true;
    } else {
        log_debug("postgresql still unavailable: %s", st->err);
    }
    atomic_store(&k->db_down, true);
    st->backoff_ms = st->backoff_ms ? st->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (st->backoff_ms > BACKOFF_MAX_MS)
        st->backoff_ms = BACKOFF_MAX_MS;
    /* Level 0 is never reached: a sleep that keybuf_stop() cuts short. */
    keybuf_wait_below(&k->buf, 0, st->backoff_ms);
}

static void refill_recovered(struct kgs *k, struct refill_state *st)
{
    if (st->outage_logged)
        log_info("postgresql is back after %u failed attempts", st->failures);
    st->outage_logged = false;
    st->failures = 0;
    st->backoff_ms = 0;
    atomic_store(&k->db_down, false);
}

/* One pass: claim into memory if it is low, top the pool up if it is low. Returns 1 when it
 * did some work, 0 when both levels are fine, -EIO on a database error (reason in st->err).
 * Each level has hysteresis: below half it is filled right up to its target again. */
static int refill_pass(struct kgs *k, struct refill_state *st)
{
    size_t cap = (size_t)k->cfg.memory_keys;
    long long target = k->cfg.pool_size;
    size_t have = keybuf_count(&k->buf);
    bool pool_short = false, worked = false;
    long long pool;
    int rc;

    if (have < cap / 2)
        st->mem_filling = true;
    if (st->mem_filling) {
        size_t want = cap - have < KEYPOOL_MAX_BATCH ? cap - have : KEYPOOL_MAX_BATCH;
        if (want > 0) {
            rc = keypool_claim(st->conn, want, st->batch, st->err, sizeof(st->err));
            if (rc < 0)
                return rc;
            /* Only this thread puts, so the room counted above is still there. */
            size_t stored = keybuf_put(&k->buf, st->batch, (size_t)rc);
            if (stored < (size_t)rc)
                log_warn("discarded %zu claimed keys: memory full", (size_t)rc - stored);
            log_debug("claimed %d keys, %zu in memory", rc, have + stored);
            pool_short = (size_t)rc < want;
            have += stored;
            worked = rc > 0;
        }
        if (have >= cap)
            st->mem_filling = false;
    }
    pool = keypool_unclaimed(st->conn, st->err, sizeof(st->err));
    if (pool < 0)
        return (int)pool;
    if (pool < target / 2 || pool_short)
        st->pool_filling = true;
    else if (pool >= target)
        st->pool_filling = false;
    if (st->pool_filling) {
        long long want = target - pool < KEYPOOL_MAX_BATCH ? target - pool : KEYPOOL_MAX_BATCH;
        /* A short claim proves the pool dry, whatever the estimate says (gaps in seq). */
        if (pool_short || want < 1)
            want = KEYPOOL_MAX_BATCH;
        rc = keypool_generate(st->conn, (size_t)want, st->err, sizeof(st->err));
        if (rc < 0)
            return rc;
        log_debug("generated %d keys, about %lld unclaimed", rc, pool + rc);
        worked = true;
    }
    return worked ? 1 : 0;
}

static void *refill_main(void *arg)
{
    struct kgs *k = arg;
    struct refill_state st = {.mem_filling = true, .pool_filling = true};
    size_t low = (size_t)k->cfg.memory_keys / 2;

    st.batch = malloc(KEYPOOL_MAX_BATCH * sizeof(*st.batch));
    if (!st.batch) {
        log_error("refill: out of memory; no keys will be served");
        return NULL;
    }
    while (!keybuf_stopping(&k->buf)) {
        if (!st.conn) {
            st.conn = keypool_connect(k->cfg.database_url, st.err, sizeof(st.err));
            if (!st.conn) {
                refill_failed(k, &st);
                continue;
            }
        }
        int rc = refill_pass(k, &st);
        if (rc < 0) {
            refill_failed(k, &st);
            continue;
        }
        refill_recovered(k, &st);
        if (rc == 0)
            keybuf_wait_below(&k->buf, low, POOL_CHECK_MS);
    }
    if (st.conn)
        PQfinish(st.conn);
    free(st.batch);
    return NULL;
}

int refill_start(struct kgs *k)
{
    int rc = pthread_create(&k->refill, NULL, refill_main, k);
    if (rc != 0) {
        log_error("cannot start the refill thread: %s", strerror(rc));
        return -rc;
    }
    k->refill_started = true;
    return 0;
}

bool refill_stop(struct kgs *k)
{
    struct timespec deadline;

    if (!k->refill_started)
        return true;
    deadline_after(CLOCK_REALTIME, STOP_WAIT_MS, &deadline);
    /* A statement in flight may take a while; its claimed keys are lost, never reused. */
    if (pthread_timedjoin_np(k->refill, NULL, &deadline) != 0) {
        log_warn("the refill thread did not finish in time");
        return false;
    }
    k->refill_started = false;
    return true;
}
