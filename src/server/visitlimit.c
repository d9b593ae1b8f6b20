/* The visit-limit counter in Redis (see visitlimit.h). */
#include "visitlimit.h"

#include <errno.h>
#include <stdio.h>

#include "link.h"
#include "redis.h"

/* KEYS[1]: "mv:<key>"; ARGV: max, durable count (-1: unknown), ttl (0: none), take (1/0).
 * Reply: {result}. Counting past the maximum is refused, so the counter never passes it. */
static const char visitlimit_script[] =
    "local n = redis.call('GET', KEYS[1])\n"
    "if not n then\n"
    "  if ARGV[2] == '-1' then return {-1} end\n"
    "  n = ARGV[2]\n"
    "  if ARGV[3] ~= '0' then redis.call('SET', KEYS[1], n, 'EX', ARGV[3])\n"
    "  else redis.call('SET', KEYS[1], n) end\n"
    "end\n"
    "if tonumber(n) >= tonumber(ARGV[1]) then return {0} end\n"
    "if ARGV[4] == '1' then redis.call('INCR', KEYS[1]) end\n"
    "return {1}\n";

int visitlimit_take(struct redis *r, const char *key, int64_t max, int64_t durable, int64_t ttl,
                    bool take)
{
    char name[KEY_MAX_LEN + 4];
    const char *keys[1] = {name};
    long long args[4] = {max, durable < 0 ? -1 : durable, ttl > 0 ? ttl : 0, take}, out;

    snprintf(name, sizeof(name), "mv:%s", key);
    if (redis_eval(r, visitlimit_script, keys, 1, args, 4, &out, 1) < 0)
        return -EAGAIN;
    return (int)out;
}
