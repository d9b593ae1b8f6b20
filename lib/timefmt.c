/* RFC 3339 timestamps for the API's expires_at and created_at. The calendar arithmetic is
 * our own (days from the civil date, after Howard Hinnant's algorithms) rather than
 * strptime/timegm, so results never depend on the locale or TZ of the process, and the
 * parser is strict: every field is range-checked, nothing is normalised silently. */
#include "timefmt.h"

#include <errno.h>
#include <stdbool.h>

#define SECS_PER_DAY 86400
/* 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the four-digit years we can write. */
#define EPOCH_MIN (-62135596800LL)
#define EPOCH_MAX 253402300799LL

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d. */
static int64_t days_from_civil(int y, int m, int d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Reads exactly n digits at s[*pos]. */
static bool digits(const char *s, size_t len, size_t *pos, int n, int *out)
{
    int v = 0;

    if (len - *pos < (size_t)n)
        return false;
    for (int i = 0; i < n; i++) {
        char c = s[*pos + (size_t)i];
        if (c < '0' || c > '9')
            return false;
        v = v * 10 + (c - '0');
    }
    *pos += (size_t)n;
    *out = v;
    return true;
}

static bool expect(const char *s, size_t len, size_t *pos, char c)
{
    if (*pos >= len || s[*pos] != c)
        return false;
    (*pos)++;
    return true;
}

int timefmt_parse(const char *s, size_t len, int64_t *epoch)
{
    int year, mon, day, hour, min, sec, off_h = 0, off_m = 0, sign = 0;
    size_t pos = 0;

    if (!s)
        return -EINVAL;
    if (!digits(s, len, &pos, 4, &year) || !expect(s, len, &pos, '-') ||
        !digits(s, len, &pos, 2, &mon) || !expect(s, len, &pos, '-') ||
        !digits(s, len, &pos, 2, &day))
        return -EINVAL;
    if (pos >= len || (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' '))
        return -EINVAL;
    pos++;
    if (!digits(s, len, &pos, 2, &hour) || !expect(s, len, &pos, ':') ||
        !digits(s, len, &pos, 2, &min) || !expect(s, len, &pos, ':') ||
        !digits(s, len, &pos, 2, &sec))
        return -EINVAL;
    if (pos < len && s[pos] == '.') {
        size_t start = ++pos;
        while (pos < len && s[pos] >= '0' && s[pos] <= '9')
            pos++;
        if (pos == start)
            return -EINVAL;
    }
    if (pos >= len)
        return -EINVAL;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        pos++;
    } else if (s[pos] == '+' || s[pos] == '-') {
        sign = s[pos] == '+' ? 1 : -1;
        pos++;
        if (!digits(s, len, &pos, 2, &off_h) || !expect(s, len, &pos, ':') ||
            !digits(s, len, &pos, 2, &off_m))
            return -EINVAL;
    } else {
        return -EINVAL;
    }
    if (pos != len)
        return -EINVAL;

    if (year < 1 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
        return -EINVAL;
    /* Second 60 is a leap second; POSIX time has none, so it reads as the next second. */
    if (hour > 23 || min > 59 || sec > 60 || off_h > 23 || off_m > 59)
        return -EINVAL;
    *epoch = days_from_civil(year, mon, day) * SECS_PER_DAY + hour * 3600 + min * 60 + sec -
             sign * (off_h * 3600 + off_m * 60);
    return 0;
}

static void put_digits(char *p, int v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* Times outside years 1-9999 cannot be written in RFC 3339; they are clamped to its ends. */
void timefmt_format(int64_t epoch, char buf[TIMEFMT_LEN])
{
    int64_t days, secs;
    int y, m, d;

    if (epoch < EPOCH_MIN)
        epoch = EPOCH_MIN;
    if (epoch > EPOCH_MAX)
        epoch = EPOCH_MAX;
    days = epoch / SECS_PER_DAY;
    secs = epoch % SECS_PER_DAY;
    if (secs < 0) {
        secs += SECS_PER_DAY;
        days--;
    }
    civil_from_days(days, &y, &m, &d);
    put_digits(buf, y, 4);
    buf[4] = '-';
    put_digits(buf + 5, m, 2);
    buf[7] = '-';
    put_digits(buf + 8, d, 2);
    buf[10] = 'T';
    put_digits(buf + 11, (int)(secs / 3600), 2);
    buf[13] = ':';
    put_digits(buf + 14, (int)(secs / 60 % 60), 2);
    buf[16] = ':';
    put_digits(buf + 17, (int)(secs % 60), 2);
    buf[19] = 'Z';
    buf[20] = '\0';
}
