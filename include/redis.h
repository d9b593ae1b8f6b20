/* The one Redis client of every program: where Redis is (struct redis_target, parsed once at
 * start-up from REDIS_URL), connecting (AUTH, SELECT, short timeouts), reconnecting with a
 * back-off, and the commands we send.
 *
 * Redis is an accelerator: every failure is reported as -EAGAIN and the caller carries on
 * without it. After a failure a connection is not tried again for a second (on the monotonic
 * clock), so a dead Redis costs one timeout per second per connection, not one per request.
 *
 * "Where is the master" is answered by redis_target_resolve() alone; every connection asks it
 * before each connect. An error reply (READONLY from a demoted master, say) drops the
 * connection, so the next attempt asks again. hiredis's types stay out of this header. */
#ifndef SHORTENER_REDIS_H
#define SHORTENER_REDIS_H

#include <stdatomic.h>
#include <stddef.h>

struct redisContext;
struct redis;

/* Redis answers in microseconds; anything slower than this is treated as down. */
#define REDIS_TIMEOUT_MS 250

#define REDIS_SENTINELS_MAX 8

/* A Sentinel to ask where the master is. */
struct redis_sentinel {
    char host[256];
    int port;
};

/* Where Redis is, as configured. Copied freely; holds the password, so it is described with
 * redis_target_describe() and never printed as it is. With sentinels, host, port and path
 * are unused: the master is whatever the sentinels name master_name. */
struct redis_target {
    char host[256];
    char path[256]; /* a Unix socket: host is then empty */
    char password[256];
    int port;
    int db;
    struct redis_sentinel sentinels[REDIS_SENTINELS_MAX];
    int nsentinels;
    char master_name[128];
    /* Advanced when the sentinels name another master (redis_target_master_changed()): every
     * connection made before is dropped before its next command. */
    atomic_uint generation;
};

/* An address to connect to: what redis_target_resolve() answers. */
struct redis_addr {
    char host[256];
    char path[256];
    int port;
};

/* Parses "redis://[[user]:password@]host[:port][/db]" (a user part without ':' is the
 * password; a user name is ignored: AUTH sends the password alone) or "unix:///path". The
 * password ends at the last '@', so it may hold '@' and '/'. Returns 0, or -EINVAL with the
 * reason in err, which shows url with its password masked. */
int redis_target_parse(const char *url, struct redis_target *out, char *err, size_t errlen);

/* Makes t follow a master through Sentinel (REDIS_SENTINELS, REDIS_MASTER_NAME): sentinels
 * is "host:port,..." ("[v6]:port" for IPv6; port 26379 when left out), master_name the name
 * they monitor it by. Both empty: no Sentinel, t is left as it is. t keeps its password and
 * database, for the master; the sentinels themselves are asked without a password.
 * Returns 0, or -EINVAL with the reason in err. */
int redis_target_set_sentinels(struct redis_target *t, const char *sentinels,
                               const char *master_name, char *err, size_t errlen);

/* The target as a URL with its password masked, for log lines; REDIS_DESCRIBE_MAX bytes always
 * suffice. Returns buf. */
#define REDIS_DESCRIBE_MAX 320
const char *redis_target_describe(const struct redis_target *t, char *buf, size_t cap);

/* Tells every connection made from t that the master has changed: each reconnects (through
 * Sentinel) before its next command. A live old master keeps accepting writes until Sentinel
 * demotes it, seconds later; whoever sees Sentinel name another master calls this. */
void redis_target_master_changed(const struct redis_target *t);

/* Where to connect now: the one answer to "where is the master". Without sentinels that is
 * the configured address; with them, the address the first sentinel that answers gives for
 * master_name (SENTINEL get-master-addr-by-name), each tried in turn with REDIS_TIMEOUT_MS.
 * Returns 0, or -EAGAIN with the reason in err. */
int redis_target_resolve(const struct redis_target *t, struct redis_addr *out, char *err,
                         size_t errlen);

/* Resolves t and connects, with REDIS_TIMEOUT_MS for the connect and every command, AUTH and
 * SELECT done; through Sentinel, the server must also say it is a master (ROLE), or the
 * connection is refused: a sentinel may name a master that a failover is demoting.
 *
 * How a failover is followed: by re-resolving on error, not by a subscription to the
 * sentinels' +switch-master. Sentinel kills the normal and pub/sub clients of every instance
 * it reconfigures (CLIENT KILL TYPE normal in the same MULTI as its REPLICAOF), and a dead
 * master drops them or times out, so every connection to an old master fails and its next
 * connect asks Sentinel again; a write that still reaches a demoted master gets READONLY,
 * which drops the connection too, and the command is sent once more on the new master. A
 * subscription would add a connection and a thread per server for an event that pub/sub may
 * lose anyway, so the error path would still be needed. Returns a hiredis context the caller owns
 * (redisFree) and may use as it likes (the pub/sub listener subscribes on it), or NULL with the
 * reason in err (never the password). */
struct redisContext *redis_connect(const struct redis_target *t, char *err, size_t errlen);

/* The same, saying where it connected in *where. */
struct redisContext *redis_connect_at(const struct redis_target *t, struct redis_addr *where,
                                      char *err, size_t errlen);

/* One connection for one thread at a time, connected lazily. t must outlive it. NULL when out
 * of memory. */
struct redis *redis_new(const struct redis_target *t);
void redis_free(struct redis *r);

/* Why the last command failed. */
const char *redis_error(const struct redis *r);

/* fn(r, ctx) runs on the connection before each command: at once after every (re)connect,
 * before the connection serves anything, and before each later command, so it should return
 * quickly when it has nothing to do. Commands it sends on r go straight to the connection
 * (no hook, no reconnect). A negative return fails the command as a lost connection would. */
typedef int (*redis_prepare_fn)(struct redis *r, void *ctx);
void redis_set_prepare(struct redis *r, redis_prepare_fn fn, void *ctx);

enum redis_kind { REDIS_KIND_NIL, REDIS_KIND_STRING, REDIS_KIND_INTEGER, REDIS_KIND_OTHER };

/* A reply as far as our callers look at it. str (NUL-terminated, len bytes: a bulk or status
 * string) belongs to r and stays valid until r runs its next command. */
struct redis_reply {
    enum redis_kind kind;
    const char *str;
    size_t len;
    long long integer;
};

/* Runs a command, given as a hiredis format ("SET %s %b": %s and %b are whole arguments) or
 * as an argument vector (argvlen NULL: the arguments are NUL-terminated). reply may be NULL.
 * A connection that worked before and fails now (Redis restarted, say) is reconnected and
 * the command sent again at once, so every command must be safe to run twice. Returns 0, or
 * -EAGAIN when Redis is unavailable or answered with an error (the connection is then
 * dropped). */
int redis_command(struct redis *r, struct redis_reply *reply, const char *fmt, ...);
int redis_command_argv(struct redis *r, struct redis_reply *reply, int argc,
                       const char *const *argv, const size_t *argvlen);

/* Runs one command whose reply is an array (MGET, say), given as an argument vector, and
 * calls each(ctx, i, element) for its elements in order; an element's str is valid during
 * the call only. Retried like redis_command(). Returns 0, -EAGAIN (as redis_command()),
 * -EPROTO when the reply is not an array, or each's negative return. */
int redis_command_each(struct redis *r, int argc, const char *const *argv, const size_t *argvlen,
                       int (*each)(void *ctx, size_t i, const struct redis_reply *element),
                       void *ctx);

/* One command of a pipeline, filled in by the caller's build function. */
struct redis_argv {
    int argc;
    const char *const *argv;
    const size_t *argvlen; /* NULL: the arguments are NUL-terminated */
};

/* Sends n commands and then reads their n replies: one round trip. build(ctx, i, cmd) fills
 * in command i; hiredis copies it at once, so build may reuse its buffers. Every reply must
 * be other than an error. Retried like redis_command(). Returns 0, -EAGAIN (unavailable, or
 * an error reply: the connection is then dropped), -ENOMEM, or build's negative return. */
int redis_pipeline(struct redis *r, size_t n,
                   int (*build)(void *ctx, size_t i, struct redis_argv *cmd), void *ctx);

/* Runs a Lua script on nkeys keys with integer arguments (at most 8 of each); its reply, an
 * array of at least nout integers, goes to out. The script is loaded once per connection
 * (SCRIPT LOAD) and run by its SHA (EVALSHA); should Redis have forgotten it (NOSCRIPT), it
 * is sent again (EVAL). One round trip per call. script must outlive r. Returns 0, -EAGAIN
 * when Redis is unavailable, -EINVAL for too many keys or arguments, or -EPROTO when the
 * reply is not what was asked for. */
int redis_eval(struct redis *r, const char *script, const char *const *keys, int nkeys,
               const long long *args, int nargs, long long *out, size_t nout);

/* INCR key. Returns 0 or -EAGAIN. */
int redis_incr(struct redis *r, const char *key);

/* PING. Returns 0 or -EAGAIN. */
int redis_ping(struct redis *r);

#endif
