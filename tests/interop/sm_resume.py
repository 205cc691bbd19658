#!/usr/bin/python3
"""XEP-0198 resumption with slixmpp's xep_0198 plugin (Debian python3-slixmpp) against any XMPP server.

Client B enables stream management with resumption; its TCP connection is cut abruptly (the transport is aborted,
no </stream:stream>); client A sends messages meanwhile; B reconnects, resumes the old session (no new bind) and
must get every message sent while it was away exactly once, then still receive live messages.

Every step prints "PASS <step>" or "FAIL <step>: <reason>"; the last line is "SUMMARY passed/total ...".
Exit status 0 only if every step passed. Every wait is bounded by --timeout; the whole run by a watchdog.
Run it with /usr/bin/python3.
"""

import argparse
import asyncio
import logging
import ssl
import sys

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

MISSED = ['missed %d' % i for i in range(1, 4)]


class StepFailed(Exception):
    pass


class Client(ClientXMPP):
    def __init__(self, jid, password, sm):
        super().__init__(jid, password)
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE
        self.register_plugin('xep_0199')
        if sm:
            self.register_plugin('xep_0198')
        self.bodies = []
        self.started = asyncio.Event()
        self.enabled = asyncio.Event()
        self.resumed = asyncio.Event()
        self.failed = asyncio.Event()
        self.gone = asyncio.Event()
        self.arrival = asyncio.Event()
        self.add_event_handler('session_start', self._session_start)
        self.add_event_handler('message', self._message)
        self.add_event_handler('sm_enabled', lambda _: self.enabled.set())
        self.add_event_handler('session_resumed', lambda _: self.resumed.set())
        self.add_event_handler('sm_failed', lambda _: self.failed.set())
        self.add_event_handler('disconnected', lambda _: self.gone.set())

    def _session_start(self, _):
        self.send_presence()
        self.started.set()

    def _message(self, msg):
        if msg['body']:
            self.bodies.append(msg['body'])
            self.arrival.set()

    def open(self, host, port, tls):
        self.gone.clear()
        self.connect((host, port), use_ssl=False, force_starttls=(tls == 'starttls'),
                     disable_starttls=(tls == 'plain'))

    async def wait_bodies(self, wanted, timeout):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not all(b in self.bodies for b in wanted):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self.arrival.clear()
            try:
                await asyncio.wait_for(self.arrival.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        return True

    async def barrier(self, timeout):
        """A ping to the server: everything sent before it has been handled, everything queued for us before it is here."""
        try:
            await self['xep_0199'].ping(self.boundjid.domain, timeout=timeout)
        except (IqError, IqTimeout) as e:
            raise StepFailed('ping barrier failed: %s' % e)


async def wait(event, timeout, what):
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError:
        raise StepFailed('no %s within %ss' % (what, timeout))


async def run(args):
    results = []

    def report(name, ok, note=''):
        results.append(ok)
        print('%s %s%s' % ('PASS' if ok else 'FAIL', name, (': ' + note) if note else ''), flush=True)

    a = Client('%s@%s/a' % (args.user1, args.domain), args.pass1, sm=False)
    b = Client('%s@%s/b' % (args.user2, args.domain), args.pass2, sm=True)
    b_jid = '%s@%s/b' % (args.user2, args.domain)
    t = args.timeout
    try:
        a.open(args.host, args.port, args.tls)
        b.open(args.host, args.port, args.tls)
        await wait(a.started, t, 'session for A')
        await wait(b.started, t, 'session for B')
        await wait(b.enabled, t, '<enabled/> for B')
        sm_id = b['xep_0198'].sm_id
        if not sm_id:
            raise StepFailed('<enabled/> carried no resumption id')
        report('enable', True, 'id=%s' % sm_id)

        a.send_message(mto=b_jid, mbody='live 1', mtype='chat')
        if not await b.wait_bodies(['live 1'], t):
            raise StepFailed('B did not get the live message')
        report('live message', True)

        # The cut: no closing handshake, the socket just goes away.
        b.transport.abort()
        await wait(b.gone, t, 'disconnect of B')
        report('cut', True)

        for body in MISSED:
            a.send_message(mto=b_jid, mbody=body, mtype='chat')
        await a.barrier(t)
        report('messages sent while B was away', True)

        b.bodies.clear()
        b.open(args.host, args.port, args.tls)
        done, _ = await asyncio.wait([asyncio.ensure_future(b.resumed.wait()), asyncio.ensure_future(b.failed.wait())],
                                     timeout=t, return_when=asyncio.FIRST_COMPLETED)
        if not b.resumed.is_set():
            raise StepFailed('the session was not resumed (%s)' % ('<failed/>' if b.failed.is_set() else 'timeout'))
        if b['xep_0198'].sm_id != sm_id:
            raise StepFailed('resumed with another id')
        report('resume', True)

        if not await b.wait_bodies(MISSED, t):
            raise StepFailed('after the resume B got %r, not all of %r' % (b.bodies, MISSED))
        await b.barrier(t)
        counts = {body: b.bodies.count(body) for body in MISSED + ['live 1']}
        if any(counts[body] != 1 for body in MISSED) or counts['live 1'] != 0:
            raise StepFailed('not exactly once: %r' % counts)
        report('missed messages exactly once', True, '%d resent' % len(MISSED))

        a.send_message(mto=b_jid, mbody='live 2', mtype='chat')
        if not await b.wait_bodies(['live 2'], t):
            raise StepFailed('B did not get a live message after the resume')
        report('live after resume', True)
    except StepFailed as e:
        report('step', False, str(e))
    finally:
        for c in (a, b):
            try:
                if c.is_connected():
                    c.disconnect()
            except Exception:  # noqa: BLE001 - teardown only
                pass
        await asyncio.sleep(0.2)
    passed = sum(1 for ok in results if ok)
    total = 7
    print('SUMMARY %d/%d steps passed against %s:%d (tls=%s)' % (passed, total, args.host, args.port, args.tls), flush=True)
    return 0 if passed == total and all(results) else 1


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=5222)
    p.add_argument('--domain', default='localhost')
    p.add_argument('--user1', required=True)
    p.add_argument('--pass1', required=True)
    p.add_argument('--user2', required=True)
    p.add_argument('--pass2', required=True)
    p.add_argument('--tls', choices=['plain', 'starttls'], default='plain')
    p.add_argument('--timeout', type=float, default=10)
    p.add_argument('--debug', action='store_true')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR)

    async def guarded():
        return await asyncio.wait_for(run(args), args.timeout * 8)

    try:
        sys.exit(asyncio.run(guarded()))
    except asyncio.TimeoutError:
        print('FAIL watchdog: the run took longer than %ss' % (args.timeout * 8), flush=True)
        print('SUMMARY 0/7 steps passed (watchdog)', flush=True)
        sys.exit(1)


if __name__ == '__main__':
    main()
