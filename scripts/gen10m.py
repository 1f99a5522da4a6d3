# python3 gen10m.py CUSTOMERS ORDERS_PER_CUSTOMER > history.jsonl
# One upsert per customer, then its orders spread over two years; every 10th customer's
# second order gets a partial refund.
import sys, datetime
n, k = int(sys.argv[1]), int(sys.argv[2])
base = datetime.datetime(2024, 9, 1, tzinfo=datetime.timezone.utc)
w = sys.stdout.write
for c in range(n):
    t = base + datetime.timedelta(seconds=c * 7)
    iso = lambda d: (t + datetime.timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ")
    w(f'{{"eventId":"h-{c}-c","occurredAt":"{iso(0)}","customerUpserted":{{"customerId":"H-{c}","email":"h{c}@example.com","country":"US","adUserData":"CONSENT_STATUS_GRANTED","adPersonalization":"CONSENT_STATUS_GRANTED"}}}}\n')
    for o in range(k):
        w(f'{{"eventId":"h-{c}-o{o}","occurredAt":"{iso((c + o * 61) % 700)}","orderPlaced":{{"orderId":"HO-{c}-{o}","customerId":"H-{c}","total":{{"amountMinor":"{1000 + (c * 31 + o * 17) % 9000}","currency":"USD"}},"itemCount":1}}}}\n')
    if c % 10 == 0 and k > 1:
        w(f'{{"eventId":"h-{c}-r","occurredAt":"{iso((c + 61) % 700 + 1)}","orderRefunded":{{"orderId":"HO-{c}-1","amountMinor":"500"}}}}\n')
