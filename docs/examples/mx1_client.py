#!/usr/bin/env python3
"""A small MX/1 client for muxd, written from docs/protocol.md alone.

Library use:

    from mx1_client import Client
    with Client('127.0.0.1', 9000) as c:
        c.ping(b'hi')
        c.join('ada')
        c.say('hello')
        size, digest = c.put('a.bin', b'...')
        size, digest, data = c.get('a.bin')

Over UDP (protocol.md §11; chat and ping only, one frame per datagram):

    from mx1_client import UdpClient
    with UdpClient('127.0.0.1', 9000) as u:
        u.join('ada')           # does the cookie round trip (ERROR 15) itself
        u.say('hello')

Command line:

    python3 mx1_client.py --host 127.0.0.1 --port 9000 --selfcheck
    python3 mx1_client.py --host 127.0.0.1 --port 9443 --tls --ca ca.pem --selfcheck
    python3 mx1_client.py --host 127.0.0.1 --port 9000 --udp --selfcheck [--tcp-port 9000]

The self-check talks to a live server, prints one "ok - ..." line per check and exits 0 only
if every check passed. It needs a server whose chat room does not already hold "ada" or "张三"
(over UDP: "udp-ada", "udp-张三", "tcp-bob"), and no admin token equal to "definitely-not-the-token".

Over TLS (muxd's --binary-tls-port): Client(host, port, tls=True, ca='ca.pem'); the certificate
is verified (against the system's CAs, or only those in `ca`), and ALPN offers "mx1".

Standard library only: socket, ssl, struct, hashlib, json, sys, time.
"""
import hashlib
import json
import socket
import ssl
import struct
import sys
import time

# ---------------------------------------------------------------------------------------------
# Wire constants (protocol.md §1, §3, §4)

HEADER = struct.Struct('!HBBII')  # magic, version, type, id, length
MAGIC = 0x4D58                    # "MX"
VERSION = 1

PING, STATS = 0x01, 0x02
JOIN, SAY, LEAVE, NAMES, ANNOUNCE = 0x10, 0x11, 0x12, 0x13, 0x14
PUT, GET, LIST, DATA = 0x20, 0x21, 0x22, 0x30
USER_JOINED, MESSAGE, USER_LEFT, ANNOUNCEMENT = 0xC0, 0xC1, 0xC2, 0xC3
ERROR = 0xFF
REPLY_BIT = 0x80

PUSH_TYPES = (USER_JOINED, MESSAGE, USER_LEFT, ANNOUNCEMENT)

TYPE_NAMES = {
    PING: 'PING', STATS: 'STATS', JOIN: 'JOIN', SAY: 'SAY', LEAVE: 'LEAVE', NAMES: 'NAMES',
    ANNOUNCE: 'ANNOUNCE', PUT: 'PUT', GET: 'GET', LIST: 'LIST', DATA: 'DATA',
    USER_JOINED: 'USER_JOINED', MESSAGE: 'MESSAGE', USER_LEFT: 'USER_LEFT',
    ANNOUNCEMENT: 'ANNOUNCEMENT', ERROR: 'ERROR',
}
for _t in (PING, STATS, JOIN, SAY, LEAVE, NAMES, ANNOUNCE, PUT, GET, LIST):
    TYPE_NAMES[_t | REPLY_BIT] = TYPE_NAMES[_t] + '_OK'

# Error codes (§4)
E_BAD_MAGIC, E_TOO_LARGE, E_UNKNOWN_TYPE, E_MALFORMED = 1, 2, 3, 4
E_BAD_NAME, E_NAME_TAKEN, E_NOT_JOINED, E_ALREADY_JOINED, E_FORBIDDEN = 10, 11, 12, 13, 14
E_NOT_FOUND, E_BAD_FILE_NAME, E_FILE_TOO_LARGE, E_CHECKSUM, E_ID_BUSY, E_BAD_OFFSET = 20, 21, 22, 23, 24, 25
E_COOKIE_REQUIRED = 15
E_INTERNAL, E_BUSY = 50, 51

MAX_DATAGRAM = 65507                 # §11.1: largest datagram sent or accepted
COOKIE_LENGTH = 16                   # §11.2: the last 16 bytes of an ERROR 15 payload

DEFAULT_CHUNK = 64 * 1024           # DATA frame size we send; any size up to --max-frame is allowed
DEFAULT_MAX_INCOMING = 64 * 1024 * 1024  # refuse to allocate more than this for one incoming frame


def type_name(t):
    return TYPE_NAMES.get(t, '0x%02x' % t)


class MX1Error(Exception):
    """An ERROR frame (type 0xFF) from the server."""

    def __init__(self, code, message, frame_id):
        super().__init__('error %d: %s (id %d)' % (code, message, frame_id))
        self.code, self.message, self.id = code, message, frame_id


class ProtocolError(Exception):
    """The server sent something this client does not expect."""


class ConnectionClosed(Exception):
    """The server closed the connection."""


# ---------------------------------------------------------------------------------------------
# Payload encoding / decoding (§1 "Field encodings")

def str16(text):
    raw = text.encode('utf-8')
    if len(raw) > 0xFFFF:
        raise ValueError('str16 too long')
    return struct.pack('!H', len(raw)) + raw


class Reader:
    """Reads fields from one payload, strictly (short or trailing bytes are errors)."""

    def __init__(self, payload):
        self.buf, self.at = payload, 0

    def take(self, n):
        if self.at + n > len(self.buf):
            raise ProtocolError('payload too short')
        chunk = self.buf[self.at:self.at + n]
        self.at += n
        return chunk

    def u16(self):
        return struct.unpack('!H', self.take(2))[0]

    def u32(self):
        return struct.unpack('!I', self.take(4))[0]

    def u64(self):
        return struct.unpack('!Q', self.take(8))[0]

    def sha256(self):
        return self.take(32)

    def str16(self):
        return self.take(self.u16()).decode('utf-8')

    def rest(self):
        return self.take(len(self.buf) - self.at).decode('utf-8')

    def end(self):
        if self.at != len(self.buf):
            raise ProtocolError('%d unexpected trailing bytes' % (len(self.buf) - self.at))


def decode_names(payload):
    """JOIN_OK / NAMES_OK: u16 count + str16 x count."""
    r = Reader(payload)
    names = [r.str16() for _ in range(r.u16())]
    r.end()
    return names


def decode_list(payload):
    """LIST_OK: u32 count + (u64 size + str16 name) x count -> [(name, size)]."""
    r = Reader(payload)
    files = []
    for _ in range(r.u32()):
        size = r.u64()
        files.append((r.str16(), size))
    r.end()
    return files


def decode_size_digest(payload):
    """PUT_OK / GET_OK: u64 size + sha256."""
    r = Reader(payload)
    size, digest = r.u64(), r.sha256()
    r.end()
    return size, digest


def decode_push(type_, payload):
    """A push as a small dict: {'type': 'MESSAGE', 'from': ..., 'text': ...} etc."""
    r = Reader(payload)
    if type_ == MESSAGE:
        sender = r.str16()
        return {'type': 'MESSAGE', 'from': sender, 'text': r.rest()}
    if type_ in (USER_JOINED, USER_LEFT):
        return {'type': type_name(type_), 'name': r.rest()}
    if type_ == ANNOUNCEMENT:
        return {'type': 'ANNOUNCEMENT', 'text': r.rest()}
    raise ProtocolError('not a push type: %s' % type_name(type_))


# ---------------------------------------------------------------------------------------------
# The connection

class Client:
    """One MX/1 connection. Replies are matched by id; pushes (id 0) are queued in .pushes."""

    def __init__(self, host, port, timeout=10.0, max_incoming=DEFAULT_MAX_INCOMING, tls=False, ca=None, servername=None):
        sock = socket.create_connection((host, port), timeout=timeout)
        if tls:
            # Verified by default: hostname and chain. With a cafile only that CA is trusted.
            ctx = ssl.create_default_context(cafile=ca)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_alpn_protocols(['mx1'])
            try:
                sock = ctx.wrap_socket(sock, server_hostname=servername or host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        self.max_incoming = max_incoming
        self._next_id = 1
        self._frames = {}   # id -> list of (type, payload) received but not yet consumed
        self.pushes = []    # list of (type, payload), oldest first

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- raw frames ------------------------------------------------------------------------

    def new_id(self):
        """A fresh non-zero u32 request id."""
        id_ = self._next_id
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        return id_

    def send_frame(self, type_, id_, payload=b'', magic=MAGIC, version=VERSION):
        self.sock.sendall(HEADER.pack(magic, version, type_, id_, len(payload)) + payload)

    def _recv_exact(self, n):
        parts, got = [], 0
        while got < n:
            try:
                chunk = self.sock.recv(min(n - got, 1 << 20))
            except ConnectionResetError:
                chunk = b''
            if not chunk:
                raise ConnectionClosed('server closed the connection')
            parts.append(chunk)
            got += len(chunk)
        return b''.join(parts)

    def read_frame(self):
        """Reads exactly one frame: (type, id, payload)."""
        magic, version, type_, id_, length = HEADER.unpack(self._recv_exact(HEADER.size))
        if magic != MAGIC or version != VERSION:
            raise ProtocolError('bad header from server: magic 0x%04x version %d' % (magic, version))
        if length > self.max_incoming:
            raise ProtocolError('server announced a %d-byte frame' % length)
        return type_, id_, self._recv_exact(length)

    def _pump(self):
        """Reads one frame and files it under its id (pushes go to .pushes)."""
        type_, id_, payload = self.read_frame()
        if id_ == 0 and type_ in PUSH_TYPES:
            self.pushes.append((type_, payload))
        elif id_ == 0 and type_ == ERROR:
            raise self._error(payload, 0)  # connection-level error (e.g. bad magic, too many connections)
        else:
            self._frames.setdefault(id_, []).append((type_, payload))

    @staticmethod
    def _error(payload, id_):
        r = Reader(payload)
        code = r.u16()
        return MX1Error(code, r.rest(), id_)

    def next_frame(self, id_):
        """The next frame carrying this id, reading (and queueing others) as needed."""
        while not self._frames.get(id_):
            self._pump()
        frames = self._frames[id_]
        frame = frames.pop(0)
        if not frames:
            del self._frames[id_]
        return frame

    def reply(self, id_, expected_type):
        """Waits for the reply to request id_; raises MX1Error on ERROR."""
        type_, payload = self.next_frame(id_)
        if type_ == ERROR:
            raise self._error(payload, id_)
        if type_ != expected_type:
            raise ProtocolError('id %d: expected %s, got %s' % (id_, type_name(expected_type), type_name(type_)))
        return payload

    def request(self, type_, payload=b''):
        """Sends one request and returns the reply payload."""
        id_ = self.new_id()
        self.send_frame(type_, id_, payload)
        return self.reply(id_, type_ | REPLY_BIT)

    def wait_push(self, type_, match=None):
        """Returns the first queued (or next arriving) push of this type as a dict."""
        while True:
            for i, (t, payload) in enumerate(self.pushes):
                if t == type_:
                    push = decode_push(t, payload)
                    if match is None or match(push):
                        del self.pushes[i]
                        return push
            self._pump()

    # -- requests --------------------------------------------------------------------------

    def ping(self, payload=b''):
        return self.request(PING, payload)

    def stats(self):
        return json.loads(self.request(STATS).decode('utf-8'))

    def join(self, name):
        return decode_names(self.request(JOIN, name.encode('utf-8')))

    def say(self, text):
        self.request(SAY, text.encode('utf-8'))

    def leave(self):
        self.request(LEAVE)

    def names(self):
        return decode_names(self.request(NAMES))

    def announce(self, token, text):
        self.request(ANNOUNCE, str16(token) + text.encode('utf-8'))

    def list_files(self):
        return decode_list(self.request(LIST))

    def put(self, name, data, chunk_size=DEFAULT_CHUNK):
        """Uploads data; returns (size, sha256) from PUT_OK. DATA is streamed without waiting."""
        id_ = self.new_id()
        digest = hashlib.sha256(data).digest()
        self.send_frame(PUT, id_, struct.pack('!Q', len(data)) + digest + name.encode('utf-8'))
        view = memoryview(data)
        for at in range(0, len(data), chunk_size):
            self.send_frame(DATA, id_, bytes(view[at:at + chunk_size]))
        return decode_size_digest(self.reply(id_, PUT | REPLY_BIT))

    def get(self, name, offset=0):
        """Downloads name from offset; returns (size, sha256 of the whole file, bytes offset..size)."""
        id_ = self.new_id()
        self.send_frame(GET, id_, struct.pack('!Q', offset) + name.encode('utf-8'))
        size, digest = decode_size_digest(self.reply(id_, GET | REPLY_BIT))
        if offset > size:
            raise ProtocolError('GET_OK size %d is below the offset %d' % (size, offset))
        remaining, parts = size - offset, []
        while remaining > 0:  # no end marker: count bytes against size - offset
            type_, payload = self.next_frame(id_)
            if type_ == ERROR:
                raise self._error(payload, id_)
            if type_ != DATA:
                raise ProtocolError('GET id %d: expected DATA, got %s' % (id_, type_name(type_)))
            if len(payload) > remaining:
                raise ProtocolError('GET id %d: %d DATA bytes beyond the file size' % (id_, len(payload) - remaining))
            parts.append(payload)
            remaining -= len(payload)
        return size, digest, b''.join(parts)



# ---------------------------------------------------------------------------------------------
# MX/1 over UDP (§11)

class UdpClient:
    """MX/1 over UDP: one frame per datagram. Resends unanswered requests with the same id
    (§11.4; never ANNOUNCE), answers ERROR 15 by resending with the cookie (§11.2), and queues
    pushes in .pushes like Client."""

    def __init__(self, host, port, timeout=5.0, retries=4):
        family = socket.AF_INET6 if ':' in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        # connect(): only the server's datagrams are read; ICMP port unreachable raises ConnectionRefusedError.
        self.sock.connect((host, port))
        self.attempt = timeout / (retries + 1)
        self.retries = retries
        self.cookie = None
        self._next_id = 1
        self.pushes = []

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def new_id(self):
        id_ = self._next_id
        self._next_id = self._next_id % 0xFFFFFFFF + 1
        return id_

    def send_datagram(self, data):
        self.sock.send(data)

    def send_frame(self, type_, id_, payload=b''):
        self.send_datagram(HEADER.pack(MAGIC, VERSION, type_, id_, len(payload)) + payload)

    def read_frame(self, timeout):
        """One datagram as (type, id, payload), or None after timeout seconds. Datagrams that are
        not exactly one well-formed frame are skipped (§11.1)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(MAX_DATAGRAM)
        except socket.timeout:
            return None
        if len(data) < HEADER.size:
            return self.read_frame(0.001)
        magic, version, type_, id_, length = HEADER.unpack_from(data)
        if magic != MAGIC or version != VERSION or length != len(data) - HEADER.size:
            return self.read_frame(0.001)
        return type_, id_, data[HEADER.size:]

    def _payload(self, type_, payload):
        """The payload with the cookie where it can travel (§11.2)."""
        if self.cookie is None:
            return payload
        if type_ == JOIN:
            return payload + b'\x00' + self.cookie
        if type_ in (STATS, NAMES):
            return self.cookie
        return payload

    def request(self, type_, payload=b'', resend=True, id_=None):
        """Sends one request (resending it with the same id while unanswered) and returns the
        reply payload; raises MX1Error on ERROR, TimeoutError when no answer came."""
        id_ = self.new_id() if id_ is None else id_
        cookie_tries, attempts = 0, 0
        while True:
            self.send_frame(type_, id_, self._payload(type_, payload))
            attempts += 1
            deadline = time.monotonic() + self.attempt * (1 if resend else self.retries + 1)
            answer = None
            while answer is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                frame = self.read_frame(left)
                if frame is None:
                    break
                t, rid, p = frame
                if rid == 0 and t in PUSH_TYPES:
                    self.pushes.append((t, p))
                elif rid == id_:
                    answer = (t, p)
                # anything else: a late answer to an earlier request
            if answer is None:
                if resend and attempts <= self.retries:
                    continue
                raise TimeoutError('no answer to %s id %d after %d attempts' % (type_name(type_), id_, attempts))
            t, p = answer
            if t == ERROR:
                err = Client._error(p, id_)
                if err.code == E_COOKIE_REQUIRED and type_ in (JOIN, STATS, NAMES) and cookie_tries < 2:
                    self.cookie = p[-COOKIE_LENGTH:]   # the last 16 bytes, whatever text comes before
                    cookie_tries += 1
                    attempts = 0
                    continue
                if type_ == LEAVE and err.code == E_NOT_JOINED and attempts > 1:
                    return b''                          # the first LEAVE arrived
                raise err
            if t != type_ | REPLY_BIT:
                raise ProtocolError('id %d: expected %s, got %s' % (id_, type_name(type_ | REPLY_BIT), type_name(t)))
            return p

    def wait_push(self, type_, match=None, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, (t, payload) in enumerate(self.pushes):
                if t == type_:
                    push = decode_push(t, payload)
                    if match is None or match(push):
                        del self.pushes[i]
                        return push
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError('no %s push within %.1f s' % (type_name(type_), timeout))
            frame = self.read_frame(left)
            if frame is not None and frame[1] == 0 and frame[0] in PUSH_TYPES:
                self.pushes.append((frame[0], frame[2]))

    def ping(self, payload=b''):
        return self.request(PING, payload)

    def stats(self):
        return json.loads(self.request(STATS).decode('utf-8'))

    def join(self, name, id_=None):
        return decode_names(self.request(JOIN, name.encode('utf-8'), id_=id_))

    def say(self, text):
        self.request(SAY, text.encode('utf-8'))

    def leave(self):
        self.request(LEAVE)

    def names(self):
        return decode_names(self.request(NAMES))

    def announce(self, token, text):
        self.request(ANNOUNCE, str16(token) + text.encode('utf-8'), resend=False)

# ---------------------------------------------------------------------------------------------
# Self-check

class CheckFailed(Exception):
    pass


def pseudo_random_bytes(n, seed):
    """n unpredictable-enough bytes from SHA-256 in counter mode (keeps us to the allowed modules)."""
    out, counter = [], 0
    while counter * 32 < n:
        out.append(hashlib.sha256(seed + struct.pack('!Q', counter)).digest())
        counter += 1
    return b''.join(out)[:n]


def expect(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_error(code, fn, what):
    try:
        result = fn()
    except MX1Error as e:
        if e.code != code:
            raise CheckFailed('%s: expected error %d, got error %d (%s)' % (what, code, e.code, e.message))
        return e
    raise CheckFailed('%s: expected error %d, got a normal reply %r' % (what, code, result))


def selfcheck(host, port, state, **tls):
    """Runs every check in order; state['step'] names the check in progress (for error reports)."""
    def ok(msg):
        print('ok - ' + msg, flush=True)

    def at(step):
        state['step'] = step

    conns = []

    def connect():
        c = Client(host, port, **tls)
        conns.append(c)
        return c

    try:
        at('connect to %s:%s' % (host, port))
        a = connect()

        at('pipelined PING')

        # PING: pipelined, distinct ids, replies matched by id (read in a different order on purpose).
        big = pseudo_random_bytes(1000, b'ping')
        sent = {}
        for payload in (b'', big, b'third'):
            id_ = a.new_id()
            sent[id_] = payload
            a.send_frame(PING, id_, payload)
        for id_ in sorted(sent, reverse=True):
            got = a.reply(id_, PING | REPLY_BIT)
            expect(got == sent[id_], 'PING id %d echoed %d bytes, sent %d' % (id_, len(got), len(sent[id_])))
        ok('PING pipelined x3 (0, 1000, 5 bytes), replies matched by id %s' % sorted(sent))

        at('STATS')
        stats = a.stats()
        expect(isinstance(stats, dict), 'STATS_OK is not a JSON object: %r' % (stats,))
        ok('STATS is a JSON object (%d keys, uptimeSeconds=%r)' % (len(stats), stats.get('uptimeSeconds')))

        # Chat: two members.
        at('JOIN ada')
        names = a.join('ada')
        expect(names and names[-1] == 'ada', 'JOIN ada: JOIN_OK should end with ada, got %r' % names)
        ok('JOIN ada -> %r' % names)
        at('JOIN 张三')
        b = connect()
        names = b.join('张三')
        expect(names[-2:] == ['ada', '张三'], 'JOIN 张三: JOIN_OK should end with ada, 张三, got %r' % names)
        ok('JOIN 张三 on a second connection -> %r' % names)

        at('USER_JOINED push')
        push = a.wait_push(USER_JOINED)
        expect(push['name'] == '张三', 'USER_JOINED push named %r, expected 张三' % push['name'])
        ok('ada received USER_JOINED 张三')

        at('SAY / MESSAGE push')
        b.say('你好, ada')
        push = a.wait_push(MESSAGE)
        expect(push == {'type': 'MESSAGE', 'from': '张三', 'text': '你好, ada'}, 'unexpected MESSAGE push %r' % push)
        ok('SAY from 张三 -> MESSAGE push on ada\'s connection')
        a.say('hi 张三')
        push = b.wait_push(MESSAGE)
        expect(push == {'type': 'MESSAGE', 'from': 'ada', 'text': 'hi 张三'}, 'unexpected MESSAGE push %r' % push)
        ok('SAY from ada -> MESSAGE push on 张三\'s connection')

        at('NAMES')
        c = connect()
        names = c.names()
        expect('ada' in names and '张三' in names and names.index('ada') < names.index('张三'),
               'NAMES should list ada then 张三, got %r' % names)
        ok('NAMES (unjoined connection) -> %r' % names)

        at('JOIN ADA (error 11)')
        expect_error(E_NAME_TAKEN, lambda: c.join('ADA'), 'JOIN ADA while ada is present')
        ok('JOIN ADA -> error 11 (name taken, case-insensitive)')
        at('JOIN twice (error 13)')
        expect_error(E_ALREADY_JOINED, lambda: a.join('ada_again'), 'second JOIN on ada\'s connection')
        ok('JOIN twice -> error 13 (already joined)')
        at('ANNOUNCE with a wrong token (error 14)')
        expect_error(E_FORBIDDEN, lambda: a.announce('definitely-not-the-token', 'hello all'), 'ANNOUNCE with a wrong token')
        ok('ANNOUNCE with a wrong token -> error 14')

        at('LEAVE / USER_LEFT push')
        b.leave()
        push = a.wait_push(USER_LEFT)
        expect(push['name'] == '张三', 'USER_LEFT push named %r, expected 张三' % push['name'])
        ok('LEAVE 张三 -> LEAVE_OK, ada received USER_LEFT 张三')

        # Files.
        at('PUT')
        seed = repr((id(object()), a.sock.getsockname(), stats.get('uptimeSeconds'))).encode()
        fname = 'mx1-selfcheck-%s.bin' % hashlib.sha256(seed).hexdigest()[:12]
        data = pseudo_random_bytes(300 * 1024 + 123, seed)
        digest = hashlib.sha256(data).digest()
        chunk = 64 * 1024
        size, got_digest = c.put(fname, data, chunk_size=chunk)
        expect(size == len(data) and got_digest == digest,
               'PUT_OK size/digest %d/%s, expected %d/%s' % (size, got_digest.hex(), len(data), digest.hex()))
        ok('PUT %s (%d bytes in %d DATA frames) -> PUT_OK size and sha256 match'
           % (fname, len(data), -(-len(data) // chunk)))

        at('LIST')
        files = c.list_files()
        expect((fname, len(data)) in files, 'LIST does not contain (%r, %d): %r' % (fname, len(data), files))
        ok('LIST contains %s with size %d (%d files)' % (fname, len(data), len(files)))

        at('GET offset 0')
        size, got_digest, body = c.get(fname)
        expect(size == len(data) and got_digest == digest, 'GET_OK size/digest mismatch')
        expect(body == data and hashlib.sha256(body).digest() == digest, 'GET offset 0: bytes differ')
        ok('GET offset 0 -> %d bytes, sha256 verified' % len(body))

        offset = len(data) // 2 + 7
        at('GET offset %d' % offset)
        size, got_digest, body = c.get(fname, offset)
        expect(size == len(data) and got_digest == digest, 'GET_OK (offset %d) size/digest mismatch' % offset)
        expect(body == data[offset:], 'GET offset %d: bytes differ' % offset)
        expect(hashlib.sha256(data[:offset] + body).digest() == digest, 'GET offset %d: resumed file digest differs' % offset)
        ok('GET offset %d -> %d bytes, whole-file sha256 verified' % (offset, len(body)))

        at('GET of a missing file (error 20)')
        expect_error(E_NOT_FOUND, lambda: c.get('mx1-selfcheck-missing-' + fname), 'GET of a missing file')
        ok('GET of a missing file -> error 20')

        at('unknown type (error 3)')
        unknown_id = c.new_id()
        c.send_frame(0x7E, unknown_id, b'xyz')
        expect_error(E_UNKNOWN_TYPE, lambda: c.reply(unknown_id, 0x7E | REPLY_BIT), 'unknown type 0x7e')
        expect(c.ping(b'still here') == b'still here', 'PING after error 3 failed')
        ok('unknown type 0x7e -> error 3, connection still usable')

        # Bad magic: ERROR 1, then the server closes the connection.
        at('bad magic (error 1, then close)')
        d = connect()
        d.send_frame(PING, 1, b'', magic=0x4E58)
        try:
            frame = d.read_frame()
        except ConnectionClosed:
            raise CheckFailed('bad magic: connection closed without an ERROR frame')
        type_, id_, payload = frame
        expect(type_ == ERROR, 'bad magic: expected ERROR, got %s' % type_name(type_))
        err = Client._error(payload, id_)
        expect(err.code == E_BAD_MAGIC, 'bad magic: expected error 1, got %s' % err)
        try:
            extra = d.read_frame()
            raise CheckFailed('bad magic: connection still open, got %s' % type_name(extra[0]))
        except ConnectionClosed:
            pass
        ok('bad magic -> error 1 (id %d, "%s"), then the server closed the connection' % (id_, err.message))
    finally:
        for conn in conns:
            conn.close()


def selfcheck_udp(host, port, tcp_port, state):
    """The UDP checks (§11): datagram rules, the cookie, chat with a TCP member."""
    def ok(msg):
        print('ok - ' + msg, flush=True)

    def at(step):
        state['step'] = step

    conns = []

    def udp():
        c = UdpClient(host, port)
        conns.append(c)
        return c

    try:
        at('UDP PING')
        a = udp()
        expect(a.ping(b'hello') == b'hello', 'PING over UDP did not echo')
        big = pseudo_random_bytes(1000, b'udp')
        expect(a.ping(big) == big, 'PING of 1000 bytes over UDP did not echo')
        ok('PING over UDP (5 and 1000 bytes) echoed')

        at('bad magic datagram (error 1)')
        a.send_datagram(b'GET / HTTP/1.0\r\n\r\n')
        frame = a.read_frame(3.0)
        expect(frame is not None and frame[0] == ERROR, 'bad magic: no ERROR datagram')
        err = Client._error(frame[2], frame[1])
        expect(err.code == E_BAD_MAGIC and frame[1] == 0, 'bad magic: expected error 1 id 0, got %s' % err)
        at('trailing bytes (error 4)')
        a.send_datagram(HEADER.pack(MAGIC, VERSION, PING, 77, 1) + b'xjunk')
        frame = a.read_frame(3.0)
        expect(frame is not None and frame[0] == ERROR and frame[1] == 77, 'trailing bytes: no ERROR with id 77')
        expect(Client._error(frame[2], 77).code == E_MALFORMED, 'trailing bytes: expected error 4')
        expect(a.ping(b'still') == b'still', 'PING after bad datagrams failed')
        ok('bad magic -> error 1 (id 0); trailing bytes -> error 4 (id 77); the server still answers')

        at('STATS over UDP (cookie round trip)')
        s = udp()  # a fresh address: its 12-byte STATS allows 36 bytes back, STATS_OK is larger
        stats = s.stats()
        expect(isinstance(stats, dict) and 'uptimeSeconds' in stats, 'STATS over UDP is not the JSON object')
        expect(s.cookie is not None and len(s.cookie) == COOKIE_LENGTH, 'STATS_OK is larger than 3x the request: an ERROR 15 cookie was expected')
        ok('STATS over UDP -> ERROR 15 with cookie %s, resent with it -> JSON (%d keys)' % (s.cookie.decode(), len(stats)))

        at('JOIN udp-ada (cookie round trip)')
        b = udp()
        raw_join_id = b.new_id()
        b.send_frame(JOIN, raw_join_id, 'udp-ada'.encode())
        frame = b.read_frame(3.0)
        expect(frame is not None and frame[0] == ERROR and Client._error(frame[2], raw_join_id).code == E_COOKIE_REQUIRED,
               'JOIN without a cookie: expected ERROR 15')
        expect(len(frame[2]) in (18, 34), 'ERROR 15 payload is %d bytes, expected 18 or 34' % len(frame[2]))
        b.cookie = frame[2][-COOKIE_LENGTH:]
        names = b.join('udp-ada', id_=raw_join_id)
        expect(names and names[-1] == 'udp-ada', 'JOIN_OK should end with udp-ada, got %r' % names)
        ok('JOIN udp-ada -> ERROR 15 (%d-byte payload), JOIN with name + 00 + cookie -> %r' % (len(frame[2]), names))

        at('JOIN retransmission')
        again = b.join('udp-ada', id_=raw_join_id)
        expect(again[-1] == 'udp-ada', 'a resent JOIN (same id) should be answered JOIN_OK, got %r' % again)
        expect_error(E_ALREADY_JOINED, lambda: b.join('udp-ada'), 'JOIN with a new id while joined')
        ok('JOIN resent with the same id -> JOIN_OK again; with a new id -> error 13')

        at('second UDP member')
        c = udp()
        names = c.join('udp-张三')
        expect(names[-2:] == ['udp-ada', 'udp-张三'], 'JOIN udp-张三 should end with udp-ada, udp-张三: %r' % names)
        push = b.wait_push(USER_JOINED)
        expect(push['name'] == 'udp-张三', 'USER_JOINED named %r' % push['name'])
        c.say('你好 over UDP')
        push = b.wait_push(MESSAGE)
        expect(push == {'type': 'MESSAGE', 'from': 'udp-张三', 'text': '你好 over UDP'}, 'unexpected MESSAGE %r' % push)
        ok('udp-张三 joined; udp-ada got USER_JOINED and the MESSAGE datagram')

        at('UDP and TCP in one room')
        t = Client(host, tcp_port)
        try:
            names = t.join('tcp-bob')
            expect('udp-ada' in names and names[-1] == 'tcp-bob', 'TCP JOIN_OK should list the UDP members: %r' % names)
            b.wait_push(USER_JOINED, lambda p: p['name'] == 'tcp-bob')
            b.say('from UDP to TCP')
            push = t.wait_push(MESSAGE)
            expect(push == {'type': 'MESSAGE', 'from': 'udp-ada', 'text': 'from UDP to TCP'}, 'TCP got %r' % push)
            t.say('from TCP to UDP')
            push = b.wait_push(MESSAGE, lambda p: p['from'] == 'tcp-bob')
            expect(push['text'] == 'from TCP to UDP', 'UDP got %r' % push)
            expect_error(E_NAME_TAKEN, lambda: udp().join('TCP-BOB'), 'UDP JOIN TCP-BOB while tcp-bob is on TCP')
        finally:
            t.close()
        ok('a TCP member and a UDP member exchange MESSAGEs both ways; names are unique across both')

        at('PUT over UDP (error 3)')
        e = expect_error(E_UNKNOWN_TYPE, lambda: a.request(PUT, struct.pack('!Q', 0) + bytes(32) + b'x.bin'), 'PUT over UDP')
        ok('PUT over UDP -> error 3 (%s)' % e.message)

        at('LEAVE over UDP')
        c.leave()
        push = b.wait_push(USER_LEFT, lambda p: p['name'] == 'udp-张三')
        ok('LEAVE udp-张三 -> LEAVE_OK; udp-ada got USER_LEFT')
        b.leave()
    finally:
        for conn in conns:
            conn.close()


def main(argv):
    host, port, check, udp, tcp_port = '127.0.0.1', None, False, False, None
    tls = {}
    usage = ('usage: mx1_client.py --host HOST --port PORT [--udp [--tcp-port PORT]]'
             ' [--tls [--ca FILE] [--servername NAME]] [--selfcheck]')
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == '--host' and args:
            host = args.pop(0)
        elif arg == '--port' and args:
            port = int(args.pop(0))
        elif arg == '--tcp-port' and args:
            tcp_port = int(args.pop(0))
        elif arg == '--udp':
            udp = True
        elif arg == '--tls':
            tls['tls'] = True
        elif arg == '--ca' and args:
            tls['ca'] = args.pop(0)
        elif arg == '--servername' and args:
            tls['servername'] = args.pop(0)
        elif arg == '--selfcheck':
            check = True
        else:
            print(usage, file=sys.stderr)
            return 2
    if port is None:
        print(usage + '  (--port is required)', file=sys.stderr)
        return 2
    if tls and 'tls' not in tls:
        print(usage + '  (--ca and --servername need --tls)', file=sys.stderr)
        return 2
    if tls and udp:
        print(usage + '  (UDP is plaintext: --udp does not go with --tls)', file=sys.stderr)
        return 2
    if udp and not check:
        with UdpClient(host, port) as u:
            print('PING ->', u.ping(b'hello'))
            print('NAMES ->', u.names())
        return 0
    if not check:
        with Client(host, port, **tls) as c:
            print('PING ->', c.ping(b'hello'))
            print('NAMES ->', c.names())
        return 0
    state = {'step': 'start'}
    try:
        if udp:
            # The UDP face listens on the MX/1 port number unless told otherwise.
            selfcheck_udp(host, port, tcp_port if tcp_port is not None else port, state)
        else:
            selfcheck(host, port, state, **tls)
    except CheckFailed as e:
        print('not ok - %s: %s' % (state['step'], e), flush=True)
        print('selfcheck FAILED at %s: %s' % (state['step'], e), file=sys.stderr)
        return 1
    except TimeoutError as e:
        print('not ok - %s: timed out waiting for the server (%s)' % (state['step'], e), flush=True)
        print('selfcheck FAILED at %s: timed out waiting for a reply or push' % state['step'], file=sys.stderr)
        return 1
    except ssl.SSLCertVerificationError as e:
        print('not ok - %s: the server certificate could not be verified: %s (give its CA with --ca FILE)' % (state['step'], e.verify_message), flush=True)
        print('selfcheck FAILED at %s: certificate not verified: %s' % (state['step'], e.verify_message), file=sys.stderr)
        return 1
    except (MX1Error, ProtocolError, ConnectionClosed, OSError) as e:
        print('not ok - %s: %s: %s' % (state['step'], type(e).__name__, e), flush=True)
        print('selfcheck FAILED at %s: unexpected %s: %s' % (state['step'], type(e).__name__, e), file=sys.stderr)
        return 1
    print('all checks passed')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
