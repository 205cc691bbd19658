#!/usr/bin/python3
"""RFC 6121 presence subscriptions driven by a real client library (slixmpp, as
packaged by Debian: python3-slixmpp; run it with /usr/bin/python3).

Two users who have never met subscribe to each other through the protocol,
and the roster state is read back from the server (a roster get, not
slixmpp's cache) at every step:

  1. user1 asks user2 while user2 is offline      -> user1: none + ask
  2. user2 logs in: the stored request arrives after initial presence
  3. user2 approves                                -> user1: to, user2: from
  4. user2 asks back, user1 approves               -> both: both
  5. presence updates are seen both ways

slixmpp's own subscription handling is switched off (auto_authorize and
auto_subscribe None), so every subscription stanza is one this script sends.
Every step prints "PASS <step>" or "FAIL <step>: <reason>"; the last line is a
summary.  Exit status 0 only if every step passed.  Every wait is bounded by
--timeout, the whole run by a watchdog.
"""

import argparse
import asyncio
import logging
import sys
import uuid
import xml.etree.ElementTree as ET

from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout

NS_ROSTER = 'jabber:iq:roster'
NS_CLIENT = 'jabber:client'


class StepFailed(Exception):
    pass


class Client(ClientXMPP):
    def __init__(self, jid, password, timeout):
        super().__init__(jid, password, sasl_mech='SCRAM-SHA-1')
        self.op_timeout = timeout
        # The script answers subscription requests itself.
        self.auto_authorize = None
        self.auto_subscribe = None
        self['feature_mechanisms'].unencrypted_scram = True
        self.started = asyncio.Event()
        self.failure = None
        self.presences = []
        self._arrival = asyncio.Event()
        self.add_event_handler('session_start', lambda _: self.started.set())
        self.add_event_handler('failed_all_auth', lambda _: self._fail('authentication failed'))
        self.add_event_handler('connection_failed', lambda e: self._fail('connection failed: %s' % e))
        self.add_event_handler('stream_error', lambda e: self._fail('stream error: %s' % e['condition']))
        self.add_event_handler('presence', self._on_presence)

    def _fail(self, why):
        self.failure = self.failure or why
        self.started.set()

    def _on_presence(self, presence):
        self.presences.append(presence)
        self._arrival.set()

    async def login(self, host, port, status):
        self.connect((host, port), use_ssl=False, disable_starttls=True)
        try:
            await asyncio.wait_for(self.started.wait(), self.op_timeout)
        except asyncio.TimeoutError:
            raise StepFailed('%s: no session within %ss' % (self.boundjid, self.op_timeout))
        if self.failure:
            raise StepFailed('%s: %s' % (self.boundjid.bare, self.failure))
        # Interested (roster get) and available (initial presence), as a client logs in.
        await self.roster_state()
        self.send_presence(pstatus=status)

    async def roster_state(self):
        """{jid: (subscription, ask)} as the server answers a roster get."""
        iq = self.Iq()
        iq['type'] = 'get'
        iq.append(ET.Element('{%s}query' % NS_ROSTER))
        try:
            result = await iq.send(timeout=self.op_timeout)
        except (IqError, IqTimeout) as e:
            raise StepFailed('roster get failed: %s' % e)
        query = result.xml.find('{%s}query' % NS_ROSTER)
        items = {}
        for item in (query if query is not None else []):
            items[item.get('jid')] = (item.get('subscription'), item.get('ask'))
        return items

    async def expect_presence(self, pred, what):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.op_timeout
        idx = 0
        while True:
            while idx < len(self.presences):
                p = self.presences[idx]
                idx += 1
                if pred(p):
                    return p
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StepFailed('%s: no %s within %ss' % (self.boundjid.bare, what, self.op_timeout))
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def expect_roster(self, jid, subscription, ask=None):
        """Polls the roster (a push may still be on its way) until the item has the state."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.op_timeout
        while True:
            state = (await self.roster_state()).get(jid)
            if state == (subscription, ask):
                return
            if loop.time() >= deadline:
                raise StepFailed('%s: roster item %s is %s, expected (%s, %s)'
                                 % (self.boundjid.bare, jid, state, subscription, ask))
            await asyncio.sleep(0.2)


class Run:
    def __init__(self, args):
        self.a = args
        self.results = []
        self.tag = uuid.uuid4().hex[:8]
        self.clients = []
        self.j1 = '%s@%s' % (args.user1, args.domain)
        self.j2 = '%s@%s' % (args.user2, args.domain)

    async def step(self, name, fn):
        if self.results and not all(ok for _, ok in self.results):
            self.results.append((name, False))
            print('FAIL %s: not run, an earlier step failed' % name, flush=True)
            return
        try:
            note = await fn()
        except StepFailed as e:
            self.results.append((name, False))
            print('FAIL %s: %s' % (name, e), flush=True)
            return
        except Exception as e:  # noqa - report anything unexpected
            self.results.append((name, False))
            print('FAIL %s: unexpected %s: %s' % (name, type(e).__name__, e), flush=True)
            return
        self.results.append((name, True))
        print('PASS %s%s' % (name, (' (%s)' % note) if note else ''), flush=True)

    def client(self, user, password):
        c = Client('%s@%s/subs' % (user, self.a.domain), password, self.a.timeout)
        self.clients.append(c)
        return c

    async def run(self):
        a = self.a
        c1 = self.client(a.user1, a.pass1)
        c2 = self.client(a.user2, a.pass2)

        async def offline_request():
            await c1.login(a.host, a.port, 'one-%s' % self.tag)
            c1.send_presence(pto=self.j2, ptype='subscribe')
            await c1.expect_roster(self.j2, 'none', 'subscribe')
            return '%s: none + ask while %s is offline' % (self.j1, self.j2)

        async def delivered_at_login():
            await c2.login(a.host, a.port, 'two-%s' % self.tag)
            await c2.expect_presence(lambda p: p['type'] == 'subscribe' and p['from'].bare == self.j1,
                                     'stored subscription request')
            if self.j1 in await c2.roster_state():
                raise StepFailed('the pending request shows as a roster item of %s' % self.j2)
            return 'the stored request arrived after initial presence'

        async def approve():
            c2.send_presence(pto=self.j1, ptype='subscribed')
            await c1.expect_roster(self.j2, 'to')
            await c2.expect_roster(self.j1, 'from')
            await c1.expect_presence(lambda p: p['from'].bare == self.j2 and p['type'] == 'available',
                                     "%s's presence after the approval" % self.j2)
            return '%s: to, %s: from; presence seen' % (self.j1, self.j2)

        async def mutual():
            c2.send_presence(pto=self.j1, ptype='subscribe')
            await c2.expect_roster(self.j1, 'from', 'subscribe')
            await c1.expect_presence(lambda p: p['type'] == 'subscribe' and p['from'].bare == self.j2,
                                     "%s's request" % self.j2)
            c1.send_presence(pto=self.j2, ptype='subscribed')
            await c1.expect_roster(self.j2, 'both')
            await c2.expect_roster(self.j1, 'both')
            await c2.expect_presence(lambda p: p['from'].bare == self.j1 and p['type'] == 'available',
                                     "%s's presence after the approval" % self.j1)
            return 'both: both'

        async def both_ways():
            c1.send_presence(pstatus='away-%s' % self.tag, pshow='away')
            await c2.expect_presence(lambda p: p['from'].bare == self.j1 and p['status'] == 'away-%s' % self.tag,
                                     "%s's update" % self.j1)
            c2.send_presence(pstatus='back-%s' % self.tag)
            await c1.expect_presence(lambda p: p['from'].bare == self.j2 and p['status'] == 'back-%s' % self.tag,
                                     "%s's update" % self.j2)
            return 'updates seen by each other'

        await self.step('offline-request', offline_request)
        await self.step('delivered-at-login', delivered_at_login)
        await self.step('approve', approve)
        await self.step('mutual', mutual)
        await self.step('presence-both-ways', both_ways)

    async def cleanup(self):
        for c in self.clients:
            try:
                c.disconnect()
            except Exception:  # noqa - best effort
                pass
        await asyncio.sleep(0.2)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=5222)
    p.add_argument('--domain', default='localhost')
    p.add_argument('--user1', required=True)
    p.add_argument('--pass1', required=True)
    p.add_argument('--user2', required=True)
    p.add_argument('--pass2', required=True)
    p.add_argument('--timeout', type=float, default=10, help='bound for every single wait, in seconds')
    p.add_argument('--debug', action='store_true', help='slixmpp debug log (XML traffic) on stderr')
    return p.parse_args()


async def amain(args):
    run = Run(args)
    budget = args.timeout * 10 + 20
    try:
        await asyncio.wait_for(run.run(), budget)
    except asyncio.TimeoutError:
        run.results.append(('watchdog', False))
        print('FAIL watchdog: the run exceeded %.0fs' % budget, flush=True)
    finally:
        await run.cleanup()
    total = len(run.results)
    passed = sum(1 for _, ok in run.results if ok)
    print('SUMMARY subscriptions %d/%d steps passed' % (passed, total), flush=True)
    return 0 if total and passed == total else 1


def main():
    args = parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    sys.exit(asyncio.run(amain(args)))


if __name__ == '__main__':
    main()
