#!/usr/bin/env python3
"""A shop's order history as `audiencesync import --format jsonl` reads it, shaped like a real
shop's export rather than like scripts/gen10m.py's regular grid.

usage: python3 scripts/gen-history.py CUSTOMERS TOTAL_ORDERS [--order time|customer]
           [--years 3] [--seed N] [--malformed-rate 0.001] [--duplicate-rate 0.0005]
           [--tmp DIR] [--sort-mem 2G] > history.jsonl

The shape, and why: real order exports are skewed, so the daemon's per-customer structures
see a few heavy customers and a long tail of one-off buyers.
  - 10 % of customers never buy; of the buyers, 29 % buy once; the repeat buyers' order counts
    follow a log-normal whose spread is fitted so that the top quarter of customers hold ~80 %
    of the orders (reachable when TOTAL_ORDERS is several times CUSTOMERS, e.g. 10M / 1M).
  - Customers register over --years years ending an hour-aligned day before now (the daemon
    refuses events from the future; the file is imported after it is written). The shop grows:
    more register later. Most buyers order first within the hour of registering; half of the
    repeat buyers churn at some point and order no more.
  - ~5 % of orders get a partial refund and ~1 % a full one, days later; ~10 % of customers a
    later profile update, ~5 % a consent change.
  - --malformed-rate of the rows are broken the way exports break (a missing required field, a
    currency that is not one, an amount that is not a number, a timestamp that is not RFC 3339):
    the import must reject exactly those. --duplicate-rate of the rows appear twice (the same
    line): the import reports them as duplicates.

--order time (default): every line sorted by occurredAt, customers interleaved, as an export
is; the lines are keyed and sorted by GNU sort (`LC_ALL=C sort -S --sort-mem --parallel=2
-T --tmp`), since 10M orders do not fit in Python's memory as objects.
--order customer: each customer's events together, in time order (the kinder order).

The same arguments give the same file on the same day (times are relative to the day before).
A one-line summary goes to stderr.
"""

import argparse
import datetime
import math
import os
import random
import statistics
import subprocess
import sys
import time

DAY = 86_400
NON_BUYERS = 0.10
ONE_TIMERS = 0.29
TOP_QUARTER_TARGET = 0.80
PARTIAL_REFUND = 0.05
FULL_REFUND = 0.01
PROFILE_UPDATE = 0.10
CONSENT_CHANGE = 0.05
GRANTED = "CONSENT_STATUS_GRANTED"
DENIED = "CONSENT_STATUS_DENIED"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("customers", type=int)
    p.add_argument("total_orders", type=int)
    p.add_argument("--order", choices=["time", "customer"], default="time")
    p.add_argument("--years", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--malformed-rate", type=float, default=0.001)
    p.add_argument("--duplicate-rate", type=float, default=0.0005)
    p.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"), help="sort's temp dir")
    p.add_argument("--sort-mem", default="2G", help="sort's buffer (sort -S)")
    a = p.parse_args()
    if a.customers < 1 or a.total_orders < 0 or a.years <= 0:
        p.error("CUSTOMERS must be >= 1, TOTAL_ORDERS >= 0, --years > 0")
    return a


# ---- how many orders each customer places ---------------------------------------------------


def order_counts(customers, total, rng):
    """Per-customer order counts summing to `total`: non-buyers, one-timers, then repeat buyers
    on log-normal quantiles (deterministic given the roles), spread fitted to the target."""
    roles = list(range(customers))
    rng.shuffle(roles)
    buyers = min(customers - int(customers * NON_BUYERS), total) if total else 0
    one = min(int(buyers * ONE_TIMERS), buyers)
    repeaters = buyers - one
    counts = [0] * customers
    for c in roles[customers - buyers : customers - buyers + one]:
        counts[c] = 1
    rep = roles[customers - buyers + one :]  # heaviest first
    extra = total - one - 2 * repeaters
    if repeaters == 0 or extra < 0:
        # Too few orders for the shape: the buyers share them round the table.
        counts = [0] * customers
        for i in range(total):
            counts[roles[customers - buyers + i % buyers]] += 1
        return counts
    normal = statistics.NormalDist()
    z = [normal.inv_cdf(1 - (r + 0.5) / repeaters) for r in range(repeaters)]
    quarter = customers // 4

    def allocate(sigma):
        w = [math.exp(sigma * x) for x in z]
        scale = extra / sum(w)
        e = [int(x * scale) for x in w]
        for i in range(extra - sum(e)):  # the rounding's remainder to the heaviest
            e[i % repeaters] += 1
        return e

    def top_share(sigma):
        e = allocate(sigma)
        top = sum(e[:quarter]) + 2 * min(quarter, repeaters)
        if quarter > repeaters:
            top += quarter - repeaters  # one-timers fill the rest of the quarter
        return top / total

    lo, hi = 0.0, 3.0
    for _ in range(18):
        mid = (lo + hi) / 2
        if top_share(mid) < TOP_QUARTER_TARGET:
            lo = mid
        else:
            hi = mid
    for c, e in zip(rep, allocate((lo + hi) / 2)):
        counts[c] = 2 + e
    return counts


# ---- the rows -------------------------------------------------------------------------------


class Clock:
    """RFC 3339 text of whole seconds, the date part cached (a few thousand distinct days)."""

    def __init__(self):
        self.days = {}

    def iso(self, t):
        d, s = divmod(t, DAY)
        date = self.days.get(d)
        if date is None:
            date = datetime.datetime.fromtimestamp(d * DAY, datetime.timezone.utc).strftime("%Y-%m-%d")
            self.days[d] = date
        h, s = divmod(s, 3600)
        m, s = divmod(s, 60)
        return f"{date}T{h:02d}:{m:02d}:{s:02d}Z"


def money(minor):
    return f'{{"amountMinor":"{minor}","currency":"USD"}}'


def order_total(rng, heavy):
    cents = int(rng.lognormvariate(math.log(5_500 if heavy else 4_000), 0.8))
    return max(cents, 199)


def customer_rows(c, n_orders, start, end, rng, p):
    """(unix time, kind tag, json) of customer `c`'s history; p is the id prefix."""
    cid = f"{p.upper()}{c}"
    span = end - start
    # A growing shop: registrations denser towards the end.
    reg = start + int(span * math.sqrt(rng.random()))
    rows = []
    phone = f',"phone":"+1212555{rng.randrange(100, 200):04d}"' if rng.random() < 0.6 else ""
    consent = GRANTED if rng.random() < 0.85 else DENIED
    rows.append((reg, "u", f'{{"eventId":"{p}{c}-c","occurredAt":"{{T}}","customerUpserted":{{"customerId":"{cid}","email":"{p}{c}@example.com"{phone},"country":"US","adUserData":"{consent}","adPersonalization":"{consent}"}}}}'))
    stats = [0, 0, 0, 0]  # partial refunds, full refunds, profile updates, consent changes
    if n_orders:
        active_until = end if n_orders == 1 or rng.random() < 0.5 else reg + int((end - reg) * rng.random())
        active_until = max(active_until, reg + 3600)
        times = sorted(reg + int((active_until - reg) * rng.random()) for _ in range(n_orders))
        if rng.random() < 0.6:  # bought on the day they registered
            times[0] = reg + rng.randrange(60, 3600)
            times.sort()
        heavy = n_orders > 20
        for k, t in enumerate(times):
            t = min(t, end)
            total = order_total(rng, heavy)
            oid = f"{p.upper()}O{c}-{k}"
            rows.append((t, "o", f'{{"eventId":"{p}{c}-o{k}","occurredAt":"{{T}}","orderPlaced":{{"orderId":"{oid}","customerId":"{cid}","total":{money(total)},"itemCount":{rng.randint(1, 6)}}}}}'))
            roll = rng.random()
            if roll < FULL_REFUND + PARTIAL_REFUND:
                full = roll < FULL_REFUND
                rt = t + rng.randrange(DAY, (30 if full else 20) * DAY)
                if rt > end:  # not yet refunded by the export's end: earlier, still after it
                    rt = t + 60 + int(max(0, end - t - 60) * rng.random())
                amount = total if full else max(1, total * rng.randrange(10, 61) // 100)
                flag = ',"full":true' if full else ""
                rows.append((rt, "r", f'{{"eventId":"{p}{c}-o{k}-r","occurredAt":"{{T}}","orderRefunded":{{"orderId":"{oid}","amountMinor":"{amount}"{flag}}}}}'))
                stats[1 if full else 0] += 1
    if rng.random() < PROFILE_UPDATE:
        t = reg + int((end - reg) * rng.random())
        rows.append((t, "p", f'{{"eventId":"{p}{c}-p","occurredAt":"{{T}}","customerUpserted":{{"customerId":"{cid}","postalCode":"{rng.choice(("10001", "94107", "60601", "98101"))}","phone":"+1415555{rng.randrange(100, 200):04d}"}}}}'))
        stats[2] += 1
    if rng.random() < CONSENT_CHANGE:
        t = reg + int((end - reg) * rng.random())
        to = DENIED if consent == GRANTED else GRANTED
        rows.append((t, "k", f'{{"eventId":"{p}{c}-k","occurredAt":"{{T}}","consentChanged":{{"customerId":"{cid}","adPersonalization":"{to}"}}}}'))
        stats[3] += 1
    return rows, stats


def malform(line, kind, rng):
    """The row broken as exports break, so that the import must reject it."""
    choices = ["missing", "timestamp"]
    if kind == "o":
        choices += ["currency", "amount"]
    elif kind == "r":
        choices.append("amount")
    how = rng.choice(choices)
    if how == "missing":
        return _drop_customer(line) if kind != "r" else _drop_time(line)
    if how == "timestamp":
        y, mo, d = line.split('"occurredAt":"', 1)[1][:10].split("-")
        bad = rng.choice((f"{d}/{mo}/{y} 10:15", f"{y}-{mo}-{d} 10:15:00", f"{y}-{mo}-{d}T25:61:00Z"))
        head, tail = line.split('"occurredAt":"', 1)
        return f'{head}"occurredAt":"{bad}{tail[20:]}'
    if how == "currency":
        return line.replace('"currency":"USD"', f'"currency":"{rng.choice(("US$", "DOLLAR", "usd$", ""))}"', 1)
    head, tail = line.split('"amountMinor":"', 1)
    digits, rest = tail.split('"', 1)
    bad = rng.choice((f"{digits[:-2] or '0'},{digits[-2:]}", "N/A", f"${digits}"))
    return f'{head}"amountMinor":"{bad}"{rest}'


def _drop_customer(line):
    head, tail = line.split('"customerId":"', 1)
    _, rest = tail.split('"', 1)
    return head + rest.lstrip(",") if rest.startswith(",") else head.rstrip(",") + rest


def _drop_time(line):
    head, tail = line.split('"occurredAt":"', 1)
    return head + tail[22:]  # the 20-character time, its closing quote and comma


# ---- output ---------------------------------------------------------------------------------


def main():
    a = parse_args()
    rng = random.Random(a.seed)
    now = int(time.time())
    end = (now - DAY) // 3600 * 3600
    start = end - int(a.years * 365 * DAY)
    prefix = f"g{a.seed}-"
    clock = Clock()
    started = time.monotonic()

    counts = order_counts(a.customers, a.total_orders, rng)

    sorter = cutter = None
    if a.order == "time":
        env = dict(os.environ, LC_ALL="C")
        sort_cmd = ["sort", "-t", "\t", "-k1,1", "-S", a.sort_mem, "--parallel=2", "-T", a.tmp]
        sorter = subprocess.Popen(sort_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        cutter = subprocess.Popen(["cut", "-f2-"], stdin=sorter.stdout, stdout=sys.stdout, env=env)
        sorter.stdout.close()
        out = sorter.stdin
    else:
        out = sys.stdout.buffer

    totals = [0, 0, 0, 0]
    rows_out = malformed = duplicated = 0
    buf = []
    for c in range(a.customers):
        rows, st = customer_rows(c, counts[c], start, end, rng, prefix)
        for i in range(4):
            totals[i] += st[i]
        # Drawn in generation order, so both orders break and repeat the same rows.
        lines = []
        for t, kind, tmpl in rows:
            iso = clock.iso(t)
            line = tmpl.replace("{T}", iso, 1)
            copies = 1
            roll = rng.random()
            if roll < a.malformed_rate:
                line = malform(line, kind, rng)
                malformed += 1
            elif roll < a.malformed_rate + a.duplicate_rate:
                copies = 2
                duplicated += 1
            lines.append((iso, line, copies))
            rows_out += copies
        if sorter:
            buf.extend(f"{iso}\t{line}\n" * copies for iso, line, copies in lines)
        else:
            lines.sort(key=lambda x: x[0])
            buf.extend(f"{line}\n" * copies for _, line, copies in lines)
        if len(buf) > 20_000:
            out.write("".join(buf).encode())
            buf.clear()
    out.write("".join(buf).encode())
    out.flush()

    if sorter:
        sorter.stdin.close()
        if sorter.wait() != 0 or cutter.wait() != 0:
            sys.exit("gen-history: sort | cut failed")

    buyers = sum(1 for n in counts if n)
    ones = sum(1 for n in counts if n == 1)
    ranked = sorted(counts, reverse=True)
    top = sum(ranked[: a.customers // 4])
    total = sum(counts) or 1
    print(
        f"gen-history: {a.customers} customers ({buyers} buyers), {sum(counts)} orders, "
        f"{totals[0]} partial + {totals[1]} full refunds, {totals[2]} profile updates, "
        f"{totals[3]} consent changes; {rows_out} rows: {malformed} malformed, {duplicated} "
        f"duplicated; one-time buyers {ones / max(buyers, 1):.1%} of buyers, top quarter of "
        f"customers {top / total:.1%} of orders; {a.order} order, ending "
        f"{clock.iso(end)}; {time.monotonic() - started:.0f} s",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
