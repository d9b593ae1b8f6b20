/* SQL shared by the server's store and shortenerctl about a link's visit count, which lives in
 * two places while analytics are on (migrations/0015_visits_in_stats.sql): urls.visits, and
 * the uncounted visits of the link's rows in visit_recent. */
#ifndef SHORTENER_VISITSQL_H
#define SHORTENER_VISITSQL_H

/* A link's visits as far as PostgreSQL has them, in a statement over urls. */
#define VISITSQL_LINK_VISITS                                                                       \
    "(urls.visits + COALESCE((SELECT sum(r.uncounted) FROM visit_recent r"                         \
    " WHERE r.key = urls.key), 0))::bigint"

/* The same, read only for a link with a visit limit: the only reader of a redirect's count. */
#define VISITSQL_LIMITED_VISITS                                                                    \
    "CASE WHEN max_visits IS NULL THEN visits ELSE " VISITSQL_LINK_VISITS " END"

/* CTEs that add the uncounted visits of the visit_recent rows a CTE named c deleted (and
 * returned with their key and uncounted) to urls.visits. The links are locked in key order,
 * as the server's visits flush locks them (store.c, ST_VISITS), so the two never deadlock. To
 * follow c's CTE and a comma. */
#define VISITSQL_COUNT_DELETED                                                                     \
    " cn AS (SELECT key, sum(uncounted)::bigint AS n FROM c GROUP BY key"                          \
    " HAVING sum(uncounted) > 0),"                                                                 \
    " l AS MATERIALIZED (SELECT u.key FROM urls u JOIN cn ON u.key = cn.key"                       \
    " ORDER BY u.key FOR NO KEY UPDATE OF u),"                                                     \
    " counted AS (UPDATE urls u SET visits = u.visits + cn.n"                                      \
    " FROM cn JOIN l ON l.key = cn.key WHERE u.key = cn.key)"

#endif
