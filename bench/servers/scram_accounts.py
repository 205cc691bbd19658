#!/usr/bin/python3
"""Bulk account writer for the reference servers (our own code).

Derives SCRAM-SHA-1 credentials for user1..userN / pass1..passN (PBKDF2,
4096 iterations, hashlib) in parallel worker processes and writes them in the
form each server's bulk path wants:

  prosody DATA_DIR DOMAIN N   -> DATA_DIR/<escaped domain>/accounts/userI.dat
                                 (Prosody's internal_hashed format, as written
                                 by `prosodyctl register`)
  ejabberd FILE N             -> FILE of Erlang terms
                                 {<<"userI">>,StoredKeyB64,ServerKeyB64,SaltB64}.
                                 (the base64 fields of ejabberd's #scram{} record)

Options: --workers W (default: number of CPUs), --iterations I (default 4096).
"""
import argparse
import base64
import hashlib
import hmac
import os
import sys
import time
import uuid
from multiprocessing import Pool

ITERATIONS = 4096


def derive(password: bytes, salt: bytes, iterations: int):
    salted = hashlib.pbkdf2_hmac('sha1', password, salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha1).digest()
    stored_key = hashlib.sha1(client_key).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha1).digest()
    return stored_key, server_key


def prosody_escape(s: str) -> str:
    # Prosody's datamanager escapes every non-alphanumeric byte as %xx (lower-case hex).
    return ''.join(c if c.isascii() and c.isalnum() else ''.join('%%%02x' % b for b in c.encode()) for c in s)


def prosody_job(args):
    accounts_dir, first, last, iterations, now = args
    for i in range(first, last + 1):
        salt = str(uuid.uuid4())  # Prosody itself uses a UUID string as the salt
        stored, server = derive(b'pass%d' % i, salt.encode(), iterations)
        body = ('return {\n'
                '\t["updated"] = %d;\n'
                '\t["server_key"] = "%s";\n'
                '\t["iteration_count"] = %d;\n'
                '\t["salt"] = "%s";\n'
                '\t["stored_key"] = "%s";\n'
                '\t["created"] = %d;\n'
                '};\n') % (now, server.hex(), iterations, salt, stored.hex(), now)
        path = os.path.join(accounts_dir, prosody_escape('user%d' % i) + '.dat')
        with open(path, 'w') as f:
            f.write(body)
    return last - first + 1


def ejabberd_job(args):
    first, last, iterations = args
    out = []
    for i in range(first, last + 1):
        salt = os.urandom(16)
        stored, server = derive(b'pass%d' % i, salt, iterations)
        b64 = lambda b: base64.b64encode(b).decode()
        out.append('{<<"user%d">>,<<"%s">>,<<"%s">>,<<"%s">>}.\n' % (i, b64(stored), b64(server), b64(salt)))
    return ''.join(out)


def chunks(n, size):
    for first in range(1, n + 1, size):
        yield first, min(n, first + size - 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--workers', type=int, default=os.cpu_count() or 2)
    ap.add_argument('--iterations', type=int, default=ITERATIONS)
    sub = ap.add_subparsers(dest='mode', required=True)
    p = sub.add_parser('prosody')
    p.add_argument('data_dir'); p.add_argument('domain'); p.add_argument('n', type=int)
    e = sub.add_parser('ejabberd')
    e.add_argument('file'); e.add_argument('n', type=int)
    a = ap.parse_args()

    start = time.time()
    with Pool(a.workers) as pool:
        if a.mode == 'prosody':
            accounts = os.path.join(a.data_dir, prosody_escape(a.domain), 'accounts')
            os.makedirs(accounts, exist_ok=True)
            now = int(time.time())
            jobs = [(accounts, f, l, a.iterations, now) for f, l in chunks(a.n, 250)]
            done = sum(pool.imap_unordered(prosody_job, jobs))
        else:
            jobs = [(f, l, a.iterations) for f, l in chunks(a.n, 250)]
            with open(a.file, 'w') as f:
                done = 0
                for text in pool.imap(ejabberd_job, jobs):
                    f.write(text)
                    done += text.count('\n')
    print('derived %d SCRAM-SHA-1 credentials in %.1f s' % (done, time.time() - start), file=sys.stderr)


if __name__ == '__main__':
    main()
