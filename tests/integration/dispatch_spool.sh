#!/bin/sh
# dispatch_spool.sh - the spool transport on a real directory: every file is
# a complete message, a concurrent reader never sees a partial .eml, no
# temporary files stay behind, and a retry with the same Message-ID replaces
# the file instead of adding one.
. "$(dirname "$0")/dispatch_lib.sh"

S="$T/spool"
mkdir -p "$S"

# a reader polling the directory the whole time, like a pickup process
cat >"$T/reader.py" <<'PYEOF'
import os, re, sys, time
d, stop, out = sys.argv[1], sys.argv[2], sys.argv[3]
checked = bad = 0
seen = set()
inodes = {}
while True:
    last = os.path.exists(stop)
    for ent in os.scandir(d):
        name = ent.name
        # d_ino from readdir: only a new file (or a replacement) is read
        if not name.endswith(".eml") or inodes.get(name) == ent.inode():
            continue
        try:
            with open(ent.path, "rb") as f:
                inodes[name] = os.fstat(f.fileno()).st_ino
                data = f.read()
        except FileNotFoundError:
            continue  # replaced between readdir and open
        checked += 1
        seen.add(name)
        m = re.search(rb"^Message-ID: (<[^>]*>)\r$", data, re.M)
        if (not data.startswith(b"From: ") or m is None
                or not data.endswith(b"END " + m.group(1) + b"\r\n")):
            bad += 1
            sys.stderr.write("partial or damaged: %s (%d bytes)\n"
                             % (name, len(data)))
    if last:
        break
    time.sleep(0.001)
with open(out, "w") as f:
    f.write("checked=%d bad=%d files=%d\n" % (checked, bad, len(seen)))
PYEOF
"$PY" "$T/reader.py" "$S" "$T/stop" "$T/reader.out" 2>"$T/reader.err" &
RPID=$!
PIDS="$PIDS $RPID"

"$CLIENT" --url "spool://$S" --count 300 --size 65536 --max-conn 4 \
    >"$T/w1.out" 2>&1
# the same 300 Message-IDs again: retries replace, never duplicate
"$CLIENT" --url "spool://$S" --count 300 --size 65536 --max-conn 4 \
    >"$T/w2.out" 2>&1
touch "$T/stop"
wait $RPID

expect_grep "spool: 300 SENT" '^SUMMARY sent=300 tempfail=0 permfail=0' "$T/w1.out"
expect_grep "spool: 300 SENT again" '^SUMMARY sent=300 tempfail=0 permfail=0' "$T/w2.out"
expect_grep "spool: reply names the file" "^RESULT i=0 .*status=sent code=0 .*reply=spooled $S/m-0@suki.test.eml" "$T/w1.out"
n=$(nfiles "$S" '\.eml$')
[ "$n" = 300 ] && ok "spool: 300 files after 600 writes of 300 ids" || fail "spool: $n .eml files"
t=$(nfiles "$S" '^tmp-')
[ "$t" = 0 ] && ok "spool: no temporary files left" || fail "spool: $t tmp- files left"
read -r rep <"$T/reader.out"
case "$rep" in
*" bad=0 "*) ok "spool: concurrent reader saw only complete files ($rep)" ;;
*) fail "spool: reader: $rep"; head -5 "$T/reader.err" ;;
esac
c=${rep#checked=}
c=${c%% *}
[ "$c" -gt 0 ] && ok "spool: the reader did read while writing" || fail "spool: reader checked nothing"

# every file is complete: headers, body, the END line matching its id, and
# named after that id
"$PY" - "$S" >"$T/check.out" 2>&1 <<'PYEOF'
import os, re, sys
d = sys.argv[1]
bad = 0
for name in os.listdir(d):
    data = open(os.path.join(d, name), "rb").read()
    m = re.search(rb"^Message-ID: <([^>]*)>\r$", data, re.M)
    if (m is None or not data.endswith(b"END <" + m.group(1) + b">\r\n")
            or name != m.group(1).decode() + ".eml"):
        bad += 1
        print("bad:", name)
print("bad=%d" % bad)
PYEOF
expect_grep "spool: every file complete and named after its Message-ID" '^bad=0$' "$T/check.out"

# one id sent three times: one file, holding the last copy
"$CLIENT" --url "spool://$S" --count 3 --sequential --same-msgid --msgid same \
    >"$T/same.out" 2>&1
expect_count "same id: 3 SENT" 3 '^RESULT .*status=sent' "$T/same.out"
n=$(nfiles "$S" '^same@suki\.test\.eml$')
[ "$n" = 1 ] && ok "same id: one file" || fail "same id: $n files"
expect_grep "same id: it holds the last copy" '^Subject: test 2' "$S/same@suki.test.eml"

# a Message-ID that would escape the directory stays inside it
"$CLIENT" --url "spool://$S" --msgid "../../escape" --same-msgid >"$T/esc.out" 2>&1
expect_grep "hostile id: SENT" '^RESULT .*status=sent' "$T/esc.out"
[ -f "$S/%2E.%2F..%2Fescape@suki.test.eml" ] && ok "hostile id: encoded name inside the spool" ||
    fail "hostile id: $(ls "$S" | grep escape)"

# a missing directory is a temporary failure with the system's reason
"$CLIENT" --url "spool://$T/missing" >"$T/miss.out" 2>&1
expect_grep "missing dir: TEMPFAIL with the reason" \
    '^RESULT .*status=tempfail .*reply=spool: create .*No such file or directory' "$T/miss.out"

finish
