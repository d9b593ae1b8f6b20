/* GCRA rate limiting, shared through Redis, with an in-process fallback (see ratelimit.h). */
#include "ratelimit.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apikey.h"
#include "keyhash.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"

#define USEC              1000000LL
#define LOCAL_SLOTS       8192
#define LOCAL_PROBES      8
#define REDIS_KEY_PREFIX  "rl:"
#define REDIS_REPLY_COUNT 5

/* ratelimit_gcra() in Lua, run by Redis atomically. TIME is Redis's clock, the same for every
 * server instance. Microseconds since 1970 (~2^51) are exact in Lua's doubles, and so are the
 * sums below: interval * burst is at most 3.6e9 * 1e6. The TAT is written with %.0f because
 * tostring() would round it to 14 digits. The key expires once the whole burst is back,
 * when the state would say nothing anyway.
 * It also reads the revocation counter, which costs nothing extra here.
 * KEYS[1]: the limit's key, KEYS[2]: RATELIMIT_REVOCATIONS_KEY; ARGV: interval (us), burst,
 * mode (0 ask, 1 commit, 2 commit all n or none: ratelimit_gcra_all), n (requests, >= 1). Reply:
 * {admitted (0..n), remaining, reset (us), retry (us), revocations}. n requests arriving together
 * are admitted in order while the TAT allows, each moving it one interval on: the same as n calls,
 * in one script run. */
static const char gcra_script[] =
    "local interval = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local n = tonumber(ARGV[4])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local revoked = tonumber(redis.call('GET', KEYS[2]) or '0') or 0\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
    "if tat < now then tat = now end\n"
    "local k = math.floor((now + (burst - 1) * interval - tat) / interval) + 1\n"
    "if k > n then k = n end\n"
    "if ARGV[3] == '2' and k < n then\n"
    "  if k < 0 then k = 0 end\n"
    "  return {0, k, tat - now, tat + (n - burst) * interval - now, revoked}\n"
    "end\n"
    "if k <= 0 then return {0, 0, tat - now, tat + interval - burst * interval - now, revoked} "
    "end\n"
    "local new_tat = tat + k * interval\n"
    "if ARGV[3] ~= '0' then\n"
    "  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',\n"
    "             math.floor((new_tat - now) / 1000) + 1)\n"
    "end\n"
    "local retry = 0\n"
    "if k < n then retry = new_tat + interval - burst * interval - now end\n"
    "return {k, math.floor((now + burst * interval - new_tat) / interval), new_tat - now, retry,\n"
    "        revoked}\n";

int64_t ratelimit_interval_us(const struct ratelimit_policy *p)
{
    return (p->window * USEC + p->limit - 1) / p->limit;
}

int64_t ratelimit_gcra_n(int64_t *tat, int64_t now_us, int64_t interval_us, int64_t burst,
                         int64_t n, bool commit, struct ratelimit_result *out)
{
    int64_t t = *tat > now_us ? *tat : now_us;
    /* Floor division: the numerator is negative once the TAT is more than a burst ahead. */
    int64_t ahead = now_us + (burst - 1) * interval_us - t;
    int64_t k =
        (ahead >= 0 ? ahead / interval_us : -((-ahead + interval_us - 1) / interval_us)) + 1;

    if (k > n)
        k = n;
    if (k <= 0) {
        *out = (struct ratelimit_result){.allowed = false,
                                         .remaining = 0,
                                         .reset_us = t - now_us,
                                         .retry_us = t + interval_us - burst * interval_us - now_us,
                                         .revocations = -1};
        return 0;
    }
    int64_t new_tat = t + k * interval_us;
    if (commit)
        *tat = new_tat;
    *out = (struct ratelimit_result){
        .allowed = true,
        .remaining = (now_us + burst * interval_us - new_tat) / interval_us,
        .reset_us = new_tat - now_us,
        .retry_us = k < n ? new_tat + interval_us - burst * interval_us - now_us : 0,
        .revocations = -1};
    return k;
}

int64_t ratelimit_gcra_all(int64_t *tat, int64_t now_us, int64_t interval_us, int64_t burst,
                           int64_t n, struct ratelimit_result *out)
{
    int64_t t = *tat > now_us ? *tat : now_us;
    int64_t k = ratelimit_gcra_n(tat, now_us, interval_us, burst, n, false, out);

    if (k < n) {
        *out = (struct ratelimit_result){.allowed = false,
                                         .remaining = k,
                                         .reset_us = t - now_us,
                                         .retry_us = t + (n - burst) * interval_us - now_us,
                                         .revocations = -1};
        return 0;
    }
    return ratelimit_gcra_n(tat, now_us, interval_us, burst, n, true, out);
}

void ratelimit_gcra(int64_t *tat, int64_t now_us, int64_t interval_us, int64_t burst, bool commit,
                    struct ratelimit_result *out)
{
    ratelimit_gcra_n(tat, now_us, interval_us, burst, 1, commit, out);
}

int ratelimit_parse_policy(const char *spec, struct ratelimit_policy *out)
{
    int limit, window;

    if (apikey_parse_rate(spec, &limit, &window) < 0)
        return -EINVAL;
    *out = (struct ratelimit_policy){.limit = limit, .window = window, .burst = limit};
    return 0;
}

static int64_t ceil_seconds(int64_t us)
{
    return (us + USEC - 1) / USEC;
}

int64_t ratelimit_retry_after(const struct ratelimit_result *r)
{
    int64_t s = ceil_seconds(r->retry_us);
    return s < 1 ? 1 : s;
}

void ratelimit_format_policy(const struct ratelimit_policy *p, char *buf, size_t cap)
{
    snprintf(buf, cap, "\"default\";q=%lld;w=%lld", (long long)p->limit, (long long)p->window);
}

void ratelimit_format_state(const struct ratelimit_result *r, char *buf, size_t cap)
{
    int64_t t = r->allowed ? ceil_seconds(r->reset_us) : ratelimit_retry_after(r);
    snprintf(buf, cap, "\"default\";r=%lld;t=%lld", (long long)r->remaining, (long long)t);
}

int ratelimit_local_init(struct ratelimit_local *l, size_t nslots)
{
    memset(l, 0, sizeof(*l));
    if (nslots == 0 || (nslots & (nslots - 1)) != 0)
        return -EINVAL;
    l->slots = calloc(nslots, sizeof(*l->slots));
    if (!l->slots)
        return -ENOMEM;
    if (pthread_mutex_init(&l->lock, NULL) != 0) {
        free(l->slots);
        l->slots = NULL;
        return -ENOMEM;
    }
    l->nslots = nslots;
    return 0;
}

void ratelimit_local_release(struct ratelimit_local *l)
{
    if (!l->slots)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l->slots);
    l->slots = NULL;
}

/* all: n or none (ratelimit_gcra_all), which commits; else as ratelimit_gcra_n. */
static int64_t local_check(struct ratelimit_local *l, const char *key, int64_t now_us,
                           const struct ratelimit_policy *p, int64_t n, bool commit, bool all,
                           struct ratelimit_result *out)
{
    /* Keyed: the keys hold client addresses, and anyone with many IPv6 /64s could otherwise
     * pick addresses that land on the slots of a given limit and push it out of the table,
     * where it would start again with a full burst. */
    size_t mask = l->nslots - 1, at = (size_t)keyhash(key, strlen(key)) & mask;
    struct ratelimit_slot *slot = NULL, *oldest = NULL;

    pthread_mutex_lock(&l->lock);
    /* A slot whose TAT has passed holds no information (a full burst): it is free. */
    for (size_t i = 0; i < LOCAL_PROBES; i++) {
        struct ratelimit_slot *s = &l->slots[(at + i) & mask];
        if (strcmp(s->key, key) == 0) {
            slot = s;
            break;
        }
        if (!oldest || s->tat < oldest->tat)
            oldest = s;
    }
    if (!slot) {
        slot = oldest;
        snprintf(slot->key, sizeof(slot->key), "%s", key);
        slot->tat = 0;
    }
    int64_t k =
        all ? ratelimit_gcra_all(&slot->tat, now_us, ratelimit_interval_us(p), p->burst, n, out)
            : ratelimit_gcra_n(&slot->tat, now_us, ratelimit_interval_us(p), p->burst, n, commit,
                               out);
    pthread_mutex_unlock(&l->lock);
    return k;
}

int64_t ratelimit_local_check_n(struct ratelimit_local *l, const char *key, int64_t now_us,
                                const struct ratelimit_policy *p, int64_t n, bool commit,
                                struct ratelimit_result *out)
{
    return local_check(l, key, now_us, p, n, commit, false, out);
}

int64_t ratelimit_local_check_all(struct ratelimit_local *l, const char *key, int64_t now_us,
                                  const struct ratelimit_policy *p, int64_t n,
                                  struct ratelimit_result *out)
{
    return local_check(l, key, now_us, p, n, true, true, out);
}

void ratelimit_local_check(struct ratelimit_local *l, const char *key, int64_t now_us,
                           const struct ratelimit_policy *p, bool commit,
                           struct ratelimit_result *out)
{
    ratelimit_local_check_n(l, key, now_us, p, 1, commit, out);
}

int ratelimit_init(struct ratelimit *rl, struct metrics *m)
{
    int rc = ratelimit_local_init(&rl->local, LOCAL_SLOTS);
    if (rc < 0)
        return rc;
    rl->metrics = m;
    atomic_init(&rl->fallback, false);
    rl->ready = true;
    return 0;
}

void ratelimit_release(struct ratelimit *rl)
{
    if (!rl->ready)
        return;
    ratelimit_local_release(&rl->local);
    rl->ready = false;
}

static int64_t monotonic_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * USEC + ts.tv_nsec / 1000;
}

enum mode { MODE_ASK = 0, MODE_COMMIT = 1, MODE_ALL = 2 };

static int64_t check(struct ratelimit *rl, struct redis *r, const char *key,
                     const struct ratelimit_policy *p, int64_t n, enum mode mode,
                     struct ratelimit_result *out)
{
    char rkey[sizeof(REDIS_KEY_PREFIX) + RATELIMIT_KEY_MAX];
    const char *keys[2] = {rkey, RATELIMIT_REVOCATIONS_KEY};
    long long args[4] = {ratelimit_interval_us(p), p->burst, mode, n}, reply[REDIS_REPLY_COUNT];

    snprintf(rkey, sizeof(rkey), REDIS_KEY_PREFIX "%s", key);
    if (redis_eval(r, gcra_script, keys, 2, args, 4, reply, REDIS_REPLY_COUNT) == 0) {
        if (atomic_exchange(&rl->fallback, false)) {
            atomic_store(&rl->metrics->ratelimit_fallback, 0);
            log_info("ratelimit: redis answers again; limits are shared by every instance");
        }
        *out = (struct ratelimit_result){.allowed = reply[0] > 0,
                                         .remaining = reply[1],
                                         .reset_us = reply[2],
                                         .retry_us = reply[3],
                                         .revocations = reply[4]};
        return reply[0];
    }
    if (!atomic_exchange(&rl->fallback, true)) {
        atomic_store(&rl->metrics->ratelimit_fallback, 1);
        metrics_inc(&rl->metrics->ratelimit_fallbacks);
        log_warn("ratelimit: redis unavailable (%s); limiting in this instance alone until it "
                 "answers again",
                 redis_error(r));
    }
    if (mode == MODE_ALL)
        return ratelimit_local_check_all(&rl->local, key, monotonic_us(), p, n, out);
    return ratelimit_local_check_n(&rl->local, key, monotonic_us(), p, n, mode == MODE_COMMIT, out);
}

int64_t ratelimit_check_n(struct ratelimit *rl, struct redis *r, const char *key,
                          const struct ratelimit_policy *p, int64_t n, bool commit,
                          struct ratelimit_result *out)
{
    return check(rl, r, key, p, n, commit ? MODE_COMMIT : MODE_ASK, out);
}

int64_t ratelimit_check_all(struct ratelimit *rl, struct redis *r, const char *key,
                            const struct ratelimit_policy *p, int64_t n,
                            struct ratelimit_result *out)
{
    return check(rl, r, key, p, n, MODE_ALL, out);
}

void ratelimit_check(struct ratelimit *rl, struct redis *r, const char *key,
                     const struct ratelimit_policy *p, bool commit, struct ratelimit_result *out)
{
    ratelimit_check_n(rl, r, key, p, 1, commit, out);
}
