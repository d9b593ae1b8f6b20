/* The refill thread of kgs: keeps claimed keys in memory above their low-water mark,
 * claiming index ranges through one PostgreSQL connection it owns. */
#include <errno.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bgthread.h"
#include "deadline.h"
#include "keyperm.h"
#include "keycounter.h"
#include "kgs.h"
#include "log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 1000
/* How often an idle refill thread wakes: only to notice a stop, since nobody else can take
 * the keys it holds. */
#define IDLE_CHECK_MS 1000

struct refill_state {
    PGconn *conn;
    bool outage_logged;
    unsigned failures;
    int backoff_ms;
    bool mem_filling;
    bool perm_ready;
    struct keyperm perm;
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

/* One pass: claim into memory if it is low. Returns 1 when it did some work, 0 when memory
 * is full enough, -EIO on a database error (reason in st->err). Below half it is filled
 * right up again, so claims come in big ranges rather than one per taken batch. */
static int refill_pass(struct kgs *k, struct refill_state *st)
{
    size_t cap = (size_t)k->cfg.memory_keys;
    size_t have = keybuf_count(&k->buf);
    uint64_t first = 0;
    int rc;

    if (have < cap / 2)
        st->mem_filling = true;
    if (!st->mem_filling)
        return 0;
    size_t want = cap - have < KEYCOUNTER_MAX_BATCH ? cap - have : KEYCOUNTER_MAX_BATCH;
    if (want == 0) {
        st->mem_filling = false;
        return 0;
    }
    rc = keycounter_claim(st->conn, want, &first, st->err, sizeof(st->err));
    if (rc < 0)
        return rc;
    if (rc == 0) {
        log_error("cannot claim keys: %s", st->err);
        return -ENOSPC;
    }
    for (size_t i = 0; i < want; i++)
        keyperm_key(&st->perm, first + i, st->batch[i]);
    /* Only this thread puts, so the room counted above is still there. */
    size_t stored = keybuf_put(&k->buf, st->batch, want);
    if (stored < want)
        log_warn("discarded %zu claimed keys: memory full", want - stored);
    log_debug("claimed %zu keys from index %llu, %zu in memory", want, (unsigned long long)first,
              have + stored);
    if (have + stored >= cap)
        st->mem_filling = false;
    return 1;
}

static void *refill_main(void *arg)
{
    struct kgs *k = arg;
    struct refill_state st = {.mem_filling = true};
    unsigned char secret[KEYPERM_SECRET_LEN];
    size_t low = (size_t)k->cfg.memory_keys / 2;

    st.batch = malloc(KEYCOUNTER_MAX_BATCH * sizeof(*st.batch));
    if (!st.batch) {
        log_error("refill: out of memory; no keys will be served");
        return NULL;
    }
    while (!keybuf_stopping(&k->buf)) {
        if (!st.conn) {
            st.conn = keycounter_connect(k->cfg.database_url, secret, st.err, sizeof(st.err));
            if (!st.conn) {
                refill_failed(k, &st);
                continue;
            }
            if (!st.perm_ready) {
                keyperm_init(&st.perm, secret);
                st.perm_ready = true;
            }
            sodium_memzero(secret, sizeof(secret));
        }
        int rc = refill_pass(k, &st);
        if (rc < 0) {
            refill_failed(k, &st);
            continue;
        }
        refill_recovered(k, &st);
        if (rc == 0)
            keybuf_wait_below(&k->buf, low, IDLE_CHECK_MS);
    }
    if (st.conn)
        PQfinish(st.conn);
    keyperm_release(&st.perm);
    free(st.batch);
    return NULL;
}

int refill_start(struct kgs *k)
{
    int rc = bgthread_start(&k->refill, "refill", refill_main, k);
    if (rc < 0) {
        log_error("cannot start the refill thread: %s", strerror(-rc));
        return rc;
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
