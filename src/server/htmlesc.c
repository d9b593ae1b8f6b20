/* HTML escaping (see htmlesc.h). */
#include "htmlesc.h"

#include <string.h>

size_t htmlesc(const char *s, char *out, size_t cap)
{
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (; *s; s++) {
        const char *rep = NULL;
        char one[2] = {*s, '\0'};
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            rep = one;
        }
        size_t len = strlen(rep);
        if (n + len >= cap)
            break;
        memcpy(out + n, rep, len);
        n += len;
    }
    out[n] = '\0';
    return n;
}
