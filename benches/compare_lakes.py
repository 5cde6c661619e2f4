"""Compares two output lakes table by table, value for value, with DuckDB.

usage: python3 benches/compare_lakes.py LAKE_A LAKE_B

Every Parquet file under either lake (but `_`-prefixed folders: locks, manifests,
rollback copies) must exist in both, with the same column names and types and the
same multiset of rows (EXCEPT ALL both ways). Page layout, row-group sizes and
encodings may differ; values may not. Exits 1 on the first difference it reports.
"""
import pathlib
import sys

import duckdb


def tables(root):
    root = pathlib.Path(root)
    return {
        str(p.relative_to(root))
        for p in root.rglob("*.parquet")
        if not any(part.startswith("_") for part in p.relative_to(root).parts)
    }


def main(a, b):
    con = duckdb.connect()
    ta, tb = tables(a), tables(b)
    bad = 0
    for t in sorted(ta ^ tb):
        print(f"only in {'A' if t in ta else 'B'}: {t}")
        bad += 1
    rows = 0
    for t in sorted(ta & tb):
        pa, pb = f"{a}/{t}", f"{b}/{t}"
        sa = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{pa}')").fetchall()
        sb = con.execute(f"DESCRIBE SELECT * FROM read_parquet('{pb}')").fetchall()
        if [(c[0], c[1]) for c in sa] != [(c[0], c[1]) for c in sb]:
            print(f"{t}: schemas differ")
            bad += 1
            continue
        n = con.execute(f"SELECT count(*) FROM read_parquet('{pa}')").fetchone()[0]
        m = con.execute(f"SELECT count(*) FROM read_parquet('{pb}')").fetchone()[0]
        diff = con.execute(
            f"SELECT count(*) FROM ((SELECT * FROM read_parquet('{pa}') EXCEPT ALL SELECT * FROM read_parquet('{pb}'))"
            f" UNION ALL (SELECT * FROM read_parquet('{pb}') EXCEPT ALL SELECT * FROM read_parquet('{pa}')))"
        ).fetchone()[0]
        if n != m or diff:
            print(f"{t}: {n} rows against {m}, {diff} differ")
            bad += 1
        rows += n
    print(f"{len(ta & tb)} tables, {rows} rows compared, {bad} differences")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
