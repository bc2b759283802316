"""PyTorch side of the int8 speed benchmark: its own static post-training int8 model of the same network.

Eager-mode torch.ao.quantization, as PyTorch documents it: conv + batch norm + ReLU and linear + ReLU fused, observers
calibrated on random inputs, converted, then traced and frozen; for every quantized backend this PyTorch build offers
(fbgemm, x86, onednn, qnnpack), since which is fastest depends on the CPU. Prints `key value` lines:
int8_<backend>_b1_img_per_s and int8_<backend>_b32_img_per_s (a backend that fails to run prints why instead).
Usage: /usr/bin/python3 bench/torch_quantized.py [--arch SPEC] [--threads 2] [--seconds 5]
"""

import argparse
import copy

import torch
import torch.ao.quantization as tq
from torch import nn

from torch_ref import ROBUST_DEFAULT_ARCH, build_network, init_he_
from torch_throughput import CLASSES, IN_SHAPE, JIT_WARMUP_CALLS, SEED, time_per_call

BATCH = 32


def fusion_groups(model):
    """Names of the module runs eager quantization fuses: conv [+ bn] + relu, linear + relu."""
    modules = list(model.named_children())
    groups = []
    for i, (name, module) in enumerate(modules):
        kinds = [type(m) for _, m in modules[i:i + 3]]
        if isinstance(module, nn.Conv2d):
            if kinds[1:3] == [nn.BatchNorm2d, nn.ReLU]:
                groups.append([name, modules[i + 1][0], modules[i + 2][0]])
            elif kinds[1:2] == [nn.ReLU]:
                groups.append([name, modules[i + 1][0]])
        elif isinstance(module, nn.Linear) and kinds[1:2] == [nn.ReLU]:
            groups.append([name, modules[i + 1][0]])
    return groups


def quantized_model(model, backend, calibration):
    torch.backends.quantized.engine = backend
    fused = tq.fuse_modules(copy.deepcopy(model).eval(), fusion_groups(model))
    wrapped = nn.Sequential(tq.QuantStub(), fused, tq.DeQuantStub()).eval()
    wrapped.qconfig = tq.get_default_qconfig(backend)
    prepared = tq.prepare(wrapped)
    with torch.inference_mode():
        prepared(calibration)
    return tq.convert(prepared)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=ROBUST_DEFAULT_ARCH)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum measuring time per figure")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(SEED)
    model = build_network(args.arch, IN_SHAPE, CLASSES)
    init_he_(model)
    model.eval()
    images = torch.randn(BATCH, *IN_SHAPE)
    backends = [b for b in torch.backends.quantized.supported_engines if b != "none"]
    print(f"torch int8: torch {torch.__version__}, {args.arch}, {'x'.join(map(str, IN_SHAPE))} input, "
          f"{torch.get_num_threads()} threads, backends {' '.join(backends)}")
    for backend in backends:
        try:
            quantized = quantized_model(model, backend, images)
            for batch in (images[:1], images):
                with torch.inference_mode():
                    frozen = torch.jit.freeze(torch.jit.trace(quantized, batch))
                    seconds, calls = time_per_call(lambda: frozen(batch), args.seconds, JIT_WARMUP_CALLS)
                print(f"int8_{backend}_b{len(batch)}_img_per_s {len(batch) / seconds:.2f}  "
                      f"({calls} x batch {len(batch)} in {seconds * calls:.1f} s)")
        except Exception as error:  # a backend this CPU or build cannot run: say so, go on with the others
            print(f"int8_{backend} failed: {str(error).splitlines()[0]}")


if __name__ == "__main__":
    main()
