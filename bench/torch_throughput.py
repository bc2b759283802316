"""PyTorch side of the throughput benchmark: the figures of bench/throughput.cpp, measured the same way.

Training is eager (the way torch_ref.py trains); inference is frozen with jit.trace + freeze + optimize_for_inference,
which folds batch norm into the convolutions (as edgeqc does for inference) and runs them on oneDNN. Prints the same
`key value` lines as edgeqc_throughput so bench/throughput.sh can divide one by the other. It does not count FLOPs:
the network is the same, so edgeqc's GFLOP/s ratio equals its img/s ratio.
Usage: /usr/bin/python3 bench/torch_throughput.py [--arch SPEC] [--threads 2] [--seconds 10] [--figure all]
"""

import argparse
import resource
import time

import torch
import torch.nn.functional as F

from torch_ref import ADAM_BETAS, ADAM_EPS, ROBUST_DEFAULT_ARCH, build_network, init_he_

IN_SHAPE = (1, 80, 120)
CLASSES = 5
BATCH = 32
SEED = 1
LEARNING_RATE = 1e-4  # the rate throughput.cpp passes to its Adam step
# The JIT's profiling executor records shapes on a module's first call and builds its optimised plan on the
# second, so a frozen module needs two warm-up calls where eager code needs one.
JIT_WARMUP_CALLS = 2
# throughput.cpp's print order, kept so the two outputs read side by side.
FIGURE_ORDER = ("train_img_per_s", "infer_b32_img_per_s", "infer_b1_img_per_s", "peak_rss_mib_after_training")


def time_per_call(step, min_seconds, warmup_calls=1):
    """Runs step until at least min_seconds have passed (after the warm-up); returns (seconds per call, calls)."""
    for _ in range(warmup_calls):
        step()
    calls = 0
    start = time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls, calls


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def train_figures(model, images, labels, min_seconds):
    """{key: printed value} for training img/s and the peak RSS right after training."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, betas=ADAM_BETAS, eps=ADAM_EPS)

    def step():
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    seconds, calls = time_per_call(step, min_seconds)
    return {"train_img_per_s": f"{BATCH / seconds:.2f}  ({calls} x batch {BATCH} in {seconds * calls:.1f} s)",
            "peak_rss_mib_after_training": f"{peak_rss_mib():.0f}"}


def frozen_for_inference(model, example):
    # One trace per batch size: the frozen graph may specialise on the traced shape.
    with torch.no_grad():
        return torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, example)))


def infer_figures(model, images, min_seconds):
    """{key: printed value} for inference img/s at batch 32 and 1."""
    model.eval()
    figures = {}
    for key, batch in (("infer_b32_img_per_s", images), ("infer_b1_img_per_s", images[:1])):
        frozen = frozen_for_inference(model, batch)
        with torch.inference_mode():
            seconds, calls = time_per_call(lambda: frozen(batch), min_seconds, JIT_WARMUP_CALLS)
        figures[key] = (f"{len(batch) / seconds:.2f}  ({calls} x batch {len(batch)} in {seconds * calls:.1f} s, "
                        "jit trace + freeze + optimize_for_inference)")
    return figures


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=ROBUST_DEFAULT_ARCH)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0, help="minimum measuring time per figure")
    parser.add_argument("--figure", choices=("train", "infer", "all"), default="all",
                        help="figures to measure; throughput.sh measures train and infer in separate processes")
    return parser.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)  # edgeqc has no inter-op parallelism either
    torch.manual_seed(SEED)
    model = build_network(args.arch, IN_SHAPE, CLASSES)
    init_he_(model)
    images = torch.randn(BATCH, *IN_SHAPE)
    labels = torch.arange(BATCH) % CLASSES
    print(f"torch throughput: torch {torch.__version__}, {args.arch}, {'x'.join(map(str, IN_SHAPE))} input, "
          f"{torch.get_num_threads()} threads")
    figures = {}
    # Training first, as in throughput.cpp, so with --figure all the peak RSS still covers training only.
    if args.figure in ("train", "all"):
        figures.update(train_figures(model, images, labels, args.seconds))
    if args.figure in ("infer", "all"):
        figures.update(infer_figures(model, images, args.seconds))
    for key in FIGURE_ORDER:
        if key in figures:
            print(f"{key} {figures[key]}")


if __name__ == "__main__":
    main()
