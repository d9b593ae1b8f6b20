/* The uids that may connect to kgs (see peers.h). */
#include "peers.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "numparse.h"

static int add(struct peers *p, uid_t uid)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->uids[i] == uid)
            return 0;
    if (p->n == PEERS_MAX)
        return -ENOSPC;
    p->uids[p->n++] = uid;
    return 0;
}

/* One item: digits are a uid, anything else a user name looked up in the password
 * database. */
static int item_uid(const char *item, size_t len, uid_t *uid)
{
    char name[64], buf[4096];
    struct passwd pw, *found = NULL;
    long long v;

    if (len == 0 || len >= sizeof(name))
        return -EINVAL;
    if (item[0] >= '0' && item[0] <= '9') {
        if (numparse_ll_n(item, len, 0, 0xfffffffeLL, 0, &v) < 0)
            return -EINVAL;
        *uid = (uid_t)v;
        return 0;
    }
    memcpy(name, item, len);
    name[len] = '\0';
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &found) != 0 || !found)
        return -ENOENT;
    *uid = found->pw_uid;
    return 0;
}

int peers_parse(const char *list, uid_t self, struct peers *out, char *err, size_t errlen)
{
    const char *p = list ? list : "";

    memset(out, 0, sizeof(*out));
    add(out, self);
    while (*p) {
        size_t n = strcspn(p, ","), len = n;
        const char *item = p;
        uid_t uid;
        while (len > 0 && (*item == ' ' || *item == '\t')) {
            item++;
            len--;
        }
        while (len > 0 && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            len--;
        int rc = item_uid(item, len, &uid);
        if (rc == 0)
            rc = add(out, uid);
        if (rc < 0) {
            snprintf(err, errlen, "KGS_ALLOWED_UIDS: '%.*s' is %s", (int)(len < 64 ? len : 64),
                     item,
                     rc == -ENOENT   ? "no user on this system"
                     : rc == -ENOSPC ? "one too many (at most 31 uids)"
                                     : "not a uid or user name");
            return -EINVAL;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

bool peers_allowed(const struct peers *p, uid_t uid)
{
    if (uid == 0)
        return true;
    for (size_t i = 0; i < p->n; i++)
        if (p->uids[i] == uid)
            return true;
    return false;
}

int peers_uid_of(int fd, uid_t *uid)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return -errno;
    *uid = cred.uid;
    return 0;
}
