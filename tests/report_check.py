"""The figures of `billrun report --json`, computed by DuckDB from the same published
tables, in the same shape: decimals as the text of their mantissa at 10 places."""
import json
import sys
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import duckdb

lake, period = sys.argv[1], sys.argv[2]
con = duckdb.connect()


def t(name):
    return f"read_parquet('{lake}/{name}/billing_period={period}/part-0.parquet')"


def m(d):
    """The mantissa of a decimal at 10 places, as text."""
    return str(int((Decimal(d) if d is not None else Decimal(0)).scaleb(10)))


def rows(q):
    return con.execute(q).fetchall()


def half_up(x, places):
    """A fraction rounded half away from zero to `places` decimals."""
    q = Fraction(10) ** places
    n = abs(x) * q
    r = int(n) + (1 if n - int(n) >= Fraction(1, 2) else 0)
    return Fraction(r if x >= 0 else -r) / q


spend = []
invoices = rows(f"SELECT count(*) FROM {t('bills/invoices')}")[0][0]
for cur, due in rows(f"SELECT currency, sum(total_due) FROM {t('bills/invoices')} GROUP BY currency ORDER BY currency"):
    a = t("cost/analysis")
    daily = con.execute(
        f"SELECT strftime(date AT TIME ZONE 'UTC', '%Y-%m-%d'), sum(effective_cost) FROM {a} "
        f"WHERE currency = ? AND view = 'daily' AND date IS NOT NULL GROUP BY date ORDER BY date",
        [cur],
    ).fetchall()
    modules = con.execute(
        f"SELECT key, sum(effective_cost) s FROM {a} WHERE currency = ? AND view = 'composition' "
        f"AND dimension = 'module' GROUP BY key ORDER BY s DESC, key",
        [cur],
    ).fetchall()
    top = con.execute(
        f"SELECT key || ' (' || account_id || ')', effective_cost FROM {a} WHERE currency = ? "
        f"AND view = 'top_resources' ORDER BY effective_cost DESC, key, account_id LIMIT 15",
        [cur],
    ).fetchall()
    projects = con.execute(
        f"SELECT key, sum(effective_cost) s FROM {a} WHERE currency = ? AND view = 'allocation' "
        f"AND dimension = 'enterprise_project' GROUP BY key ORDER BY s DESC, key",
        [cur],
    ).fetchall()
    item = lambda r: {"label": r[0], "value": m(r[1])}
    spend.append({
        "currency": cur,
        "total_due": m(due),
        "daily": [item(r) for r in daily],
        "modules": [item(r) for r in modules],
        "top_resources": [item(r) for r in top],
        "projects": [item(r) for r in projects],
    })

util = []
for pkg, acc, opening, used in rows(
    f"SELECT package_id, account_id, opening_quota, used_quota FROM {t('bills/package_ledger')} WHERE opening_quota > 0"
):
    pct = half_up(half_up(Fraction(Decimal(used)) * 100 / Fraction(Decimal(opening)), 10), 1)
    util.append({"label": f"{pkg} ({acc})", "value": str(pct.numerator * 10**10 // pct.denominator)})
util.sort(key=lambda i: (int(i["value"]), i["label"]))

late = rows(
    f"SELECT account_id, status_at_close, currency, arrears_amount FROM {t('bills/invoices')} "
    f"WHERE status_at_close <> 'active'"
)
risk = rows(f"SELECT account_id, action FROM {t('cost/recommendations')} WHERE kind = 'arrears_risk'")
savings = rows(
    f"SELECT account_id, kind, action, estimated_saving, currency FROM {t('cost/recommendations')} "
    f"WHERE estimated_saving > 0 LIMIT 50"
)
print(json.dumps({
    "period": period,
    "invoices": invoices,
    "spend": spend,
    "package_utilization": util,
    "arrears": [{"label": f"{a} ({c})", "value": m(x)} for a, s, c, x in late],
    "at_risk_accounts": [r[0] for r in late] + [r[0] for r in risk],
    "at_risk_actions": [r[1] for r in risk],
    "savings": [[a, k, x, m(v), c] for a, k, x, v, c in savings],
}))
