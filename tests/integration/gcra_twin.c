/* The C side of test_gcra_lua.py: gives the test the rate limit's Lua script exactly as the
 * server sends it to Redis, and runs its C twin, ratelimit_gcra_n(), on the same cases.
 *
 *   gcra_twin script   prints gcra_script
 *   gcra_twin          reads cases "interval burst n commit tat now" (integers, one per line;
 *                      tat 0: no state) and prints one line per case,
 *                      "admitted remaining reset retry tat", tat being the state afterwards
 *
 * Like a unit test it #includes the module, so it sees the script's static text. */
#include "ratelimit.c"

#include <inttypes.h>

int main(int argc, char **argv)
{
    char line[256];

    if (argc == 2 && strcmp(argv[1], "script") == 0) {
        fputs(gcra_script, stdout);
        return ferror(stdout) ? 1 : 0;
    }
    if (argc != 1) {
        fprintf(stderr, "usage: gcra_twin [script] < cases\n");
        return 2;
    }
    while (fgets(line, sizeof(line), stdin)) {
        int64_t interval, burst, n, commit, tat, now;
        struct ratelimit_result r;

        if (sscanf(line, "%" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64 " %" SCNd64,
                   &interval, &burst, &n, &commit, &tat, &now) != 6 ||
            interval < 1 || burst < 1 || n < 1) {
            fprintf(stderr, "gcra_twin: bad case: %s", line);
            return 2;
        }
        int64_t k = ratelimit_gcra_n(&tat, now, interval, burst, n, commit != 0, &r);
        printf("%" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 " %" PRId64 "\n", k, r.remaining,
               r.reset_us, r.retry_us, tat);
    }
    return ferror(stdout) || ferror(stdin) ? 1 : 0;
}
