#!/usr/bin/python3
"""imap_fill.py - put mail into the test Dovecot with IMAP APPEND, shaped
like what sukid's replies-and-bounces mailbox receives.

  imap_fill.py PORT CAFILE KIND [ARGS...]
    reply MSGID FROM SUBJECT   a person's answer (In-Reply-To, References)
    ooo MSGID FROM             an out-of-office (Auto-Submitted)
    dsn MSGID RCPT STATUS      a Postfix bounce with text/rfc822-headers
    arf MSGID RCPT             an RFC 5965 abuse report
    other                      a newsletter
    malformed                  truncated MIME, 10,000 parts, 20 MB, bad
                               encodings (four messages)
    replies N MSGID FROM       N distinct replies
    others N                   N newsletters
User suki, password secret, mailbox INBOX, TLS checked against CAFILE.
"""
import imaplib
import ssl
import sys
import time
import uuid


def crlf(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    return s.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def date():
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())


def reply(msgid, frm, subject, n=0):
    return crlf(f"""From: Client <{frm}>
To: Tindahan <test@example.com>
Subject: {subject}
Date: {date()}
Message-ID: <reply.{n}.{uuid.uuid4().hex}@mail.example.ph>
In-Reply-To: {msgid}
References: <thread.start@mail.example.ph> {msgid}
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Salamat po. Let's talk on Thursday. ({n})

> earlier message
""")


def ooo(msgid, frm):
    return crlf(f"""From: Client <{frm}>
To: test@example.com
Subject: Out of Office: Thank you
Date: {date()}
Message-ID: <ooo.{uuid.uuid4().hex}@mail.example.ph>
In-Reply-To: {msgid}
Auto-Submitted: auto-replied
Content-Type: text/plain; charset=us-ascii

I am on leave until next week.
""")


def dsn(msgid, rcpt, status):
    action = "failed" if status.startswith("5") else "delayed"
    code = "550" if status.startswith("5") else "451"
    return crlf(f"""From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: test@example.com
Subject: Undelivered Mail Returned to Sender
Date: {date()}
Message-ID: <{uuid.uuid4().hex}@mx.example.com>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="B.{status}"

--B.{status}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

<{rcpt}>: host mx.example.org said: {code} {status} no such user

--B.{status}
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {code} {status} <{rcpt}>: Recipient address rejected

--B.{status}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Tindahan <test@example.com>
To: {rcpt}
Subject: An offer
Message-ID: {msgid}

--B.{status}--
""")


def arf(msgid, rcpt):
    return crlf(f"""From: <staff@isp.example>
To: <abuse@example.com>
Subject: FW: An offer
Date: {date()}
Message-ID: <arf.{uuid.uuid4().hex}@isp.example>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="arfb"

--arfb
Content-Type: text/plain; charset="US-ASCII"

This is an email abuse report.

--arfb
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: SomeGenerator/1.0
Version: 1
Original-Rcpt-To: <{rcpt}>

--arfb
Content-Type: message/rfc822
Content-Disposition: inline

From: Tindahan <test@example.com>
To: {rcpt}
Subject: An offer
Message-ID: {msgid}

An offer.

--arfb--
""")


def other():
    return crlf(f"""From: News <news@shop.example>
To: test@example.com
Subject: Big sale
Date: {date()}
Message-ID: <news.{uuid.uuid4().hex}@shop.example>
Content-Type: text/plain; charset=us-ascii

Buy now.
""")


def malformed():
    out = []
    # truncated MIME: the multipart ends mid-part, no closing boundary
    out.append(crlf("""From: x@example.ph
To: test@example.com
Subject: Re: hello
In-Reply-To: <nothing@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="zz"

--zz
Content-Type: text/plain

this message was cut in the midd"""))
    # 10,000 parts
    parts = "".join(f"--p\nContent-Type: text/plain\n\npart {i}\n"
                    for i in range(10000))
    out.append(crlf("From: x@example.ph\nTo: test@example.com\n"
                    "Subject: many parts\nMIME-Version: 1.0\n"
                    "Content-Type: multipart/mixed; boundary=p\n\n"
                    + parts + "--p--\n"))
    # 20 MB
    out.append(crlf("From: x@example.ph\nTo: test@example.com\n"
                    "Subject: huge\n\n") + (b"x" * 998 + b"\r\n") * 21000)
    # bad encodings: RFC 2047 words that do not decode (a broken one in
    # From), a bogus charset, base64 that is none, raw 8-bit bytes
    out.append(crlf("""From: =?x-unknown?B?!!!not base64!!!?= <odd@example.ph>
To: test@example.com
Subject: =?UTF-8?B?////?= =?utf-8?Q?=ZZ=FF?=
In-Reply-To: <nothing@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=x-bogus
Content-Transfer-Encoding: base64

!!!!@@@@ not base64
""").replace(b"odd@", b"\xff\xfeodd@"))
    return out


def main():
    port, cafile, kind, args = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    if kind == "reply":
        msgs = [reply(args[0], args[1], args[2])]
    elif kind == "ooo":
        msgs = [ooo(args[0], args[1])]
    elif kind == "dsn":
        msgs = [dsn(args[0], args[1], args[2])]
    elif kind == "arf":
        msgs = [arf(args[0], args[1])]
    elif kind == "other":
        msgs = [other()]
    elif kind == "malformed":
        msgs = malformed()
    elif kind == "others":
        msgs = (other() for _ in range(int(args[0])))
    elif kind == "replies":
        msgs = (reply(args[1], args[2], "Re: thanks", i)
                for i in range(int(args[0])))
    else:
        sys.exit("unknown kind " + kind)
    ctx = ssl.create_default_context(cafile=cafile)
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx)
    m.login("suki", "secret")
    for msg in msgs:
        typ, data = m.append("INBOX", None, None, msg)
        if typ != "OK":
            sys.exit(f"APPEND refused: {data}")
    m.logout()


if __name__ == "__main__":
    main()
