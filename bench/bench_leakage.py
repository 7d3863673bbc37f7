"""Time ``ferembed leakage`` at FER2013 size: 3,589 test faces against 28,709 train faces.

    python bench/bench_leakage.py [--n-a 3589] [--n-b 28709] [--runs RUN_A RUN_B]

Without ``--runs`` it times the two stages on synthetic data of the given sizes: the pHash of
every thumbnail (random 48 x 48 images; the cost per image does not depend on the content) and
the exact all-pairs Hamming search over the packed hashes. With ``--runs`` it times the whole
:func:`ferembed.runs.leakage.find_near_duplicates` on two real runs. Numbers depend on the machine
and its load (printed with them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ferembed.runs import leakage  # noqa: E402


def _timed(fn, *args, **kw):
    start = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-a", type=int, default=3589, help="samples of A (synthetic)")
    ap.add_argument("--n-b", type=int, default=28709, help="samples of B (synthetic)")
    ap.add_argument("--runs", nargs=2, metavar="RUN", help="time two real runs instead")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.runs:
        pairs, t = _timed(leakage.find_near_duplicates, *args.runs)
        print(f"find_near_duplicates: {t:.2f} s, {len(pairs)} pairs")
        return
    rng = np.random.default_rng(0)
    thumbs = rng.integers(0, 256, size=(args.n_b, 48, 48), dtype=np.uint8)
    hb, t_hash = _timed(leakage.thumbnail_hashes, thumbs)
    print(f"pHash of {args.n_b} thumbnails: {t_hash:.2f} s ({1e6 * t_hash / args.n_b:.0f} us each)")
    ha = hb[: args.n_a]
    (ia, _, _), t_search = _timed(leakage.hamming_pairs, ha, hb, leakage.DEFAULT_MAX_HAMMING)
    pairs = args.n_a * args.n_b
    print(f"exact search {args.n_a} x {args.n_b} = {pairs / 1e6:.0f} M pairs: {t_search:.2f} s")
    assert len(ia) >= args.n_a  # every row of A finds itself in B


if __name__ == "__main__":
    main()
