#!/bin/sh
# mime_parse.sh - messages built by suki_mime_build (via mime_dump) parse
# cleanly with Python's email package (policy=default): headers decode to
# what went in, no defects, text/plain before text/html, no injected header.
set -eu

: "${top_srcdir:?}" "${top_builddir:?}"
PY=/usr/bin/python3
DUMP="$top_builddir/tests/integration/mime_dump"
[ -x "$PY" ] || { echo "FAIL: cannot run here: $PY not installed"; exit 1; }
[ -x "$DUMP" ] || { echo "FAIL: $DUMP not built"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$DUMP" "$tmp" "$top_srcdir/conf/templates"

"$PY" - "$tmp" <<'EOF'
import datetime
import email
import email.policy
import glob
import os
import sys

d = sys.argv[1]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def load(name):
    raw = open(os.path.join(d, name + ".eml"), "rb").read()
    # CRLF everywhere, no bare LF or CR, lines <= 998 bytes
    lines = raw.split(b"\r\n")
    check(lines[-1] == b"", name + ": does not end with CRLF")
    for ln in lines:
        check(b"\n" not in ln and b"\r" not in ln, name + ": bare CR/LF")
        check(len(ln) <= 998, name + ": line over 998 bytes")
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    check(not msg.defects, "%s: message defects %r" % (name, msg.defects))
    for k, v in msg.items():
        check(not getattr(v, "defects", ()),
              "%s: %s defects %r" % (name, k, getattr(v, "defects", ())))
    for part in msg.walk():
        check(not part.defects, "%s: part defects %r" % (name, part.defects))
    return msg


def body(part):
    """Decoded content; the parser keeps the wire's CRLF line ends."""
    c = part.get_content()
    check("\r" not in c.replace("\r\n", ""), "bare CR in decoded body")
    return c.replace("\r\n", "\n")


def parts(msg):
    return [p.get_content_type() for p in msg.iter_parts()]


# single text/plain part
m = load("single")
check(list(m.keys()) == ["Date", "From", "To", "Subject", "Message-ID",
                         "MIME-Version", "Auto-Submitted", "Content-Type",
                         "Content-Transfer-Encoding"],
      "single: headers %r" % list(m.keys()))
check(m["subject"] == "Follow up with Acme", "single: subject")
check(m.get_content_type() == "text/plain", "single: type")
check(m.get_content_charset() == "utf-8", "single: charset")
check(body(m) == "Hello,\nplease follow up.\n",
      "single: body %r" % body(m))
check(m["date"].datetime == datetime.datetime(
    2026, 11, 27, 2, 0, tzinfo=datetime.timezone.utc), "single: date")
check(m["to"].addresses[0].addr_spec == "ops@example.ph", "single: to")

# multipart/alternative with encoded subject and names
m = load("alt")
check(list(m.keys()) == ["Date", "From", "To", "Reply-To", "Subject",
                         "Message-ID", "MIME-Version", "Auto-Submitted",
                         "List-Unsubscribe", "List-Unsubscribe-Post",
                         "X-Suki-Job", "Content-Type"],
      "alt: headers %r" % list(m.keys()))
want = ("Paalala: i-follow up ang Bahay Kubo Café 🍜 — salamat po! "
        "Mahaba-habang subject para matiklop sa dalawang linya")
check(str(m["subject"]) == want, "alt: subject %r" % str(m["subject"]))
to = m["to"].addresses
check(len(to) == 1, "alt: one recipient")
check(to[0].display_name == "José Rizal 🇵🇭", "alt: to name %r" %
      to[0].display_name)
check(to[0].addr_spec == "jose@example.ph", "alt: to addr")
check(m["from"].addresses[0].display_name == "Accounts", "alt: from name")
check(m["reply-to"].addresses[0].addr_spec == "maria@example.ph",
      "alt: reply-to")
check(str(m["list-unsubscribe"]) == "<https://suki.example.ph/u/tok123>",
      "alt: list-unsubscribe")
check(str(m["list-unsubscribe-post"]) == "List-Unsubscribe=One-Click",
      "alt: list-unsubscribe-post")
check(m["message-id"] == "<0123456789abcdef@example.ph>", "alt: message-id")
check(m.get_content_type() == "multipart/alternative", "alt: type")
check(parts(m) == ["text/plain", "text/html"], "alt: parts %r" % parts(m))
text, html = list(m.iter_parts())
want_text = ("Kumusta po!\n\n.dot line\nFrom the team\nlong " + "x" * 120 +
             " end\ntrailing space \n")
check(body(text) == want_text, "alt: text %r" % body(text))
check(body(html) == "<p>Kumusta po! 🍜</p>\n", "alt: html")
check(m.get_body(preferencelist=("plain",)) is text, "alt: body plain")
check(m.get_body(preferencelist=("html",)) is html, "alt: body html")

# injection attempts stay inside their header
m = load("inject")
check("Bcc" not in m, "inject: Bcc header present")
check(list(m.keys()) == ["Date", "From", "To", "Subject", "Message-ID",
                         "MIME-Version", "Auto-Submitted", "Content-Type",
                         "Content-Transfer-Encoding"],
      "inject: headers %r" % list(m.keys()))
check(str(m["subject"]) == "Hi  Bcc: evil@example.com",
      "inject: subject %r" % str(m["subject"]))
to = m["to"].addresses
check(len(to) == 1 and to[0].addr_spec == "maria@example.ph",
      "inject: recipients %r" % (to,))
# a phrase's white space runs read as one space
check(" ".join(to[0].display_name.split()) == "Maria Bcc: evil@example.com",
      "inject: name %r" % to[0].display_name)

# every shipped template, rendered and built
names = sorted(glob.glob(os.path.join(d, "rendered-*.eml")))
check(len(names) == 14, "rendered: %d files" % len(names))
ids = set()
for path in names:
    name = os.path.basename(path)[:-4]
    m = load(name)
    check("Bahay Kubo Café & Sons" in str(m["subject"]),
          "%s: subject %r" % (name, str(m["subject"])))
    check(parts(m) == ["text/plain", "text/html"], "%s: parts" % name)
    text, html = list(m.iter_parts())
    check("Bahay Kubo Café & Sons" in body(text), name + ": text")
    check("Bahay Kubo Café &amp; Sons" in body(html), name + ": html")
    check("{{" not in body(text) + body(html),
          name + ": unrendered tag")
    check(m["message-id"].endswith("@example.ph>"), name + ": message-id")
    ids.add(str(m["message-id"]))
    if "campaign-example" in name:
        check(str(m["list-unsubscribe"]) ==
              "<https://suki.example.ph/u/abc?x=1&y=2>",
              name + ": list-unsubscribe")
        check("https://suki.example.ph/u/abc?x=1&y=2" in body(text),
              name + ": unsubscribe link in text")
    else:
        check("List-Unsubscribe" not in m, name + ": List-Unsubscribe")
check(len(ids) == 14, "rendered: message ids not distinct")

if failures:
    for f in failures:
        print("FAIL:", f)
    sys.exit(1)
print("ok: %d messages parsed" % (3 + len(names)))
EOF
