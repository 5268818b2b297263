#!/bin/sh
# lua_wrongtype.sh - the scripts meet a key of the wrong type before their
# first write, against a real redis-server: nothing half done (Redis does
# not roll back a script that fails midway), nothing lost.
. "$top_srcdir/tests/integration/lib.sh"
need redis-server redis-cli
start_redis --appendonly no
dir=$top_srcdir/lib/store
# script NAME: the script as Redis gets it
script() { sh "$dir/embed.sh" --expand "$dir/$1.lua"; }

# campaign-take with the suppressed set a string: refused before the held
# set moves or a pending recipient is popped.
rcli SET s:suppressed oops >/dev/null
rcli HSET s:campaign:c state running >/dev/null
rcli SET s:clock:c tok >/dev/null
rcli SADD s:cinflight:c u1 >/dev/null
rcli SADD s:cpending:c u2 >/dev/null
rcli HSET s:cledger:c u1 queued u2 queued >/dev/null
rcli HSET s:client:u2 email u2@example.ph >/dev/null
out=$(rcli EVAL "$(script campaign-take)" 7 s:campaign:c s:cledger:c \
    s:cpending:c s:cinflight:c s:suppressed s:clock:c s:cheld:c \
    tok s 10 0 "$(date +%s000)" 1 c example.ph 40000 2>&1)
case $out in *"not a set"*) ;; *) fail "campaign-take: want a type error, got: $out" ;; esac
[ "$(rcli SMEMBERS s:cpending:c)" = u2 ] || fail "campaign-take: u2 left the pending set"
[ "$(rcli SMEMBERS s:cinflight:c)" = u1 ] || fail "campaign-take: the in-flight set moved"
[ "$(rcli EXISTS s:cheld:c)" = 0 ] || fail "campaign-take: a held set was written"
[ -z "$(rcli HGET s:campaign:c held_until)" ] || fail "campaign-take: held_until written"
echo "ok: campaign-take refuses a wrong-typed key with nothing changed"

# campaign-outcome likewise (the held set a string this time)
rcli DEL s:suppressed >/dev/null
rcli SET s:cheld:c oops >/dev/null
out=$(rcli EVAL "$(script campaign-outcome)" 7 s:campaign:c s:cledger:c \
    s:cpending:c s:cinflight:c s:suppressed s:clock:c s:cheld:c \
    tok 0 "$(date +%s000)" 10 0.5 "" u1 sent "" "" "" 2>&1)
case $out in *"not a set"*) ;; *) fail "campaign-outcome: want a type error, got: $out" ;; esac
[ "$(rcli HGET s:cledger:c u1)" = queued ] || fail "campaign-outcome: the ledger changed"
echo "ok: campaign-outcome refuses a wrong-typed key with nothing changed"

# sched-claim: a job whose hash is of the wrong type stays where it is;
# the others are claimed (before, the call failed after its ZREMs, on
# every claim: the scheduler was stuck behind that job for good).
now=$(date +%s000)
rcli ZADD s:jobs $((now - 3000)) r:gone:: $((now - 2000)) r:bad:: $((now - 1000)) r:good:: >/dev/null
rcli SET s:job:bad oops >/dev/null
rcli HSET s:job:good r:good:: '{"d":1}' >/dev/null
out=$(rcli EVAL "$(script sched-claim)" 1 s:jobs 60000 100 s:job: 2>&1)
case $out in *ERR*|*WRONGTYPE*) fail "sched-claim failed: $out" ;; esac
echo "$out" | grep -qx 'r:good::' || fail "sched-claim: the good job was not claimed: $out"
echo "$out" | grep -q 'r:bad::' && fail "sched-claim: the wrong-typed job was claimed: $out"
[ -n "$(rcli ZSCORE s:jobs r:bad::)" ] || fail "sched-claim: the wrong-typed job was removed"
[ -z "$(rcli ZSCORE s:jobs r:gone::)" ] || fail "sched-claim: a job without a body was kept"
echo "ok: sched-claim leaves a wrong-typed job and claims the rest"

# intake-recover with P:lasterr a string: refused before any XCLAIM
rcli XGROUP CREATE s:events g '$' MKSTREAM >/dev/null
rcli XADD s:events '*' event '{}' >/dev/null
rcli XREADGROUP GROUP g dead COUNT 10 STREAMS s:events '>' >/dev/null
rcli SET s:lasterr oops >/dev/null
out=$(rcli EVAL "$(script intake-recover)" 2 s:events s:lasterr g me 0 100 2>&1)
case $out in *"not a hash"*) ;; *) fail "intake-recover: want a type error, got: $out" ;; esac
rcli XPENDING s:events g - + 10 | grep -q dead || fail "intake-recover: the entry changed consumer"
echo "ok: intake-recover refuses a wrong-typed P:lasterr before claiming"

# sched-settle with a digest hold (H op) whose P:held:<rcpt> is a string:
# the job still completes and the rest of the hold is written; nothing fails.
rcli HSET s:job:dc r:dc:: '{"d":1}' >/dev/null
rcli ZADD s:jobs 1 r:dc:: >/dev/null
rcli SET s:held:m@x.ph oops >/dev/null
out=$(rcli EVAL "$(script sched-settle)" 2 s:jobs s:dead 60 s:sent: s:job: \
    "C 0 0 0 1" r:dc:: '{"d":1}' 12 H s:held:m@x.ph s:held-by:dc "r:dc::
m@x.ph" s:held-to m@x.ph r:dc:: '{"c":"dc"}' 's:job:~digest' '~digest:~digest:m@x.ph:2026-01-01' '{"d":5}' 5 2>&1)
[ "$out" = 1 ] || fail "sched-settle with a wrong-typed held key: $out"
[ "$(rcli HEXISTS s:job:dc r:dc::)" = 0 ] || fail "sched-settle: the job was not completed"
[ "$(rcli GET s:held:m@x.ph)" = oops ] || fail "sched-settle: the string was changed"
[ "$(rcli ZSCORE s:jobs '~digest:~digest:m@x.ph:2026-01-01')" = 5 ] || fail "sched-settle: no digest job"
echo "ok: sched-settle completes a job whose digest hold meets a wrong-typed key"

# sched-settle with the report ops meeting wrong-typed keys: an I op whose
# counter hash and sent marker are of the wrong type, an M op over a hash;
# the job completes, the J op's job is made, nothing fails.
rcli HSET s:job:rp r:rp:: '{"d":1}' >/dev/null
rcli ZADD s:jobs 1 r:rp:: >/dev/null
rcli SET s:report:2026-11 oops >/dev/null
rcli HSET s:sent:m1 x y >/dev/null
out=$(rcli EVAL "$(script sched-settle)" 2 s:jobs s:dead 60 s:sent: s:job: \
    "C 0 0 0 2" r:rp:: '{"d":1}' 4 I s:report:2026-11 'sent_rem m@x.ph' m1 \
    5 J 's:job:~report' '~report:~report:m@x.ph:2026-11' '{"d":7}' 7 2>&1)
[ "$out" = 1 ] || fail "sched-settle with wrong-typed report keys: $out"
[ "$(rcli HEXISTS s:job:rp r:rp::)" = 0 ] || fail "sched-settle (report ops): the job was not completed"
[ "$(rcli GET s:report:2026-11)" = oops ] || fail "sched-settle: the counter string changed"
[ "$(rcli ZSCORE s:jobs '~report:~report:m@x.ph:2026-11')" = 7 ] || fail "sched-settle: no report job"
echo "ok: sched-settle completes a job whose report ops meet wrong-typed keys"

# sched-ensure with the job hash a string: refused before any write;
# report-plan with the counters and the report log strings: reads as
# empty, folds nothing; report-fold likewise.
rcli SET 's:job:~report' oops >/dev/null
out=$(rcli EVAL "$(script sched-ensure)" 2 's:job:~report' s:jobs k '{"d":9}' 9 s:report-sent:x 2>&1)
case $out in *"not a hash"*) ;; *) fail "sched-ensure: want a type error, got: $out" ;; esac
[ -z "$(rcli ZSCORE s:jobs k)" ] || fail "sched-ensure: indexed a job it could not store"
rcli SET s:report-log oops >/dev/null
out=$(rcli EVAL "$(script report-plan)" 3 s:report:2026-11 s:jobs s:report-log 99 s:job: s:client: r 2>&1)
case $out in *ERR*|*WRONGTYPE*) fail "report-plan failed: $out" ;; esac
out=$(rcli EVAL "$(script report-fold)" 0 s 2>&1)
[ "$out" = 0 ] || fail "report-fold with a wrong-typed log: $out"
[ "$(rcli GET s:report-log)" = oops ] || fail "report-fold: the wrong-typed log changed"
# a fold into a month hash of a wrong type loses that month only, and the
# log is trimmed all the same
rcli DEL s:report-log >/dev/null
rcli RPUSH s:report-log '2026-11 e:a.b m@x.ph' '2026-10 e:a.b m@x.ph' \
    "$(printf '2026-10 e:complaint.opened m@x.ph\nT1\n5\nc1')" >/dev/null
out=$(rcli EVAL "$(script report-fold)" 0 s 2>&1)
[ "$out" = 3 ] || fail "report-fold: $out"
[ "$(rcli GET s:report:2026-11)" = oops ] || fail "report-fold: the wrong-typed month changed"
[ "$(rcli HGET s:report:2026-10 'e:a.b m@x.ph')" = 1 ] || fail "report-fold: the other month lost its count"
[ "$(rcli HGET s:report:2026-10 'c_open m@x.ph')" = 1 ] || fail "report-fold: the complaint"
[ "$(rcli EXISTS s:report-log)" = 0 ] || fail "report-fold: the log was not emptied"
echo "ok: sched-ensure refuses a wrong-typed job hash; report-plan and report-fold read wrong-typed counters and log as empty; a fold loses only a wrong-typed month"

# inbound-apply with P:suppressed a string, then with a counter that is no
# number: refused before the event is added or the UID marked done.
rcli SET s:inbound-lease tok >/dev/null
rcli HSET s:inbound uidvalidity 7 last 3 >/dev/null
rcli DEL s:suppressed >/dev/null
rcli SET s:suppressed oops >/dev/null
out=$(rcli EVAL "$(script inbound-apply)" 4 s:inbound-lease s:inbound s:events-in s:suppressed \
    tok 7 4 bounce "$(date +%s000)" 10000 a@x.ph '{"type":"email.bounced","client":"c"}' 2>&1)
case $out in *"not a set"*) ;; *) fail "inbound-apply: want a type error, got: $out" ;; esac
rcli DEL s:suppressed >/dev/null
rcli HSET s:inbound n:bounce many >/dev/null
out=$(rcli EVAL "$(script inbound-apply)" 4 s:inbound-lease s:inbound s:events-in s:suppressed \
    tok 7 4 bounce "$(date +%s000)" 10000 a@x.ph '{"type":"email.bounced","client":"c"}' 2>&1)
case $out in *"is not a number"*) ;; *) fail "inbound-apply: want a counter error, got: $out" ;; esac
[ "$(rcli EXISTS s:events-in)" = 0 ] || fail "inbound-apply: an event was added"
[ "$(rcli EXISTS s:suppressed)" = 0 ] || fail "inbound-apply: an address was suppressed"
[ "$(rcli HGET s:inbound last)" = 3 ] || fail "inbound-apply: the UID was marked done"
# and it works once the counter is fixed; a second run is 'done'
rcli HSET s:inbound n:bounce 0 >/dev/null
out=$(rcli EVAL "$(script inbound-apply)" 4 s:inbound-lease s:inbound s:events-in s:suppressed \
    tok 7 4 bounce "$(date +%s000)" 10000 a@x.ph '{"type":"email.bounced","client":"c"}' 2>&1)
[ "$(echo $out)" = "ok 1 1" ] || fail "inbound-apply: $out"
out=$(rcli EVAL "$(script inbound-apply)" 4 s:inbound-lease s:inbound s:events-in s:suppressed \
    tok 7 4 bounce "$(date +%s000)" 10000 a@x.ph '{"type":"email.bounced","client":"c"}' 2>&1)
[ "$out" = done ] || fail "inbound-apply again: $out"
[ "$(rcli XLEN s:events-in)" = 1 ] || fail "inbound-apply: events $(rcli XLEN s:events-in)"
# inbound-poll with the lease key a hash
rcli DEL s:inbound-lease >/dev/null
rcli HSET s:inbound-lease x 1 >/dev/null
out=$(rcli EVAL "$(script inbound-poll)" 2 s:inbound-lease s:inbound L tok 10000 1 2>&1)
case $out in *"not a string"*) ;; *) fail "inbound-poll: want a type error, got: $out" ;; esac
echo "ok: inbound-apply and inbound-poll refuse wrong-typed keys with nothing changed"

# intake-apply with one client's timeline (P:timeline:<c>) a string: both
# events of the batch still apply (the profile written, the entries
# acknowledged, counted); the other client's timeline gets its entry, the
# string is left as it was (before the first write nothing is of a wrong
# type, so the script must not fail after it).
rcli SET t:timeline:twbad oops >/dev/null
rcli XGROUP CREATE t:events g '$' MKSTREAM >/dev/null
a=$(rcli XADD t:events '*' event x)
b=$(rcli XADD t:events '*' event y)
rcli XREADGROUP GROUP g me COUNT 10 STREAMS t:events '>' >/dev/null
pyredis "
src = open('$dir/intake-apply.lua', 'rb').read()
now = b'%d' % __import__('time').time_ns()
now = now[:-6]
def rec(sid, client, eid):
    # nf = 1, na = 0 (two bytes each), then the order time
    return [sid, b'ait', client, eid, b'{\"k\":\"e\",\"t\":\"x.y\",\"at\":1,\"id\":\"' + eid + b'\"}',
            b'\x00\x01\x00\x00' + now, b'name', b'N ' + client]
args = [b'g', b't', now, b'60000', b'me', b'$a', b'$b', b'0', b'5', b'7776000']
args += rec(b'$a', b'twbad', b'tw-1') + rec(b'$b', b'twok', b'tw-2')
out = r.cmd('EVAL', src, 1, b't:events', *args)
assert out[0] == 2, out
" || fail "intake-apply with a wrong-typed timeline key failed"
[ "$(rcli GET t:timeline:twbad)" = oops ] || fail "intake-apply: the string timeline changed"
[ "$(rcli HGET t:client:twbad name)" = "N twbad" ] || fail "intake-apply: twbad's profile not written"
[ "$(rcli LRANGE t:timeline:twok 0 -1)" = '{"k":"e","t":"x.y","at":1,"id":"tw-2"}' ] ||
    fail "intake-apply: twok's timeline: $(rcli LRANGE t:timeline:twok 0 -1)"
[ "$(rcli TTL t:timeline:twok)" -gt 7776000 ] && fail "intake-apply: timeline TTL $(rcli TTL t:timeline:twok)"
[ "$(rcli TTL t:timeline:twok)" -gt 7775000 ] || fail "intake-apply: timeline TTL $(rcli TTL t:timeline:twok)"
[ "$(rcli XPENDING t:events g | head -1)" = 0 ] || fail "intake-apply: entries left pending"
[ "$(rcli HGET t:stats events_applied)" = 2 ] || fail "intake-apply: applied $(rcli HGET t:stats events_applied)"
echo "ok: intake-apply applies the batch when a timeline key is of the wrong type"

# sched-settle with a T op (a message in the timeline) on a string: the
# job completes; on a list it is pushed once, a settle sent again adds
# nothing (the message id is there already).
rcli HSET s:job:tt r:tt:: '{"d":1}' >/dev/null
rcli ZADD s:jobs 1 r:tt:: >/dev/null
rcli SET s:timeline:tt oops >/dev/null
out=$(rcli EVAL "$(script sched-settle)" 2 s:jobs s:dead 60 s:sent: s:job: \
    "C 0 0 0 1" r:tt:: '{"d":1}' 6 T s:timeline:tt '{"k":"m","mid":"<m1@x>"}' '<m1@x>' 5 100 2>&1)
[ "$out" = 1 ] || fail "sched-settle with a wrong-typed timeline: $out"
[ "$(rcli HEXISTS s:job:tt r:tt::)" = 0 ] || fail "sched-settle (T op): the job was not completed"
[ "$(rcli GET s:timeline:tt)" = oops ] || fail "sched-settle: the timeline string changed"
rcli DEL s:timeline:tt >/dev/null
for n in 1 2; do
    rcli HSET s:job:tt r:tt:: '{"d":1}' >/dev/null
    rcli ZADD s:jobs 1 r:tt:: >/dev/null
    rcli EVAL "$(script sched-settle)" 2 s:jobs s:dead 60 s:sent: s:job: \
        "C 0 0 0 1" r:tt:: '{"d":1}' 6 T s:timeline:tt '{"k":"m","mid":"<m1@x>"}' '<m1@x>' 5 100 >/dev/null
done
[ "$(rcli LLEN s:timeline:tt)" = 1 ] && [ "$(rcli TTL s:timeline:tt)" -le 100 ] && [ "$(rcli TTL s:timeline:tt)" -gt 0 ] ||
    fail "sched-settle T twice: $(rcli LRANGE s:timeline:tt 0 -1), TTL $(rcli TTL s:timeline:tt)"
echo "ok: sched-settle's timeline op: a wrong-typed key loses only it; once per message id"

# ops-job (hold) with P:jobs-held a string: the job stays scheduled.
rcli FLUSHALL >/dev/null
rcli ZADD o:jobs 5 r:c:s: >/dev/null
rcli SET o:jobs-held oops >/dev/null
out=$(rcli EVAL "$(script ops-job)" 2 o:jobs o:jobs-held hold r:c:s: o:job: 2>&1)
case $out in *"not a zset"*) ;; *) fail "ops-job: want a type error, got: $out" ;; esac
[ "$(rcli ZSCORE o:jobs r:c:s:)" = 5 ] || fail "ops-job: the job left P:jobs"
echo "ok: ops-job refuses a wrong-typed key with nothing changed"

# ctl-jobs-cancel with the job hash a string: the index entry stays.
rcli DEL o:jobs-held >/dev/null
rcli SET o:job:c oops >/dev/null
out=$(rcli EVAL "$(script ctl-jobs-cancel)" 2 o:jobs o:jobs-held r:c:s: o:job: 2>&1)
case $out in *"not a hash"*) ;; *) fail "ctl-jobs-cancel: want a type error, got: $out" ;; esac
[ "$(rcli ZSCORE o:jobs r:c:s:)" = 5 ] || fail "ctl-jobs-cancel: the index entry went"
echo "ok: ctl-jobs-cancel refuses a wrong-typed key with nothing changed"

# ctl-intake-replay of a message with the job hash a string: the dead
# letter stays, nothing scheduled.
rcli DEL o:jobs >/dev/null
rcli XADD o:dead 1-1 kind message source r:c:s: payload '{"d":1}' >/dev/null
out=$(rcli EVAL "$(script ctl-intake-replay)" 3 o:dead o:events o:jobs 1-1 o:job: 2>&1)
case $out in *"not a hash"*) ;; *) fail "ctl-intake-replay: want a type error, got: $out" ;; esac
[ "$(rcli XLEN o:dead)" = 1 ] && [ "$(rcli EXISTS o:jobs)" = 0 ] ||
    fail "ctl-intake-replay: something changed"
rcli DEL o:job:c >/dev/null
rcli SET o:jobs oops >/dev/null
out=$(rcli EVAL "$(script ctl-intake-replay)" 3 o:dead o:events o:jobs 1-1 o:job: 2>&1)
case $out in *"not a zset"*) ;; *) fail "ctl-intake-replay: want a zset error, got: $out" ;; esac
[ "$(rcli XLEN o:dead)" = 1 ] && [ "$(rcli EXISTS o:job:c)" = 0 ] ||
    fail "ctl-intake-replay: something changed (P:jobs a string)"
echo "ok: ctl-intake-replay refuses a wrong-typed key with nothing changed"

# ops-overview and ops-jobs-page read only; wrong types read as empty or
# a clear error, never a crash of the caller.
out=$(rcli EVAL "$(script ops-jobs-page)" 1 o:jobs 0 100 0 10 o:job: 2>&1)
case $out in *"not a zset"*) ;; *) fail "ops-jobs-page: want a type error, got: $out" ;; esac
rcli SET o:events oops >/dev/null
out=$(rcli EVAL "$(script ops-overview)" 5 o:events o:dead o:jobs o:stats o:daemons g o:daemon: 10000 2>&1)
case $out in *ERR*) fail "ops-overview: $out" ;; esac
echo "ok: ops-jobs-page and ops-overview on wrong-typed keys"

# chart-add with its bucket a string: refused, the string kept.
rcli SET o:chart:1 oops >/dev/null
out=$(rcli EVAL "$(script chart-add)" 1 o:chart:1 7800 5 sent 1 2>&1)
case $out in *"not a hash"*) ;; *) fail "chart-add: want a type error, got: $out" ;; esac
[ "$(rcli GET o:chart:1)" = oops ] && [ "$(rcli TTL o:chart:1)" = -1 ] || fail "chart-add: the key changed"
out=$(rcli EVAL "$(script ops-charts)" 0 o:chart: 60 2>&1)
case $out in *ERR*) fail "ops-charts: $out" ;; esac
echo "ok: chart-add refuses a wrong-typed bucket; ops-charts reads around it"
