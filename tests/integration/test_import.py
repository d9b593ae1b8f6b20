"""`shortenerctl import FORMAT FILE`: links from csv, YOURLS, Shlink and Bitly exports, with
their keys, visits and creation times; a reason for every skipped line; nothing made twice when
the same file is imported again; bad files refused with exit status 2 before anything is
stored; stopped cleanly by SIGTERM between batches; and a long file read in constant memory.

This module runs its own stack: it loads hundreds of thousands of links."""

import os
import re
import signal
import subprocess
import threading
import time

import pytest

import stack as stk

SUMMARY_RE = re.compile(r"^imported (\d+), skipped (\d+)$")
LINE_RE = re.compile(r"^line (\d+): (.*)$")
BOM = "\ufeff"


@pytest.fixture(scope="module")
def ist():
    # Unknown keys stay cached as unknown for a minute, as a deployment may have them: an
    # import must not leave a key it made looking unknown.
    with stk.running_stack("import", NEGATIVE_TTL=60) as st:
        yield st


@pytest.fixture
def client(ist):
    return stk.Client(ist.server)


def ctl_env(st, extra=None):
    env = {"DATABASE_URL": st.pg.dsn, "REDIS_URL": st.redis.url, "BASE_URL": st.server.base_url,
           "SHORTENER_ENV_FILE": st.root / "no-such-env-file"}
    env.update(extra or {})
    return stk.base_env(env)


def run_import(st, fmt, path, *flags, timeout=120):
    """shortenerctl import, with the server's BASE_URL; returns the CompletedProcess."""
    return st.ctl("import", fmt, path, *flags, env={"BASE_URL": st.server.base_url},
                  timeout=timeout)


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def summary(res):
    """(imported, skipped) from the last line of standard output, which must be exactly that."""
    lines = res.stdout.splitlines()
    assert lines, f"no output; stderr: {res.stderr}"
    m = SUMMARY_RE.match(lines[-1])
    assert m, f"last line is not the summary: {lines[-1]!r}"
    return int(m.group(1)), int(m.group(2))


def reasons(res):
    """{line: reason} of the skipped lines on standard error; warnings and other lines apart."""
    out = {}
    for text in res.stderr.splitlines():
        m = LINE_RE.match(text)
        if m and not m.group(2).startswith("warning: "):
            assert int(m.group(1)) not in out, f"line {m.group(1)} reported twice:\n{res.stderr}"
            out[int(m.group(1))] = m.group(2)
    return out


def warnings(res):
    return {int(m.group(1)): m.group(2)[len("warning: "):]
            for m in map(LINE_RE.match, res.stderr.splitlines())
            if m and m.group(2).startswith("warning: ")}


def imported_ok(res, imported, skipped=0):
    assert res.returncode == 0, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert summary(res) == (imported, skipped), f"{res.stdout}\n{res.stderr}"
    assert len(reasons(res)) == skipped, res.stderr


def refused(res, *needles):
    """Exit status 2, nothing imported, a message on stderr naming every needle."""
    assert res.returncode == 2, f"exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    assert "imported" not in res.stdout, res.stdout
    for n in needles:
        assert n in res.stderr, f"{n!r} not in {res.stderr!r}"
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def row(st, key):
    """(url, owner, created epoch, expires epoch or None, visits, tags) of a link, or None."""
    out = st.psql(f"SELECT url, coalesce(owner_id::text, ''),"
                  f" extract(epoch FROM created_at)::bigint,"
                  f" coalesce(extract(epoch FROM expires_at)::bigint::text, ''), visits,"
                  f" array_to_string(tags, ',') FROM urls WHERE key = '{key}'")
    if not out:
        return None
    url, owner, created, expires, visits, tags = out.split("|")
    return (url, int(owner) if owner else None, int(created), int(expires) if expires else None,
            int(visits), tags.split(",") if tags else [])


def count_prefix(st, prefix):
    return int(st.psql(f"SELECT count(*) FROM urls WHERE key LIKE '{prefix}%'"))


def assert_redirects(client, key, url):
    r = client.resolve(key)
    assert r.status_code == 301, f"GET /{key}: {r.status_code} {r.text[:200]}"
    assert r.headers["Location"] == url


def epoch(text):
    return int(stk.parse_time(text))


# ------------------------------------------------------------------------------ the formats


def test_csv(ist, client, tmp_path):
    text = (BOM + "url,alias,expires_at\r\n"
            '"https://example.com/search?q=a,b&lang=en",csv-comma,\r\n'
            "https://example.com/plain,csv-plain,2099-01-01T00:00:00Z\r\n"
            '"https://example.com/quoted","csv-quoted","2099-06-01T12:00:00+02:00"\r\n'
            "https://example.com/no-alias/csv,,\r\n")
    path = write(tmp_path, "links.csv", text)
    res = run_import(ist, "csv", path)
    imported_ok(res, 4)

    assert row(ist, "csv-comma")[:2] == ("https://example.com/search?q=a,b&lang=en", None)
    assert row(ist, "csv-comma")[3] is None, "no expires_at: the link never expires"
    assert row(ist, "csv-plain")[3] == epoch("2099-01-01T00:00:00Z")
    assert row(ist, "csv-quoted")[3] == epoch("2099-06-01T10:00:00Z")
    made = ist.psql("SELECT key FROM urls WHERE url = 'https://example.com/no-alias/csv'")
    assert re.fullmatch(r"[0-9A-Za-z]{10}", made), made
    for key, url in [("csv-comma", "https://example.com/search?q=a,b&lang=en"),
                     ("csv-plain", "https://example.com/plain"), (made,
                                                                  "https://example.com/no-alias/csv")]:
        assert_redirects(client, key, url)

    # The same file again creates nothing, and says why for every line.
    again = run_import(ist, "csv", path)
    imported_ok(again, 0, 4)
    why = reasons(again)
    assert why[2] == "key 'csv-comma' already exists, with this url"
    assert why[5] == f"already imported (as key '{made}', made from its url)"
    assert ist.psql("SELECT count(*) FROM urls WHERE url LIKE 'https://example.com/%csv%'"
                    " OR key LIKE 'csv-%'") == "4"


def test_csv_header_in_any_order_and_case(ist, tmp_path):
    path = write(tmp_path, "order.csv", "Expires_At,ALIAS,Url\n,csv-order,https://example.com/o\n")
    imported_ok(run_import(ist, "csv", path), 1)
    assert row(ist, "csv-order")[0] == "https://example.com/o"


def test_yourls(ist, client, tmp_path):
    # phpMyAdmin's CSV export of yourls_url, column names in the first row.
    text = ('"keyword","url","title","timestamp","ip","clicks"\n'
            '"ozh-blog","https://blog.yourls.org/","YOURLS\' Blog, the ""official"" one",'
            '"2015-03-04 05:06:07","127.0.0.1","1234"\n'
            '"yrl-2","https://yourls.org/?a=1,2","Title with\na line break","2020-01-02 03:04:05",'
            '"10.0.0.1","0"\n'
            '"1","https://example.com/too-short","","2020-01-02 03:04:05","::1","5"\n')
    path = write(tmp_path, "yourls_url.csv", text)
    res = run_import(ist, "yourls", path)
    imported_ok(res, 2, 1)
    assert reasons(res) == {5: "key '1' is not 3 to 64 characters long"}

    url, owner, created, expires, visits, _ = row(ist, "ozh-blog")
    assert (url, owner, expires, visits) == ("https://blog.yourls.org/", None, None, 1234)
    assert created == epoch("2015-03-04T05:06:07Z")
    assert row(ist, "yrl-2")[2] == epoch("2020-01-02T03:04:05Z")
    assert_redirects(client, "ozh-blog", "https://blog.yourls.org/")
    assert_redirects(client, "yrl-2", "https://yourls.org/?a=1,2")
    # The API shows the visits and creation time the file had.
    key = ist.create_apikey("yourls-admin")
    ist.psql(f"UPDATE urls SET owner_id = {key[1]} WHERE key = 'ozh-blog'")
    owner = stk.Client(ist.server, key[0])
    body = owner.read("ozh-blog").json()
    assert body["created_at"] == "2015-03-04T05:06:07Z", body
    # Counting goes on from the imported count: the redirect above was one more visit.
    stk.wait_until("the visit counted", lambda: owner.read("ozh-blog").json()["visits"] == 1235,
                   10)

    again = run_import(ist, "yourls", path)
    imported_ok(again, 0, 3)


def test_shlink(ist, client, tmp_path):
    # Shlink's web client exports its short URLs with these columns (json2csv, all quoted).
    text = ('"createdAt","domain","shortCode","shortUrl","longUrl","title","tags","visits"\n'
            '"2023-05-01T10:20:30+02:00","","shl-one","https://s.test/shl-one",'
            '"https://example.com/shlink/1","A ""quoted"" title, with comma","news|tech",42\n'
            '"2022-12-31T23:59:59+00:00","s.test","shl-two","https://s.test/shl-two",'
            '"https://example.com/shlink/2","","my tag|ok_tag|news|ok_tag",0\n'
            '"2022-12-31T23:59:59+00:00","","shl/sub","https://s.test/shl/sub",'
            '"https://example.com/shlink/3","","",1\n')
    path = write(tmp_path, "short_urls.csv", text)
    res = run_import(ist, "shlink", path)
    imported_ok(res, 2, 1)
    assert reasons(res)[4].startswith("key 'shl/sub' has characters other than"), res.stderr
    assert "tags left out: 'my tag'" in warnings(res)[3], res.stderr

    url, _, created, _, visits, tags = row(ist, "shl-one")
    assert (url, visits, tags) == ("https://example.com/shlink/1", 42, ["news", "tech"])
    assert created == epoch("2023-05-01T08:20:30Z")
    assert row(ist, "shl-two")[5] == ["ok_tag", "news"]
    assert_redirects(client, "shl-one", "https://example.com/shlink/1")

    # shlink-importer's CSV names its columns in words.
    other = write(tmp_path, "importer.csv", "Long URL,Short code,Tags,Domain,Title\n"
                  "https://example.com/shlink/4,shl-four,a|b,,Four\n")
    imported_ok(run_import(ist, "shlink", other), 1)
    assert row(ist, "shl-four")[5] == ["a", "b"]
    imported_ok(run_import(ist, "shlink", path), 0, 3)


def test_bitly(ist, client, tmp_path):
    text = ("Title,Link,Custom link,Destination URL,Date created,Clicks\r\n"
            '"Spring, sale",https://bit.ly/3xYzAbC,bit.ly/spring-sale,'
            "https://shop.example.com/sale?utm_source=bitly,2021-03-04 05:06:07,77\r\n"
            "Plain,bit.ly/4aBcDeF,,https://example.com/bitly/plain,2021-03-05T00:00:00+0000,3\r\n"
            "Short,bit.ly/ab,,https://example.com/bitly/short,2021-03-05T00:00:00+0000,0\r\n")
    path = write(tmp_path, "bitly_links.csv", text)
    res = run_import(ist, "bitly", path)
    imported_ok(res, 2, 1)
    assert reasons(res) == {4: "key 'ab' is not 3 to 64 characters long"}
    url, _, created, _, visits, _ = row(ist, "spring-sale")
    assert (url, visits) == ("https://shop.example.com/sale?utm_source=bitly", 77)
    assert created == epoch("2021-03-04T05:06:07Z")
    assert row(ist, "4aBcDeF")[2] == epoch("2021-03-05T00:00:00Z")
    assert row(ist, "3xYzAbC") is None, "the custom back-half is the key, not the hash"
    assert_redirects(client, "spring-sale", "https://shop.example.com/sale?utm_source=bitly")
    assert_redirects(client, "4aBcDeF", "https://example.com/bitly/plain")

    # Bitly's API names (long_url, link, created_at) work as well.
    api = write(tmp_path, "bitly_api.csv", "id,link,long_url,created_at\n"
                "bit.ly/5zz,https://bit.ly/5zzApi1,https://example.com/bitly/api,"
                "2019-12-17T19:13:54+0000\n")
    imported_ok(run_import(ist, "bitly", api), 1)
    assert row(ist, "5zzApi1")[2] == epoch("2019-12-17T19:13:54Z")
    imported_ok(run_import(ist, "bitly", path), 0, 3)


def test_key_looked_up_before_its_import(ist, client, tmp_path):
    assert client.resolve("looked-up").status_code == 404  # now cached as unknown
    path = write(tmp_path, "late.csv", "url,alias\nhttps://example.com/late,looked-up\n")
    imported_ok(run_import(ist, "csv", path), 1)
    assert_redirects(client, "looked-up", "https://example.com/late")


def test_redis_unreachable(ist, client, tmp_path):
    path = write(tmp_path, "noredis.csv", "url,alias\nhttps://example.com/noredis,no-redis\n")
    res = ist.ctl("import", "csv", path, env={"BASE_URL": ist.server.base_url,
                                               "REDIS_URL": f"unix://{tmp_path}/no.sock"})
    assert res.returncode == 0 and summary(res) == (1, 0), res.stderr
    assert "redis unreachable" in res.stderr and "1 cache entry not evicted" in res.stderr
    assert_redirects(client, "no-redis", "https://example.com/noredis")


def test_stdin(ist, tmp_path):
    res = subprocess.run([str(stk.BIN_DIR / "shortenerctl"), "import", "csv", "/dev/stdin"],
                         input="url,alias\nhttps://example.com/stdin,from-stdin\n",
                         cwd=ist.root, env=ctl_env(ist), capture_output=True, text=True,
                         timeout=60)
    imported_ok(res, 1)
    assert row(ist, "from-stdin")[0] == "https://example.com/stdin"


# ------------------------------------------------------------------------------ bad lines


def test_bad_lines_each_with_a_reason(ist, client, tmp_path):
    taken = stk.Client(ist.server, ist.create_apikey("bad-lines")[0])
    taken.create_ok("https://example.com/someone-else", alias="bad-taken")
    long_url = "https://example.com/" + "x" * 70000
    lines = [
        "url,alias,expires_at",                                           # 1
        "https://example.com/good/1,bad-good1,",                          # 2
        "ftp://example.com/file,bad-ftp,",                                # 3
        "https://example.com/a,bad.key,",                                 # 4
        "https://example.com/a,api,",                                     # 5
        "https://example.com/a,bad-when,tomorrow",                        # 6
        "https://example.com/a,bad-past,2001-01-01T00:00:00Z",            # 7
        "https://example.com/a,bad-few",                                  # 8
        f"{long_url},bad-long,",                                          # 9
        f"{ist.server.base_url}/abc1234,bad-self,",                       # 10
        ",bad-empty,",                                                    # 11
        "https://example.com/good/2,bad-good1,",                          # 12
        "https://example.com/other,bad-taken,",                           # 13
        "https://example.com/a,bad-far,2500-01-01T00:00:00Z",             # 14
        "https://example.com/a b,bad-space,",                             # 15
        "https://example.com/a,bad-many,,extra",                          # 16
        '"https://example.com/a"x,bad-quote,',                            # 17
        "https://example.com/good/3,bad-good3,2099-01-01T00:00:00Z",      # 18
        '"https://example.com/unclosed,bad-open,',                        # 19
        "",
    ]
    path = write(tmp_path, "bad.csv", "\n".join(lines))
    res = run_import(ist, "csv", path)
    assert res.returncode == 0, res.stderr
    assert summary(res) == (2, 16), f"{res.stdout}\n{res.stderr}"
    assert reasons(res) == {
        3: "the url must be absolute and start with http:// or https://",
        4: "key 'bad.key' has characters other than letters, digits, '_' and '-'",
        5: "key 'api' is reserved",
        6: "expires_at 'tomorrow' is not a date and time (RFC 3339)",
        7: "expires_at is in the past",
        8: "2 fields where the header has 3",
        9: "not a valid CSV record: longer than 65536 bytes",
        10: "the url points at this service's own short links",
        11: "the url is empty",
        12: "duplicate key 'bad-good1' in the file (first on line 2)",
        13: "key 'bad-taken' already exists, with another url",
        14: "expires_at is more than 100 years away",
        15: "the url contains spaces or control characters",
        16: "4 fields where the header has 3",
        17: "not a valid CSV record: text after the closing quote of a field",
        19: "not a valid CSV record: a quoted field is never closed",
    }, res.stderr
    for text in res.stderr.splitlines():
        assert len(text) < 200 and text.isprintable(), f"unreadable report line {text!r}"
    assert row(ist, "bad-good1")[0] == "https://example.com/good/1"
    assert row(ist, "bad-good3")[0] == "https://example.com/good/3"
    assert row(ist, "bad-taken")[0] == "https://example.com/someone-else", "a key is never taken"
    assert_redirects(client, "bad-good3", "https://example.com/good/3")


def test_unprintable_bytes_never_echoed(ist, tmp_path):
    content = (b"keyword,url\n"
               b"ab\x1b[31mc,https://example.com/esc\n"
               b"k\xff\xfey,https://example.com/bin\n"
               b"nul\x00key,https://example.com/nul\n")
    res = run_import(ist, "yourls", write(tmp_path, "esc.csv", content))
    imported_ok(res, 0, 3)
    assert "\x1b" not in res.stderr and "\x00" not in res.stderr
    assert reasons(res)[2].startswith("key 'ab\\x1b[31mc' has characters"), res.stderr
    assert reasons(res)[4].startswith("key 'nul\\x00key' has characters"), res.stderr


def test_key_of_a_deleted_link_is_never_given_again(ist, tmp_path):
    c = stk.Client(ist.server, ist.create_apikey("deleter")[0])
    c.create_ok("https://example.com/was-here", alias="gone-key")
    assert c.delete("gone-key").status_code == 204
    res = run_import(ist, "csv", write(tmp_path, "gone.csv",
                                       "url,alias\nhttps://example.com/new-one,gone-key\n"))
    imported_ok(res, 0, 1)
    assert reasons(res)[2].startswith("key 'gone-key' belonged to a link that was deleted")


# ------------------------------------------------------------------------------ bad files


@pytest.mark.parametrize("fmt,header,needles", [
    ("csv", "link,alias\n", ["unknown column 'link'", "url (required), alias, expires_at"]),
    ("csv", "alias,expires_at\n", ["has no url column"]),
    ("csv", "https://example.com/no-header,abc\n", ["unknown column 'https://example.com/no-h"]),
    ("csv", "url,alias,URL\n", ["columns 'url' and 'URL' both give the url"]),
    ("yourls", "url,title,clicks\n", ["has no keyword column", "yourls file has keyword"]),
    ("shlink", "title,visits\n", ["has no shortCode and no longUrl column"]),
    ("bitly", "Title,Link\n", ["has no Destination URL column"]),
])
def test_wrong_header(ist, tmp_path, fmt, header, needles):
    before = ist.count_urls()
    path = write(tmp_path, "header.csv", header + "https://example.com/x,wrong-hdr,0\n")
    refused(run_import(ist, fmt, path), str(path), *needles)
    assert ist.count_urls() == before


def test_binary_file(ist, tmp_path):
    png = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06"
           + os.urandom(4096))
    refused(run_import(ist, "csv", write(tmp_path, "image.png", png)),
            "does not look like a CSV file")
    refused(run_import(ist, "yourls", write(tmp_path, "latin1.csv",
                                            b"keyword,url,t\xe9tle\nabc,https://e.com/,x\n")),
            "does not look like a CSV file", "not UTF-8")
    blob = os.urandom(200000).replace(b"\n", b"").replace(b"\r", b"")
    refused(run_import(ist, "csv", write(tmp_path, "blob.bin", blob)),
            "does not look like a CSV file")


@pytest.mark.parametrize("content", [b"", BOM.encode(), b"\n\r\n\n"])
def test_empty_file(ist, tmp_path, content):
    refused(run_import(ist, "csv", write(tmp_path, "empty.csv", content)), "is empty",
            "url (required)")


def test_header_only(ist, tmp_path):
    imported_ok(run_import(ist, "csv", write(tmp_path, "header.csv", "url,alias,expires_at\r\n")),
                0)


def test_unreadable_files(ist, tmp_path):
    refused(run_import(ist, "csv", tmp_path / "no-such.csv"), "cannot open",
            "No such file or directory")
    refused(run_import(ist, "csv", tmp_path), "it is a directory")


def test_usage_errors(ist, tmp_path):
    path = write(tmp_path, "ok.csv", "url\nhttps://example.com/usage\n")
    refused(run_import(ist, "kutt", path), "unknown format 'kutt'", "csv, yourls, shlink, bitly")
    refused(ist.ctl("import", "csv"), "needs a FORMAT")
    refused(ist.ctl("import"), "needs a FORMAT")
    refused(ist.ctl("import", "csv", path, "extra"), "import")
    refused(run_import(ist, "csv", path, "--batch", "0"), "batch")
    refused(run_import(ist, "csv", path, "--owner", "abc"), "--owner")
    res = ist.ctl("import", "--help")
    assert res.returncode == 0 and "--owner" in res.stdout and "FORMAT FILE" in res.stdout


def test_owner(ist, tmp_path):
    path = write(tmp_path, "owned.csv", "url,alias\nhttps://example.com/owned,owned-link\n")
    refused(run_import(ist, "csv", path, "--owner", "999999"), "no API key with id 999999")
    revoked = ist.create_apikey("import-revoked")
    ist.revoke_apikey(revoked[1])
    refused(run_import(ist, "csv", path, "--owner", revoked[1]), f"API key {revoked[1]} is revoked")
    assert row(ist, "owned-link") is None

    key, key_id = ist.create_apikey("import-owner")
    imported_ok(run_import(ist, "csv", path, "--owner", key_id), 1)
    assert row(ist, "owned-link")[1] == int(key_id)
    r = stk.Client(ist.server, key).read("owned-link")
    assert r.status_code == 200 and r.json()["url"] == "https://example.com/owned", r.text


# ------------------------------------------------------------------------------ long files


def write_big(path, n, prefix):
    with open(path, "w") as f:
        f.write("url,alias\n")
        for i in range(n):
            f.write(f"https://example.com/{prefix}/{i}?q=a%2Cb,{prefix}{i}\n")


def test_sigterm_stops_between_batches(ist, tmp_path):
    n = 40000
    path = tmp_path / "stop.csv"
    write_big(path, n, "sig")
    proc = subprocess.Popen([str(stk.BIN_DIR / "shortenerctl"), "import", "csv", str(path),
                             "--batch", "10"], cwd=ist.root, env=ctl_env(ist),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stk.wait_until("some batches committed", lambda: count_prefix(ist, "sig") >= 50, 60)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    done = count_prefix(ist, "sig")
    assert proc.returncode == 1, f"{out}\n{err}"
    assert "stopped by a signal" in err, err
    assert SUMMARY_RE.match(out.splitlines()[-1]).groups() == (str(done), "0"), out
    assert 0 < done < n and done % 10 == 0, f"{done} links: not whole batches"

    rest = run_import(ist, "csv", path)
    imported_ok(rest, n - done, done)
    assert count_prefix(ist, "sig") == n


def test_database_failure(ist, tmp_path):
    path = tmp_path / "dbfail.csv"
    write_big(path, 20000, "dbf")
    res = ist.ctl("import", "csv", path, env={"DATABASE_URL": "host=/nonexistent dbname=x"})
    assert res.returncode == 1 and "cannot connect to PostgreSQL" in res.stderr, res.stderr

    # The connection is cut half-way: what was committed is reported, the rest is not lost.
    proc = subprocess.Popen([str(stk.BIN_DIR / "shortenerctl"), "import", "csv", str(path),
                             "--batch", "10"], cwd=ist.root, env=ctl_env(ist),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stk.wait_until("some batches committed", lambda: count_prefix(ist, "dbf") >= 50, 60)
    ist.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
             " WHERE application_name = 'shortenerctl'")
    out, err = proc.communicate(timeout=60)
    done = count_prefix(ist, "dbf")
    assert proc.returncode == 1, f"{out}\n{err}"
    reported = int(SUMMARY_RE.match(out.splitlines()[-1]).group(1))
    # A connection cut just after a commit leaves the client unsure about that one batch: it
    # reports only what it knows was committed, and the next run skips the rest as existing.
    assert done in (reported, reported + 10), f"{done} stored, {reported} reported"
    assert f"lines after {reported + 1} were not imported" in err, err
    imported_ok(run_import(ist, "csv", path), 20000 - done, done)


def vm_hwm_kib(pid):
    """The peak resident set of a running process, from /proc (None once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for text in f:
                if text.startswith("VmHWM:"):
                    return int(text.split()[1])
    except OSError:
        pass
    return None


def peak_rss_kib(argv, env, cwd, timeout, stderr=None):
    """Runs argv; returns (returncode, stdout, stderr, peak RSS in KiB). The peak is read from
    /proc while it runs: getrusage's ru_maxrss of a child would count the memory of this
    Python process, which the child had before its exec."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=stderr or subprocess.PIPE)
    out, err = [], []
    readers = [threading.Thread(target=lambda: out.append(proc.stdout.read()))]
    if stderr is None:
        readers.append(threading.Thread(target=lambda: err.append(proc.stderr.read())))
    for t in readers:
        t.start()
    peak = 0
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        peak = max(peak, vm_hwm_kib(proc.pid) or 0)
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{argv} took over {timeout} s")
        time.sleep(0.02)
    for t in readers:
        t.join()
    return proc.returncode, out[0].decode(), err[0].decode() if err else "", peak


# A million lines, against a file fifty times shorter (IMPORT_TEST_LINES changes it); the
# ASan build, whose memory says nothing here, reads a fifth of that.
def big_lines():
    return int(os.environ.get("IMPORT_TEST_LINES", 200_000 if sanitized() else 1_000_000))


def test_long_file_in_constant_memory(ist, tmp_path):
    BIG = big_lines()
    SMALL = max(BIG // 50, 1000)
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    write_big(small, SMALL, "mem-s")
    write_big(big, BIG, "mem-b")
    argv = [str(stk.BIN_DIR / "shortenerctl"), "import", "csv"]

    rc, out, err, rss_small = peak_rss_kib(argv + [str(small)], ctl_env(ist), ist.root, 60)
    assert rc == 0 and out.splitlines()[-1] == f"imported {SMALL}, skipped 0", err
    assert rss_small > 0

    # Progress is shown on a terminal: the test gives standard error a pseudo-terminal.
    master, slave = os.openpty()
    progress = []
    reader = threading.Thread(target=lambda: progress.append(read_all(master)))
    reader.start()
    t0 = time.monotonic()
    try:
        rc, out, _, rss_big = peak_rss_kib(argv + [str(big)], ctl_env(ist), ist.root, 600,
                                           stderr=slave)
    finally:
        os.close(slave)
        reader.join()
        os.close(master)
    seconds = time.monotonic() - t0
    assert rc == 0, progress
    assert out.splitlines()[-1] == f"imported {BIG}, skipped 0"
    assert count_prefix(ist, "mem-b") == BIG
    marks = [m for m in progress[0].splitlines() if m.startswith("...")]
    assert marks == [f"... {i} lines" for i in range(100000, BIG + 1, 100000)], progress
    print(f"\n{BIG} lines in {seconds:.1f} s, peak RSS {rss_big} KiB "
          f"({SMALL} lines: {rss_small} KiB)")
    if sanitized():
        return  # ASan keeps freed memory in quarantine (256 MB by default)
    assert rss_big < 30 * 1024, f"peak RSS {rss_big} KiB"
    assert rss_big < rss_small + 4 * 1024, f"{rss_big} KiB against {rss_small} KiB for {SMALL} lines"


def sanitized():
    """Whether shortenerctl is an ASan build (make SANITIZE=1 integration)."""
    with open(stk.BIN_DIR / "shortenerctl", "rb") as f:
        return b"__asan_init" in f.read()


def read_all(fd):
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO once the last writer has gone
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
