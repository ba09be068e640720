#!/usr/bin/env python3
"""No secret of a whole API test run is in the daemon's log of that run.

Usage: check_log_secrets.py RECORDED.jsonl ...

Each RECORDED.jsonl is what an API test binary recorded
(tests/daemon/http_client.h: every /api/ exchange, and the secrets it gave
the daemon otherwise, such as the Stripe keys); RECORDED.jsonl.log is the
daemon's log of that run, every level (tests/daemon/api_fixture.h). The
secrets: every string under a key naming a password, token or secret in a
request or response body (sign-up and login passwords, wrong ones too, new
passwords, session tokens, stream keys, their rotations), and the recorded
ones. Each must be absent from the log, as written, percent-encoded or
JSON-escaped. Fails, too, when a run recorded nothing or logged nothing
(the check would be empty).
"""
import json
import re
import sys
import urllib.parse

SECRET_KEY = re.compile(r"(password|token|secret)", re.I)


def strings_under_secret_keys(value, secret=False):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from strings_under_secret_keys(v, secret or bool(SECRET_KEY.search(k)))
    elif isinstance(value, list):
        for v in value:
            yield from strings_under_secret_keys(v, secret)
    elif isinstance(value, str) and secret:
        yield value


def secrets_of(recorded):
    found = set()
    for line in open(recorded, encoding="utf-8", errors="replace"):  # hostile bodies are not all UTF-8
        entry = json.loads(line)
        if "secret" in entry:
            found.add(entry["secret"])
            continue
        for text in (entry.get("body", ""), entry.get("request_body", "")):
            try:
                found.update(strings_under_secret_keys(json.loads(text)))
            except (ValueError, RecursionError):
                pass  # not JSON, or nested too deep for Python (the hostile bodies of the tests)
    # Short strings ("x", a 1-character wrong password) would match anywhere.
    return {s for s in found if len(s) >= 8}


def main(paths):
    failures, total = [], 0
    for recorded in paths:
        secrets = secrets_of(recorded)
        log = open(recorded + ".log", encoding="utf-8", errors="replace").read()
        if not secrets:
            failures.append(f"{recorded}: no secrets recorded (did the tests run with MIRAGE_HTTP_RECORD?)")
        if not log.strip():
            failures.append(f"{recorded}.log: empty (the daemon logged nothing)")
        for s in sorted(secrets):
            for variant in {s, urllib.parse.quote(s, safe=""), json.dumps(s)[1:-1]}:
                if variant in log:
                    at = log.index(variant)
                    failures.append(f"{recorded}.log holds a secret ({s[:4]}…): "
                                    f"{log[max(0, at - 120):at + 40]!r}")
                    break
        total += len(secrets)
        print(f"{recorded}: {len(secrets)} secrets, {log.count(chr(10))} log lines")
    for f in failures:
        print(f, file=sys.stderr)
    print(f"{total} secrets checked, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
