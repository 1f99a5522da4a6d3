#!/usr/bin/env python3
"""libphonenumber's answer for phones, for tests/phone_differential.rs.

Reads JSON lines on stdin, each {"raw": "...", "region": "US" or null}, and writes one JSON
line per input on stdout: {"e164": "+..."} when `phonenumbers.parse(raw, region)` succeeds
and `is_valid_number` holds, else {"e164": null}. The first output line is
{"version": phonenumbers.__version__}, so the caller can check the metadata release matches
its own.
"""

import json
import sys

import phonenumbers


def answer(raw, region):
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def main():
    out = sys.stdout
    out.write(json.dumps({"version": phonenumbers.__version__}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        q = json.loads(line)
        out.write(json.dumps({"e164": answer(q["raw"], q.get("region"))}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
