#!/usr/bin/python3
"""Replay of the RP2_XMPP student lab session (Profanity <-> Prosody capture,
see /work/shared/seed/lab-report.md) against any XMPP server.

Uses slixmpp as packaged by Debian (python3-slixmpp); run it with
/usr/bin/python3, not a pyenv/virtualenv interpreter.

Every step prints "PASS <step>" or "FAIL <step>: <reason>"; the last line is a
summary.  Exit status is 0 only if every step passed.  Every wait is bounded by
--timeout (per operation), and the whole run is bounded by a global watchdog.
"""

import argparse
import asyncio
import datetime
import logging
import re
import ssl
import sys
import uuid
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp import ClientXMPP
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

NS_CLIENT = 'jabber:client'
NS_STREAM = 'http://etherx.jabber.org/streams'
NS_ROSTER = 'jabber:iq:roster'
NS_PRIVATE = 'jabber:iq:private'
NS_BOOKMARKS = 'storage:bookmarks'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_RECEIPTS = 'urn:xmpp:receipts'
NS_PING = 'urn:xmpp:ping'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_VERSION = 'jabber:iq:version'
NS_DELAY = 'urn:xmpp:delay'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'

RESOURCE = 'profanity'
# Values taken from the capture (packet 128).
CAPS_NODE = 'http://www.profanity.im'
CAPS_VER = 'jra5S1tICxzuMGVnu86Tv5flMBU='

# Error conditions that mean "this server does not implement that protocol".
UNSUPPORTED_CONDITIONS = {'feature-not-implemented', 'service-unavailable'}

log = logging.getLogger('lab_session')


class StepFailed(Exception):
    pass


class Unsupported(StepFailed):
    """The server answered with feature-not-implemented/service-unavailable."""


# --------------------------------------------------------------------------
# helpers

def q(ns, tag):
    return '{%s}%s' % (ns, tag)


def canon(elem):
    """Order-insensitive-for-attributes canonical form of an ElementTree node."""
    return (elem.tag,
            tuple(sorted(elem.attrib.items())),
            (elem.text or '').strip(),
            tuple(canon(c) for c in elem))


def xml_str(elem):
    try:
        return ET.tostring(elem, encoding='unicode')
    except Exception:  # pragma: no cover - diagnostics only
        return repr(elem)


def error_condition(stanza):
    err = stanza.xml.find(q(NS_CLIENT, 'error'))
    if err is None:
        return 'no <error/> child'
    conds = [c.tag.split('}', 1)[-1] for c in err
             if c.tag.startswith('{%s}' % NS_STANZAS) and not c.tag.endswith('}text')]
    return '%s (type=%s)' % (conds[0] if conds else '?', err.get('type'))


def raise_iq_error(what, exc):
    cond = exc.iq['error']['condition']
    text = exc.iq['error']['text']
    detail = '%s returned error %s/%s%s' % (what, exc.iq['error']['type'], cond,
                                           (' "%s"' % text) if text else '')
    if cond in UNSUPPORTED_CONDITIONS:
        raise Unsupported('UNSUPPORTED by server: ' + detail)
    raise StepFailed(detail)


UTC_STAMP_RE = re.compile(
    r'^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]00:00)$')


def parse_utc_stamp(stamp):
    """XEP-0082 DateTime in UTC -> aware datetime, or raise StepFailed."""
    if not stamp or not UTC_STAMP_RE.match(stamp):
        raise StepFailed('delay stamp %r is not an ISO 8601 / XEP-0082 UTC '
                         'DateTime (CCYY-MM-DDThh:mm:ss[.sss](Z|+00:00))' % stamp)
    s = stamp[:-1] + '+00:00' if stamp.endswith('Z') else stamp
    # fromisoformat in 3.11 accepts fractions of any length up to 6 digits;
    # trim longer fractions.
    m = re.match(r'^(.*\.\d{6})\d+(.*)$', s)
    if m:
        s = m.group(1) + m.group(2)
    try:
        return datetime.datetime.fromisoformat(s)
    except ValueError as e:
        raise StepFailed('delay stamp %r does not parse: %s' % (stamp, e))


# --------------------------------------------------------------------------
# client

class LabClient(ClientXMPP):

    def __init__(self, user, domain, password, tls_mode, timeout):
        jid = '%s@%s/%s' % (user, domain, RESOURCE)
        # sasl_mech restricts feature_mechanisms.use_mechs to {SCRAM-SHA-1}.
        super().__init__(jid, password, sasl_mech='SCRAM-SHA-1')
        self.label = user
        self.tls_mode = tls_mode
        self.op_timeout = timeout
        self.expected_jid = jid

        # Accept the self-signed test certificate.
        self.ssl_context.check_hostname = False
        self.ssl_context.verify_mode = ssl.CERT_NONE

        # SCRAM without TLS is allowed by default ("unencrypted_scram": True);
        # PLAIN is never chosen because of sasl_mech above.
        mechs = self['feature_mechanisms']
        mechs.unencrypted_scram = True

        # slixmpp hands the TLS channel binding data to SCRAM whenever the
        # socket is TLS, which makes it send the GS2 flag "y" with plain
        # SCRAM-SHA-1.  A server advertising SCRAM-SHA-1-PLUS must then reject
        # the login as a downgrade (RFC 5802 §6).  Profanity sent "n,," (see
        # the capture, "biws"), so never offer channel binding.
        orig_cb = mechs.sasl_callback

        def no_cb(required, optional):
            creds = orig_cb(required, optional)
            creds.pop('channel_binding', None)
            return creds
        mechs.sasl_callback = no_cb

        self.features_seen = []      # list of lists of feature tags
        self.mechanisms_seen = []
        self.session_response = None  # 'result'/'error' for the session iq
        self.fatal = None             # first fatal negotiation problem
        self.tls_done = False
        self.session_started = asyncio.Event()
        self.gone = asyncio.Event()
        self.inbox = []
        self._arrival = asyncio.Event()

        self.register_handler(Callback(
            'lab features', MatchXPath(q(NS_STREAM, 'features')),
            self._on_features, instream=True))
        for kind in ('message', 'presence'):
            self.register_handler(Callback(
                'lab %s' % kind, MatchXPath(q(NS_CLIENT, kind)),
                self._on_stanza, instream=True))

        self.add_event_handler('session_start', self._on_session_start)
        self.add_event_handler('tls_success', self._on_tls)
        self.add_event_handler('failed_auth', self._on_failed_auth)
        self.add_event_handler('failed_all_auth', self._on_failed_all_auth)
        self.add_event_handler('connection_failed', self._on_connection_failed)
        self.add_event_handler('ssl_invalid_chain', self._on_ssl_invalid)
        self.add_event_handler('stream_error', self._on_stream_error)
        self.add_event_handler('disconnected', self._on_disconnected)

        # Record the answer to the RFC 3921 session iq (slixmpp calls this
        # callback for results and errors alike).
        sess = self['feature_session']
        orig_sess_cb = sess._on_start_session_response

        def sess_cb(resp):
            self.session_response = resp['type']
            if resp['type'] == 'error':
                self._set_fatal('session iq returned error %s'
                                % error_condition(resp))
            return orig_sess_cb(resp)
        sess._on_start_session_response = sess_cb

    # -- event handlers ----------------------------------------------------

    def _set_fatal(self, why):
        if self.fatal is None:
            self.fatal = why
        self._arrival.set()

    def _on_features(self, features):
        tags = [c.tag for c in features.xml]
        self.features_seen.append(tags)
        mech_el = features.xml.find(
            '{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms')
        if mech_el is not None:
            self.mechanisms_seen = [m.text for m in mech_el]
            if 'SCRAM-SHA-1' not in self.mechanisms_seen:
                self._set_fatal('server does not offer SCRAM-SHA-1 (offered: %s)'
                                % ', '.join(self.mechanisms_seen))
        has_starttls = any(t == '{urn:ietf:params:xml:ns:xmpp-tls}starttls'
                           for t in tags)
        if (self.tls_mode == 'starttls' and not self.tls_done
                and not has_starttls):
            # slixmpp 1.8.3 ignores force_starttls, so enforce it here, before
            # any credentials go out in clear text.
            self._set_fatal('--tls starttls but the server did not offer '
                            'STARTTLS (features: %s)' % tags)
            self.abort()

    def _on_stanza(self, stanza):
        self.inbox.append(stanza)
        self._arrival.set()

    def _on_session_start(self, _):
        self.session_started.set()
        self._arrival.set()

    def _on_tls(self, _):
        self.tls_done = True

    def _on_failed_auth(self, stanza):
        self._set_fatal('SASL failure: %s' % stanza['condition'])

    def _on_failed_all_auth(self, _):
        self._set_fatal('no usable SASL mechanism / authentication failed '
                        '(offered: %s)' % ', '.join(self.mechanisms_seen))

    def _on_connection_failed(self, err):
        self._set_fatal('TCP connection failed: %s' % err)
        self.cancel_connection_attempt()

    def _on_ssl_invalid(self, err):
        self._set_fatal('TLS handshake failed: %s' % err)

    def _on_stream_error(self, err):
        self._set_fatal('stream error: %s %s' % (err['condition'], err['text']))

    def _on_disconnected(self, reason):
        self.gone.set()
        self._arrival.set()

    # -- operations --------------------------------------------------------

    async def start(self, host, port):
        self.connect((host, port), use_ssl=False,
                     force_starttls=(self.tls_mode == 'starttls'),
                     disable_starttls=(self.tls_mode == 'plain'))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.op_timeout
        while not self.session_started.is_set():
            if self.fatal:
                break
            if self.gone.is_set():
                self._set_fatal('disconnected during negotiation (%s)'
                                % (self.disconnect_reason or 'no reason'))
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                self._set_fatal('timeout (%ss) waiting for session '
                                'establishment' % self.op_timeout)
                break
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), remaining)
            except asyncio.TimeoutError:
                pass
        if self.fatal:
            self.cancel_connection_attempt()
            self.abort()
            raise StepFailed('%s: %s' % (self.label, self.fatal))

    async def expect(self, pred, timeout):
        """Return the first received message/presence matching pred, or None."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        idx = 0
        while True:
            while idx < len(self.inbox):
                st = self.inbox[idx]
                idx += 1
                if pred(st):
                    return st
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def iq(self, itype, payload, to=None, iq_id=None):
        iq = self.Iq()
        iq['type'] = itype
        if to:
            iq['to'] = to
        if iq_id:
            iq['id'] = iq_id
        if payload is not None:
            iq.append(payload)
        try:
            return await iq.send(timeout=self.op_timeout)
        except IqTimeout:
            raise StepFailed('no answer to iq %s %s within %ss'
                             % (itype, payload.tag if payload is not None else '',
                                self.op_timeout))

    async def close(self):
        """Send </stream:stream>; True if the server closed its stream too."""
        if not self.is_connected():
            return False, 'already disconnected (%s)' % self.disconnect_reason
        self.disconnect_reason = None
        fut = self.disconnect(wait=self.op_timeout)
        try:
            await asyncio.wait_for(fut, self.op_timeout + 2)
        except asyncio.TimeoutError:
            self.abort()
            return False, 'disconnect did not complete in time'
        if self.disconnect_reason == 'End of stream':
            return True, 'server answered </stream:stream>'
        return False, ('server did not answer with </stream:stream> '
                       '(reason=%r)' % self.disconnect_reason)


# --------------------------------------------------------------------------
# the session

class Report:
    def __init__(self):
        self.results = []

    def passed(self, step, note=''):
        self.results.append((step, True))
        print('PASS %s%s' % (step, (' (%s)' % note) if note else ''), flush=True)

    def failed(self, step, reason):
        self.results.append((step, False))
        print('FAIL %s: %s' % (step, reason), flush=True)


class Session:
    def __init__(self, args):
        self.a = args
        self.r = Report()
        self.token = uuid.uuid4().hex[:8]
        self.clients = []

    def jid(self, user, full=True):
        return '%s@%s%s' % (user, self.a.domain, '/' + RESOURCE if full else '')

    def new_client(self, user, password):
        c = LabClient(user, self.a.domain, password, self.a.tls, self.a.timeout)
        self.clients.append(c)
        return c

    async def step(self, name, coro_fn, needs=()):
        """Run one step; needs = names of earlier steps that must have passed."""
        ok = dict(self.r.results)
        missing = [n for n in needs if not ok.get(n)]
        if missing:
            self.r.failed(name, 'not run, depends on failed step(s): %s'
                          % ', '.join(missing))
            return False
        try:
            note = await coro_fn()
        except StepFailed as e:
            self.r.failed(name, str(e))
            return False
        except Exception as e:  # noqa - report anything unexpected
            self.r.failed(name, 'unexpected %s: %s' % (type(e).__name__, e))
            return False
        self.r.passed(name, note or '')
        return True

    # -- step 1 ------------------------------------------------------------

    async def check_login(self, c, user):
        notes = []
        mech = c['feature_mechanisms'].mech
        if mech is None or mech.name != 'SCRAM-SHA-1':
            raise StepFailed('%s: authenticated with %s, not SCRAM-SHA-1'
                             % (user, mech.name if mech else None))
        if self.a.tls == 'starttls':
            if not c.tls_done or 'starttls' not in c.features:
                raise StepFailed('%s: session established without STARTTLS' % user)
            notes.append('TLS')
        else:
            if c.tls_done or isinstance(c.socket, (ssl.SSLSocket, ssl.SSLObject)):
                raise StepFailed('%s: TLS negotiated in plain mode' % user)
            notes.append('no TLS')
        if c.boundjid.full != self.jid(user):
            raise StepFailed('%s: bound JID is %r, expected %r'
                             % (user, c.boundjid.full, self.jid(user)))
        last_features = c.features_seen[-1] if c.features_seen else []
        sess_tag = '{urn:ietf:params:xml:ns:xmpp-session}session'
        if sess_tag in last_features:
            if c.session_response == 'result':
                notes.append('session iq ok')
            elif c.session_response is None:
                # Offered as <optional/>: slixmpp skips it, but Profanity
                # (packet 122) sends it anyway, and a server offering it must
                # accept it (RFC 6121 Appendix E / draft-cridland-xmpp-session).
                try:
                    await c.iq('set', ET.Element(
                        '{urn:ietf:params:xml:ns:xmpp-session}session'),
                        iq_id='_xmpp_session1')
                except IqError as e:
                    raise StepFailed('%s: optional session iq answered error %s'
                                     % (user, error_condition(e.iq)))
                notes.append('optional session iq sent anyway, result ok')
            else:
                raise StepFailed('%s: session iq answered %s'
                                 % (user, c.session_response))
        else:
            notes.append('session not offered')
        return '%s: SCRAM-SHA-1, %s, bound %s, %s' % (
            user, notes[0], c.boundjid.full, ', '.join(notes[1:]))

    async def s1_login(self):
        self.alice = self.new_client(self.a.user1, self.a.pass1)
        self.bob = self.new_client(self.a.user2, self.a.pass2)
        res = await asyncio.gather(self.alice.start(self.a.host, self.a.port),
                                   self.bob.start(self.a.host, self.a.port),
                                   return_exceptions=True)
        errs = [str(e) for e in res if isinstance(e, BaseException)]
        if errs:
            raise StepFailed('; '.join(errs))
        return '; '.join([await self.check_login(self.alice, self.a.user1),
                          await self.check_login(self.bob, self.a.user2)])

    # -- step 2 ------------------------------------------------------------

    async def s2_roster(self):
        c = self.alice
        notes = []
        # Exactly what Profanity sent (packet 124): no ver attribute.
        try:
            res = await c.iq('get', ET.Element(q(NS_ROSTER, 'query')),
                             iq_id='roster')
        except IqError as e:
            raise_iq_error('roster get', e)
        query = res.xml.find(q(NS_ROSTER, 'query'))
        if query is None:
            raise StepFailed('roster result has no <query xmlns="%s"/>: %s'
                             % (NS_ROSTER, xml_str(res.xml)))
        notes.append('%d item(s)' % len(query.findall(q(NS_ROSTER, 'item'))))
        if query.get('ver') is not None:
            notes.append('ver=%r without asking' % query.get('ver'))
        advertised = 'rosterver' in c.features
        if advertised:
            # RFC 6121 §2.6: client without a cached roster sends ver="".
            qv = ET.Element(q(NS_ROSTER, 'query'), {'ver': ''})
            try:
                res2 = await c.iq('get', qv, iq_id='roster_ver')
            except IqError as e:
                raise_iq_error('roster get with ver=""', e)
            query2 = res2.xml.find(q(NS_ROSTER, 'query'))
            if query2 is None or query2.get('ver') is None:
                raise StepFailed('server advertised roster versioning but the '
                                 'result to a ver="" get has no ver attribute: %s'
                                 % xml_str(res2.xml))
            notes.append('rosterver advertised, ver=%r' % query2.get('ver'))
        else:
            notes.append('rosterver not advertised')
        return ', '.join(notes)

    # -- step 3 ------------------------------------------------------------

    async def private_get(self, c, elem, iq_id=None):
        query = ET.Element(q(NS_PRIVATE, 'query'))
        query.append(elem)
        try:
            res = await c.iq('get', query, iq_id=iq_id)
        except IqError as e:
            raise_iq_error('private storage get <%s/>' % elem.tag, e)
        rq = res.xml.find(q(NS_PRIVATE, 'query'))
        if rq is None:
            raise StepFailed('private get result has no <query xmlns="%s"/>: %s'
                             % (NS_PRIVATE, xml_str(res.xml)))
        return rq

    def bookmarks(self):
        st = ET.Element(q(NS_BOOKMARKS, 'storage'))
        conf = ET.SubElement(st, q(NS_BOOKMARKS, 'conference'), {
            'jid': 'rp2-lab-%s@conference.%s' % (self.token, self.a.domain),
            'name': 'RP2 lab %s' % self.token,
            'autojoin': 'true'})
        ET.SubElement(conf, q(NS_BOOKMARKS, 'nick')).text = self.a.user1
        return st

    async def s3_private(self):
        c = self.alice
        notes = []
        # Packet 126: bookmark_init_request.
        rq = await self.private_get(c, ET.Element(q(NS_BOOKMARKS, 'storage')),
                                    iq_id='bookmark_init_request')
        if rq.find(q(NS_BOOKMARKS, 'storage')) is None:
            raise StepFailed('initial bookmarks get: no <storage xmlns="%s"/> in '
                             'result: %s' % (NS_BOOKMARKS, xml_str(rq)))
        # Store, then read back.
        want = self.bookmarks()
        query = ET.Element(q(NS_PRIVATE, 'query'))
        query.append(want)
        try:
            await c.iq('set', query)
        except IqError as e:
            raise_iq_error('private storage set', e)
        rq = await self.private_get(c, ET.Element(q(NS_BOOKMARKS, 'storage')))
        got = rq.find(q(NS_BOOKMARKS, 'storage'))
        if got is None:
            raise StepFailed('bookmarks get after set: no storage element: %s'
                             % xml_str(rq))
        if canon(got) != canon(want):
            raise StepFailed('bookmarks read back differ:\n  stored %s\n  got    %s'
                             % (xml_str(want), xml_str(got)))
        notes.append('bookmarks round-trip identical')
        # Unset namespace -> empty element in that namespace (XEP-0049 §2.3).
        ns = 'urn:starling:interop:unset:%s' % uuid.uuid4().hex
        rq = await self.private_get(c, ET.Element(q(ns, 'data')))
        kids = list(rq)
        if len(kids) != 1 or not kids[0].tag.startswith('{%s}' % ns):
            raise StepFailed('get of unset namespace should return an empty '
                             'element in %s, got %s' % (ns, xml_str(rq)))
        if len(kids[0]) or (kids[0].text or '').strip():
            raise StepFailed('get of unset namespace returned a non-empty '
                             'element: %s' % xml_str(rq))
        notes.append('unset namespace -> empty <%s/>'
                     % kids[0].tag.split('}', 1)[1])
        return ', '.join(notes)

    # -- step 4 ------------------------------------------------------------

    def caps(self):
        return ET.Element(q(NS_CAPS, 'c'), {
            'hash': 'sha-1', 'node': CAPS_NODE, 'ver': CAPS_VER})

    async def initial_presence(self, c, user, pid):
        p = c.Presence()
        p['id'] = pid
        p.append(self.caps())
        sent_caps = canon(self.caps())
        p.send()

        def mine(st):
            return (st.name == 'presence' and st['from'].full == self.jid(user)
                    and st.xml.get('type') in (None, 'available'))
        st = await c.expect(mine, self.a.timeout)
        if st is None:
            raise StepFailed('%s: own initial presence not received back from %s '
                             'within %ss (RFC 6121 §4.2.2)'
                             % (user, self.jid(user), self.a.timeout))
        c_el = st.xml.find(q(NS_CAPS, 'c'))
        if c_el is None:
            raise StepFailed('%s: own presence came back without caps <c/>: %s'
                             % (user, xml_str(st.xml)))
        if canon(c_el) != sent_caps:
            raise StepFailed('%s: caps element altered: sent %s got %s'
                             % (user, xml_str(self.caps()), xml_str(c_el)))
        note = '%s: own presence echoed with caps intact' % user
        if st['id'] != pid:
            note += ', id %r (sent %r)' % (st['id'], pid)
        return note

    async def s4_presence(self):
        n1 = await self.initial_presence(self.alice, self.a.user1, 'prof_presence_1')
        # Packets 200/201: the second client also goes available (required
        # for bare-JID delivery in step 5).
        n2 = await self.initial_presence(self.bob, self.a.user2, 'prof_presence_1')
        return '%s; %s' % (n1, n2)

    # -- step 5/6 ----------------------------------------------------------

    def send_chat(self, c, to, mid, body, extra=None):
        m = c.Message()
        m['to'] = to
        m['type'] = 'chat'
        m['id'] = mid
        m['body'] = body
        if extra is not None:
            m.append(extra)
        m.send()

    async def expect_chat(self, c, mid, from_full, body, timeout):
        st = await c.expect(lambda s: s.name == 'message' and s['id'] == mid,
                            timeout)
        if st is None:
            raise StepFailed('message id=%s not received within %ss'
                             % (mid, timeout))
        if st['type'] == 'error':
            raise StepFailed('got an error instead of the message: %s'
                             % error_condition(st))
        if st['from'].full != from_full:
            raise StepFailed('from=%r, expected sender full JID %r'
                             % (st['from'].full, from_full))
        if st['body'] != body:
            raise StepFailed('body %r, expected %r' % (st['body'], body))
        return st

    async def s5_msg_bare(self):
        mid = 'prof_msg_2-%s' % self.token
        body = 'hola que tal estas'
        self.send_chat(self.alice, self.jid(self.a.user2, full=False), mid, body)
        st = await self.expect_chat(self.bob, mid, self.jid(self.a.user1), body,
                                    self.a.timeout)
        return 'delivered to %s, to=%s' % (self.jid(self.a.user2), st['to'])

    async def s6_msg_receipt(self):
        mid = 'prof_msg_6-%s' % self.token
        body = 'bien y tu?'
        req = ET.Element(q(NS_RECEIPTS, 'request'))
        self.send_chat(self.bob, self.jid(self.a.user1), mid, body, req)
        st = await self.expect_chat(self.alice, mid, self.jid(self.a.user2), body,
                                    self.a.timeout)
        got = st.xml.findall(q(NS_RECEIPTS, 'request'))
        if len(got) != 1:
            raise StepFailed('expected exactly one <request xmlns="%s"/>, got %d: %s'
                             % (NS_RECEIPTS, len(got), xml_str(st.xml)))
        if canon(got[0]) != canon(req):
            raise StepFailed('receipt request altered: %s' % xml_str(got[0]))
        return '<request xmlns="%s"/> passed through' % NS_RECEIPTS

    # -- step 7/8 ----------------------------------------------------------

    async def s7_ping(self):
        try:
            res = await self.alice.iq('get', ET.Element(q(NS_PING, 'ping')),
                                      to=self.a.domain, iq_id='prof_ping_3')
        except IqError as e:
            raise_iq_error('ping (XEP-0199)', e)
        if res['type'] != 'result':
            raise StepFailed('ping answered with type %s' % res['type'])
        return 'iq result from %s' % (res['from'] or '(no from)')

    async def s7_disco(self):
        try:
            res = await self.alice.iq('get', ET.Element(q(NS_DISCO_INFO, 'query')),
                                      to=self.a.domain)
        except IqError as e:
            raise_iq_error('disco#info (XEP-0030)', e)
        qe = res.xml.find(q(NS_DISCO_INFO, 'query'))
        if qe is None:
            raise StepFailed('disco#info result without query: %s' % xml_str(res.xml))
        idents = [(i.get('category'), i.get('type'))
                  for i in qe.findall(q(NS_DISCO_INFO, 'identity'))]
        feats = {f.get('var') for f in qe.findall(q(NS_DISCO_INFO, 'feature'))}
        if not any(cat == 'server' for cat, _ in idents):
            raise StepFailed('no identity with category "server" (got %s)' % idents)
        missing = [f for f in (NS_PING, NS_DISCO_INFO) if f not in feats]
        if NS_PING in missing:
            raise StepFailed('disco#info features lack %s (got %s)'
                             % (NS_PING, sorted(feats)))
        note = 'identities %s, %d features' % (idents, len(feats))
        if missing:
            note += ', NOTE: %s not listed' % ', '.join(missing)
        return note

    async def s8_version(self):
        try:
            res = await self.alice.iq('get', ET.Element(q(NS_VERSION, 'query')),
                                      to=self.a.domain)
        except IqError as e:
            raise_iq_error('software version (XEP-0092)', e)
        qe = res.xml.find(q(NS_VERSION, 'query'))
        name = qe.findtext(q(NS_VERSION, 'name')) if qe is not None else None
        if not name or not name.strip():
            raise StepFailed('version result has no <name/>: %s' % xml_str(res.xml))
        ver = qe.findtext(q(NS_VERSION, 'version'))
        return 'name=%r version=%r' % (name, ver)

    # -- step 9/10 ---------------------------------------------------------

    async def s9_offline_send(self):
        ok, why = await self.bob.close()
        if not self.bob.gone.is_set():
            raise StepFailed('%s did not get disconnected: %s' % (self.a.user2, why))
        # Give the server a moment to process the unavailable presence.
        await asyncio.sleep(0.5)
        self.offline_mid = 'prof_msg_13-%s' % self.token
        self.offline_body = 'estas? (%s)' % self.token
        self.offline_sent_at = datetime.datetime.now(datetime.timezone.utc)
        self.send_chat(self.alice, self.jid(self.a.user2), self.offline_mid,
                       self.offline_body)
        wait = min(2.0, self.a.timeout)
        st = await self.alice.expect(
            lambda s: s.name == 'message' and s['id'] == self.offline_mid, wait)
        if st is not None:
            if st['type'] == 'error':
                raise StepFailed('message to offline full JID %s bounced: %s '
                                 '(must be stored offline, RFC 6121 §8.5.3.2.1)'
                                 % (self.jid(self.a.user2), error_condition(st)))
            raise StepFailed('unexpected message echoed back: %s' % xml_str(st.xml))
        return ('%s closed (%s); no error within %.0fs for message to %s'
                % (self.a.user2, why, wait, self.jid(self.a.user2)))

    async def s10_offline_receive(self):
        self.bob2 = self.new_client(self.a.user2, self.a.pass2)
        await self.bob2.start(self.a.host, self.a.port)
        if self.bob2.boundjid.full != self.jid(self.a.user2):
            raise StepFailed('re-bound JID %r' % self.bob2.boundjid.full)
        p = self.bob2.Presence()
        p['id'] = 'prof_presence_2'
        p.append(self.caps())
        p.send()
        st = await self.bob2.expect(
            lambda s: s.name == 'message' and s['id'] == self.offline_mid,
            self.a.timeout)
        if st is None:
            raise StepFailed('offline message id=%s not delivered within %ss '
                             'after reconnect + initial presence'
                             % (self.offline_mid, self.a.timeout))
        if st['type'] == 'error':
            raise StepFailed('got error: %s' % error_condition(st))
        if st['from'].full != self.jid(self.a.user1):
            raise StepFailed('from=%r, expected %r'
                             % (st['from'].full, self.jid(self.a.user1)))
        if st['body'] != self.offline_body:
            raise StepFailed('body %r, expected %r' % (st['body'], self.offline_body))
        delays = st.xml.findall(q(NS_DELAY, 'delay'))
        if not delays:
            raise StepFailed('no <delay xmlns="%s"/> (XEP-0203) on offline '
                             'message: %s' % (NS_DELAY, xml_str(st.xml)))
        stamp = delays[0].get('stamp')
        dt = parse_utc_stamp(stamp)
        skew = abs((dt - self.offline_sent_at).total_seconds())
        if skew > 300:
            raise StepFailed('delay stamp %s is %.0fs away from the send time %s'
                             % (stamp, skew, self.offline_sent_at.isoformat()))
        return 'delivered with delay stamp=%s from=%r' % (stamp, delays[0].get('from'))

    # -- step 11 -----------------------------------------------------------

    async def s11_close(self):
        targets = [(self.a.user1, self.alice)]
        bob2 = getattr(self, 'bob2', None)
        if bob2 is not None and bob2.is_connected():
            targets.append((self.a.user2, bob2))
        res = await asyncio.gather(*(c.close() for _, c in targets))
        bad = ['%s: %s' % (u, why) for (u, _), (ok, why) in zip(targets, res) if not ok]
        if bad:
            raise StepFailed('; '.join(bad))
        return ', '.join('%s closed cleanly' % u for u, _ in targets)

    # -- driver ------------------------------------------------------------

    async def run(self):
        S1 = '1 connect+SCRAM-SHA-1+bind'
        await self.step(S1, self.s1_login)
        await self.step('2 roster get', self.s2_roster, needs=[S1])
        await self.step('3 private XML storage (XEP-0049)', self.s3_private, needs=[S1])
        S4 = '4 initial presence with caps'
        await self.step(S4, self.s4_presence, needs=[S1])
        await self.step('5 chat to bare JID', self.s5_msg_bare, needs=[S4])
        await self.step('6 chat to full JID with receipt request',
                        self.s6_msg_receipt, needs=[S4])
        await self.step('7a ping server (XEP-0199)', self.s7_ping, needs=[S1])
        await self.step('7b disco#info on server', self.s7_disco, needs=[S1])
        await self.step('8 software version (XEP-0092)', self.s8_version, needs=[S1])
        S9 = '9 message to offline full JID not bounced'
        await self.step(S9, self.s9_offline_send, needs=[S4])
        await self.step('10 offline message delivered with XEP-0203 delay',
                        self.s10_offline_receive, needs=[S9])
        await self.step('11 clean stream close', self.s11_close, needs=[S1])

    async def cleanup(self):
        for c in self.clients:
            if c.is_connected():
                c.abort()
            c.cancel_connection_attempt()
        await asyncio.sleep(0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=5222)
    p.add_argument('--domain', default='localhost')
    p.add_argument('--user1', default='alice')
    p.add_argument('--pass1', required=True)
    p.add_argument('--user2', default='bob')
    p.add_argument('--pass2', required=True)
    p.add_argument('--tls', choices=['starttls', 'plain'], default='starttls',
                   help='starttls: require STARTTLS (certificate not verified); '
                        'plain: no TLS at all')
    p.add_argument('--timeout', type=float, default=30,
                   help='bound for every single wait, in seconds (default 30)')
    p.add_argument('--debug', action='store_true',
                   help='slixmpp debug log (XML traffic) on stderr')
    return p.parse_args(argv)


async def amain(args):
    sess = Session(args)
    # Global watchdog: no run may take longer than this.
    budget = args.timeout * 8 + 30
    try:
        await asyncio.wait_for(sess.run(), budget)
    except asyncio.TimeoutError:
        sess.r.failed('watchdog', 'whole run exceeded %.0fs' % budget)
    finally:
        await sess.cleanup()
    total = len(sess.r.results)
    npass = sum(1 for _, ok in sess.r.results if ok)
    failed = [n for n, ok in sess.r.results if not ok]
    print('SUMMARY %d/%d steps passed against %s:%d (%s, tls=%s)%s'
          % (npass, total, args.host, args.port, args.domain, args.tls,
             ('; failed: ' + ', '.join(n.split()[0] for n in failed)) if failed else ''), flush=True)
    return 0 if total and not failed else 1


def main():
    args = parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.CRITICAL,
        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    log.debug('slixmpp %s', slixmpp.__version__)
    try:
        rc = asyncio.run(amain(args))
    except KeyboardInterrupt:
        rc = 130
    sys.exit(rc)


if __name__ == '__main__':
    main()
