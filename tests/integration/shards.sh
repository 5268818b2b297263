#!/bin/sh
# shards.sh - going past one Redis with no code of suki's own: two shards,
# each a redis-server of its own with its own prefix and stream, served by
# its own sukid set (two sukid on shard A, one on shard B). A producer
# routes every event by its tenant (a fixed table, as a real producer
# would keep). Every event is applied once in its own shard and nowhere
# else, no key of one shard's prefix appears on the other server, and
# every follow-up (one mail through aiosmtpd per event) arrives exactly
# once. README's "Past one Redis" and ARCHITECTURE describe the layout.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli "$SUKID" "$PY"
"$PY" -c 'import aiosmtpd' 2>/dev/null || fail "python3-aiosmtpd is missing"
N=${N:-240}

start_redis --appendonly no
PA=$REDIS_PORT
PB=$(free_port)
mkdir -p "$T/b"
redis-server --port "$PB" --bind 127.0.0.1 --dir "$T/b" --save '' \
    --appendonly no --logfile "$T/redis-b.log" >/dev/null 2>&1 &
lib_track $!
wait_for 10 '[ "$(redis-cli -p $PB PING)" = PONG ]' || fail "redis B did not start"

"$PY" "$top_srcdir/tests/integration/smtp_server.py" --dir "$T/smtpd" \
    --port-file "$T/smtp.port" --mode accept >"$T/smtp.log" 2>&1 &
lib_track $!
wait_for 10 '[ -s "$T/smtp.port" ]' || fail "smtp server did not start"

mkdir -p "$T/plugins" "$T/templates"
ln -s "$top_builddir/plugins/.libs/followup.so" "$T/plugins/"
cat >"$T/templates/sh.en.tmpl" <<'EOT'
subject: Follow-up for {{client.id}}
--- text
Follow-up of {{client.id}}.
EOT
# shard_conf FILE PORT PREFIX - one shard's configuration: its own server,
# prefix and stream; everything else the same
shard_conf()
{
    cat >"$1" <<EOF
redis = { url = "redis://127.0.0.1:$2/0"; prefix = "$3";
          command_timeout = "5s"; connect_timeout = "2s"; };
intake = { stream = "$3:events"; block = "200ms"; };
scheduler = { lease = "10s"; };
plugins = { dir = "$T/plugins"; };
templates = { dir = "$T/templates"; };
transports = { email = { url = "smtp://127.0.0.1:$(cat "$T/smtp.port")";
                         starttls = "off"; from = "Test <test@example.com>"; }; };
http = { listen = ""; };
daemon = { shutdown_timeout = "5s"; log_level = "info"; };
rules = ( { name = "sh"; use = "followup"; on = [ "sh.test" ]; after = "1s";
            notify = [ "ops@example.com" ]; template = "sh"; } );
EOF
    "$SUKID" -t -c "$1" >/dev/null || fail "$1 refused"
}
shard_conf "$T/a.conf" "$PA" shA
shard_conf "$T/b.conf" "$PB" shB
start_sukid a1 "$T/a.conf"
start_sukid a2 "$T/a.conf"
start_sukid b1 "$T/b.conf"
ok "shard A (redis $PA, prefix shA): two sukid; shard B (redis $PB, prefix shB): one"

# The producer: tenant -> shard from a table; client <tenant>-<i>, id e<i>.
"$PY" - "$top_srcdir/tests/integration" "$PA" "$PB" "$N" "$T/route" <<'EOF' ||
import sys
sys.path.insert(0, sys.argv[1])
from sukitest import Redis
pa, pb, n, route = sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
table = {"acme": "A", "bantay": "B", "cebu": "A", "davao": "B",
         "ilog": "A", "jolo": "B"}
tenants = sorted(table)
servers = {"A": (Redis(pa), "shA:events"), "B": (Redis(pb), "shB:events")}
with open(route, "w") as out:
    for i in range(n):
        t = tenants[i % len(tenants)]
        r, stream = servers[table[t]]
        client = "%s-%d" % (t, i)
        ev = '{"type":"sh.test","client":"%s","id":"e%d"}' % (client, i)
        r.cmd("XADD", stream, "*", "event", ev)
        out.write("%s %s\n" % (client, table[t]))
EOF
    fail "the producer failed"
NA=$(grep -c ' A$' "$T/route")
NB=$(grep -c ' B$' "$T/route")
[ $((NA + NB)) = "$N" ] && [ "$NA" -gt 0 ] && [ "$NB" -gt 0 ] || fail "routing: $NA + $NB of $N"

# shard_stat PORT PREFIX - events applied in that shard
shard_stat() { redis-cli -p "$1" HGET "$2:stats" events_applied; }
wait_for 60 '[ "$(shard_stat $PA shA)" = $NA ] && [ "$(shard_stat $PB shB)" = $NB ]' ||
    fail "applied: A $(shard_stat $PA shA) of $NA, B $(shard_stat $PB shB) of $NB"
# every client once in its shard and not at all in the other
misplaced()
{
    awk '{ print $1, $2 }' "$T/route" | while read -r c s; do
        if [ "$s" = A ]; then own="$PA shA" other="$PB shB"; else own="$PB shB" other="$PA shA"; fi
        set -- $own
        [ "$(redis-cli -p "$1" HGET "$2:client-events" "$c")" = 1 ] || echo "$c not once in $s"
        set -- $other
        [ -z "$(redis-cli -p "$1" HGET "$2:client-events" "$c")" ] || echo "$c in the other shard"
    done
}
[ -z "$(misplaced | head -3)" ] || fail "$(misplaced | head -3)"
for x in "$PA shB" "$PB shA"; do
    set -- $x
    [ "$(redis-cli -p "$1" --scan --pattern "$2:*" | wc -l)" = 0 ] ||
        fail "server $1 holds keys of prefix $2: $(redis-cli -p "$1" --scan --pattern "$2:*" | head -3)"
done
[ "$(grep -c "consumer group ready (stream shA:events" "$T/sukid-a1.log" "$T/sukid-a2.log" | grep -c ':1$')" = 2 ] ||
    fail "the two sukid of shard A did not both read shA:events"
ok "$NA events applied once in shard A, $NB in shard B, none in the other; no key crossed"

mails()
{
    cat "$T/smtpd"/msg-*.eml 2>/dev/null | tr -d '\r' |
        sed -n 's/^Subject: Follow-up for //p'
}
wait_for 90 '[ "$(mails | sort -u | wc -l)" -ge $N ]' ||
    fail "$(mails | sort -u | wc -l) of $N follow-ups arrived"
wait_for 30 '[ "$(redis-cli -p $PA ZCARD shA:jobs)" = 0 ] && [ "$(redis-cli -p $PB ZCARD shB:jobs)" = 0 ]' ||
    fail "jobs left: A $(redis-cli -p $PA ZCARD shA:jobs), B $(redis-cli -p $PB ZCARD shB:jobs)"
sleep 2 # a late second send would show up here
[ "$(mails | sort | uniq -d | wc -l)" = 0 ] || fail "follow-ups twice: $(mails | sort | uniq -d | head -3)"
[ "$(mails | wc -l)" = "$N" ] || fail "$(mails | wc -l) mails for $N events"
[ "$(awk '{ print $1 }' "$T/route" | sort)" = "$(mails | sort)" ] ||
    fail "the mails are not for the routed clients"
for s in a1 a2 b1; do
    stop_sukid "$s" || fail "sukid $s exit status $? on SIGTERM"
done
ok "$N follow-ups, each exactly once, from both shards; clean stops"
exit 0
