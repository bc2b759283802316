#!/usr/bin/env python3
"""Compares edgeqc and PyTorch over independent seeds of bench/accuracy.sh: per-seed table, means, a rank test and
a bootstrap interval for the difference of the means.

Seed N of edgeqc and seed N of PyTorch share no random draws, so the runs are two independent samples: the rank
test is Mann-Whitney's (exact, by enumerating every split of the pooled runs, up to 11 seeds per engine), not a sign
test over seed pairs.

With --replay STREAMS_DIR it also pairs each edgeqc run with PyTorch trained from that run's own draws
(STREAMS_DIR/replayN.json from torch_ref.py --replay-streams, see bench/RESULTS.md): those pairs share every random
draw, so their differences measure the engines alone (Wilcoxon signed-rank test, exact up to 17 seeds, and a
bootstrap interval of the mean difference). Comparing the replays with PyTorch's own runs then measures the draws
alone: same engine, edgeqc's initialisation and shuffling against PyTorch's.

Usage: /usr/bin/python3 bench/seed_compare.py SET OUT_DIR... [--metric macro_f1|accuracy|balanced_accuracy]
           [--replay STREAMS_DIR]
Each OUT_DIR is an accuracy.sh output folder holding SET.eval.json (edgeqc) and SET.torch.json (PyTorch).
"""
import argparse
import itertools
import json
import math
import os
import sys

import numpy as np


def load_runs(data_set, out_dirs, metric):
    rows = []
    for out_dir in out_dirs:
        edgeqc_path = os.path.join(out_dir, data_set + ".eval.json")
        torch_path = os.path.join(out_dir, data_set + ".torch.json")
        if not (os.path.isfile(edgeqc_path) and os.path.isfile(torch_path)):
            print(f"skip {out_dir}: needs {data_set}.eval.json and {data_set}.torch.json", file=sys.stderr)
            continue
        with open(edgeqc_path) as edgeqc_file, open(torch_path) as torch_file:
            edgeqc_run, torch_run = json.load(edgeqc_file), json.load(torch_file)
        rows.append((out_dir, torch_run["arguments"]["seed"], edgeqc_run[metric], torch_run["test"][metric]))
    return rows


# Beyond this many splits (11 seeds per engine) the p-value comes from that many random splits instead of all.
MAX_EXACT_SPLITS = 200_000


def mid_ranks(values):
    """Ranks from 1, tied values sharing the mean of their ranks."""
    ranks = np.empty(len(values))
    ranks[values.argsort(kind="stable")] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def mann_whitney(a, b):
    """Two-sided p-value of the rank-sum statistic (mid-ranks for ties) over the splits of the pooled runs: all of
    them (exact) up to MAX_EXACT_SPLITS, otherwise that many seeded random ones. Returns U, p and whether exact."""
    pooled = np.concatenate([a, b])
    ranks = mid_ranks(pooled)
    observed = ranks[: len(a)].sum()
    expected = len(a) * (len(pooled) + 1) / 2
    exact = math.comb(len(pooled), len(a)) <= MAX_EXACT_SPLITS
    if exact:
        splits = itertools.combinations(range(len(pooled)), len(a))
        sums = np.array([ranks[list(split)].sum() for split in splits])
    else:
        rng = np.random.default_rng(0)
        sums = np.array([rng.permutation(ranks)[: len(a)].sum() for _ in range(MAX_EXACT_SPLITS)])
    p_value = np.mean(np.abs(sums - expected) >= abs(observed - expected) - 1e-9)
    u_statistic = observed - len(a) * (len(a) + 1) / 2
    return u_statistic, p_value, exact


def wilcoxon_signed_rank(differences):
    """Two-sided p-value of the signed-rank statistic (zero differences dropped, mid-ranks for ties) over the 2^n
    sign assignments: all of them (exact) up to MAX_EXACT_SPLITS, otherwise that many seeded random ones. Returns
    W+ (rank sum of the positive differences), p and whether exact."""
    differences = differences[differences != 0]
    ranks = mid_ranks(np.abs(differences))
    observed = ranks[differences > 0].sum()
    expected = ranks.sum() / 2
    exact = 2 ** len(ranks) <= MAX_EXACT_SPLITS
    if exact:
        signs = (np.arange(2 ** len(ranks))[:, None] >> np.arange(len(ranks))) & 1
    else:
        signs = np.random.default_rng(0).integers(0, 2, (MAX_EXACT_SPLITS, len(ranks)))
    sums = signs @ ranks
    return observed, np.mean(np.abs(sums - expected) >= abs(observed - expected) - 1e-9), exact


def bootstrap_interval(a, b, resamples=20000, seed=0):
    rng = np.random.default_rng(seed)
    differences = (rng.choice(a, (resamples, len(a))).mean(axis=1) - rng.choice(b, (resamples, len(b))).mean(axis=1))
    return np.percentile(differences, [2.5, 97.5])


def paired_bootstrap_interval(differences, resamples=20000, seed=0):
    rng = np.random.default_rng(seed)
    return np.percentile(rng.choice(differences, (resamples, len(differences))).mean(axis=1), [2.5, 97.5])


def compare_with_replays(rows, streams_dir, metric):
    """Prints the paired comparison (edgeqc against PyTorch from the same draws) and the draws comparison (PyTorch
    from edgeqc's draws against PyTorch from its own) over the seeds that have a replay."""
    pairs = []
    for _, seed, edgeqc_value, torch_value in sorted(rows, key=lambda row: row[1]):
        replay_path = os.path.join(streams_dir, f"replay{seed}.json")
        if not os.path.isfile(replay_path):
            print(f"skip seed {seed} in the paired test: no {replay_path}", file=sys.stderr)
            continue
        with open(replay_path) as replay_file:
            pairs.append((seed, edgeqc_value, json.load(replay_file)["test"][metric], torch_value))
    if len(pairs) < 2:
        raise SystemExit(f"--replay: need at least two seeds with a replay in {streams_dir}")
    print("\n| seed | edgeqc | PyTorch from edgeqc's draws | edgeqc - replay | PyTorch from its own draws |")
    print("|---:|---:|---:|---:|---:|")
    for seed, edgeqc_value, replay_value, torch_value in pairs:
        print(f"| {seed} | {edgeqc_value:.4f} | {replay_value:.4f} | {edgeqc_value - replay_value:+.4f} | {torch_value:.4f} |")
    edgeqc_values, replay_values, torch_values = (np.array([pair[i] for pair in pairs]) for i in (1, 2, 3))
    differences = edgeqc_values - replay_values
    low, high = paired_bootstrap_interval(differences)
    w_statistic, p_value, exact = wilcoxon_signed_rank(differences)
    print(f"\nengines, same draws ({len(pairs)} seeds): edgeqc - PyTorch mean {differences.mean():+.4f}  "
          f"sd {differences.std(ddof=1):.4f}, bootstrap 95 % interval [{low:+.4f}, {high:+.4f}], "
          f"Wilcoxon W+ = {w_statistic:.1f}, {'exact' if exact else 'sampled'} two-sided p = {p_value:.3f}")
    low, high = bootstrap_interval(replay_values, torch_values)
    u_statistic, p_value, exact = mann_whitney(replay_values, torch_values)
    print(f"draws, same engine (PyTorch): edgeqc's draws mean {replay_values.mean():.4f} (sd {replay_values.std(ddof=1):.4f}) "
          f"- its own draws mean {torch_values.mean():.4f} (sd {torch_values.std(ddof=1):.4f}) = "
          f"{replay_values.mean() - torch_values.mean():+.4f}, bootstrap 95 % interval [{low:+.4f}, {high:+.4f}], "
          f"Mann-Whitney U = {u_statistic:.1f}, {'exact' if exact else 'sampled'} two-sided p = {p_value:.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_set")
    parser.add_argument("out_dirs", nargs="+")
    parser.add_argument("--metric", default="macro_f1", choices=("macro_f1", "accuracy", "balanced_accuracy"))
    parser.add_argument("--replay", metavar="STREAMS_DIR",
                        help="pair each edgeqc run with STREAMS_DIR/replayN.json, PyTorch trained from its draws")
    args = parser.parse_args()

    rows = load_runs(args.data_set, args.out_dirs, args.metric)
    if len(rows) < 2:
        raise SystemExit("need at least two seeds with both engines' results")
    print(f"| seed | edgeqc {args.metric} | PyTorch {args.metric} | folder |")
    print("|---:|---:|---:|---|")
    for out_dir, seed, edgeqc_value, torch_value in sorted(rows, key=lambda row: row[1]):
        print(f"| {seed} | {edgeqc_value:.4f} | {torch_value:.4f} | {out_dir} |")
    edgeqc_values = np.array([row[2] for row in rows])
    torch_values = np.array([row[3] for row in rows])
    u_statistic, p_value, exact = mann_whitney(edgeqc_values, torch_values)
    low, high = bootstrap_interval(edgeqc_values, torch_values)
    print(f"\n{len(rows)} seeds per engine")
    print(f"edgeqc  mean {edgeqc_values.mean():.4f}  sd {edgeqc_values.std(ddof=1):.4f}")
    print(f"PyTorch mean {torch_values.mean():.4f}  sd {torch_values.std(ddof=1):.4f}")
    print(f"edgeqc - PyTorch: {edgeqc_values.mean() - torch_values.mean():+.4f}, "
          f"bootstrap 95 % interval [{low:+.4f}, {high:+.4f}]")
    print(f"Mann-Whitney U (edgeqc) = {u_statistic:.1f} of {len(rows) ** 2}, {'exact' if exact else 'sampled'} two-sided p = {p_value:.3f}")
    if args.replay:
        compare_with_replays(rows, args.replay, args.metric)


if __name__ == "__main__":
    main()
