#!/usr/bin/python3
"""Log in many provisioned accounts at once (our own minimal XMPP client).

  login_check.py --port P --domain D --users N [--first 1] [--concurrency 200]
                 [--hold SECONDS] [--rss-cmd 'bench/servers/prosody.sh rss DIR']

For userI/passI, I = first..first+N-1: open a plain-TCP stream, authenticate
with SASL SCRAM-SHA-1 (server signature verified), restart the stream, bind a
resource, send initial presence. All sessions stay open until every login has
finished (so the server really holds N sessions), then close cleanly.
Prints counts and login-time percentiles; exit 0 only if all N succeeded.
Every wait is bounded (--timeout per step, and an overall watchdog).
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import sys
import time
import xml.etree.ElementTree as ET

NS_STREAM = 'http://etherx.jabber.org/streams'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'


class Failed(Exception):
    pass


class Conn:
    def __init__(self, reader, writer, timeout):
        self.r, self.w, self.timeout = reader, writer, timeout
        self.new_parser()

    def new_parser(self):
        self.parser = ET.XMLPullParser(events=('start', 'end'))
        self.depth = 0
        self.pending = []

    async def open_stream(self, domain):
        self.new_parser()
        self.w.write(("<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' "
                      "xmlns:stream='%s'>" % (domain, NS_STREAM)).encode())
        await self.w.drain()
        feats = await self.element()
        if feats.tag != '{%s}features' % NS_STREAM:
            raise Failed('expected stream features, got %s' % feats.tag)
        return feats

    async def element(self):
        """Next complete top-level (depth 1) element of the stream."""
        while True:
            if self.pending:
                return self.pending.pop(0)
            data = await asyncio.wait_for(self.r.read(65536), self.timeout)
            if not data:
                raise Failed('connection closed by server')
            self.parser.feed(data)
            for ev, el in self.parser.read_events():
                if ev == 'start':
                    self.depth += 1
                else:
                    self.depth -= 1
                    if self.depth == 1:
                        self.pending.append(el)
                    elif self.depth == 0:
                        raise Failed('stream closed by server')

    async def send(self, xml):
        self.w.write(xml.encode())
        await self.w.drain()


def b64(b):
    return base64.b64encode(b).decode()


async def login(host, port, domain, user, password, timeout, resource):
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    c = Conn(reader, writer, timeout)
    feats = await c.open_stream(domain)
    mechs = [m.text for m in feats.iter('{%s}mechanism' % NS_SASL)]
    if 'SCRAM-SHA-1' not in mechs:
        raise Failed('SCRAM-SHA-1 not offered (%s)' % mechs)
    cnonce = b64(os.urandom(18))
    first_bare = 'n=%s,r=%s' % (user, cnonce)
    await c.send("<auth xmlns='%s' mechanism='SCRAM-SHA-1'>%s</auth>" % (NS_SASL, b64(('n,,' + first_bare).encode())))
    ch = await c.element()
    if ch.tag != '{%s}challenge' % NS_SASL:
        raise Failed('auth: %s' % ET.tostring(ch, encoding='unicode')[:200])
    server_first = base64.b64decode(ch.text or '').decode()
    attrs = dict(kv.split('=', 1) for kv in server_first.split(','))
    if not attrs['r'].startswith(cnonce):
        raise Failed('server nonce does not extend ours')
    salted = hashlib.pbkdf2_hmac('sha1', password.encode(), base64.b64decode(attrs['s']), int(attrs['i']))
    client_key = hmac.new(salted, b'Client Key', hashlib.sha1).digest()
    stored_key = hashlib.sha1(client_key).digest()
    final_wo_proof = 'c=biws,r=%s' % attrs['r']
    auth_msg = ','.join((first_bare, server_first, final_wo_proof)).encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha1).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    await c.send("<response xmlns='%s'>%s</response>" % (NS_SASL, b64(('%s,p=%s' % (final_wo_proof, b64(proof))).encode())))
    res = await c.element()
    if res.tag != '{%s}success' % NS_SASL:
        raise Failed('SASL failed: %s' % ET.tostring(res, encoding='unicode')[:200])
    server_key = hmac.new(salted, b'Server Key', hashlib.sha1).digest()
    expected_v = b64(hmac.new(server_key, auth_msg, hashlib.sha1).digest())
    if res.text:
        v = base64.b64decode(res.text).decode()
        if v != 'v=' + expected_v:
            raise Failed('bad server signature')
    await c.open_stream(domain)
    await c.send("<iq type='set' id='b1'><bind xmlns='%s'><resource>%s</resource></bind></iq>" % (NS_BIND, resource))
    while True:
        el = await c.element()
        if el.tag == '{jabber:client}iq' and el.get('id') == 'b1':
            break
    if el.get('type') != 'result':
        raise Failed('bind failed: %s' % ET.tostring(el, encoding='unicode')[:200])
    await c.send('<presence/>')
    return c


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--domain', required=True)
    ap.add_argument('--users', type=int, default=1000)
    ap.add_argument('--first', type=int, default=1)
    ap.add_argument('--concurrency', type=int, default=200)
    ap.add_argument('--timeout', type=float, default=30)
    ap.add_argument('--hold', type=float, default=0, help='seconds to keep all sessions open before closing')
    ap.add_argument('--rss-cmd', help='shell command printing the server RSS (KiB), run while all sessions are open')
    a = ap.parse_args()

    sem = asyncio.Semaphore(a.concurrency)
    conns, errors, times = [], {}, []

    async def one(i):
        async with sem:
            t = time.monotonic()
            try:
                conns.append(await login(a.host, a.port, a.domain, 'user%d' % i, 'pass%d' % i, a.timeout, 'lc%d' % i))
                times.append(time.monotonic() - t)
            except Exception as e:  # noqa: BLE001 - report every kind of failure
                msg = '%s: %s' % (type(e).__name__, e)
                errors.setdefault(msg, []).append(i)

    start = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(a.first, a.first + a.users)))
    wall = time.monotonic() - start
    ok = len(conns)
    if a.hold:
        await asyncio.sleep(a.hold)
    if a.rss_cmd:
        proc = await asyncio.create_subprocess_shell(a.rss_cmd, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        print('server rss with %d sessions online: %s KiB' % (ok, out.decode().strip()))
    for c in conns:
        try:
            c.w.write(b'</stream:stream>')
            c.w.close()
        except Exception:  # noqa: BLE001
            pass
    await asyncio.sleep(0.5)
    times.sort()
    pct = lambda p: times[min(len(times) - 1, int(p * len(times)))] * 1000 if times else 0
    print('logged in %d/%d accounts in %.1f s (%.0f logins/s); login ms p50 %.0f p99 %.0f max %.0f'
          % (ok, a.users, wall, ok / wall if wall else 0, pct(0.5), pct(0.99), pct(1.0)))
    for msg, users in errors.items():
        print('FAILED %d: %s (e.g. user%d)' % (len(users), msg, users[0]))
    return 0 if ok == a.users else 1


if __name__ == '__main__':
    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(), 600)))
    except asyncio.TimeoutError:
        print('FAILED: watchdog (600 s)')
        sys.exit(1)
