"""Writes the golden file that edgeqc's doctest checks its forward, backward, BatchNorm and optimizers against.

Everything is float64 PyTorch, so the file measures edgeqc's float32 error and not the reference's.
Usage: /usr/bin/python3 tests/golden/make_golden.py tests/golden/golden_v1.txt
"""

import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from torch_ref import build_network, init_he_  # noqa: E402  (one spec parser for the golden file and the benchmark)

FORMAT_VERSION = 1
SEED = 1234
CURVE_STEPS = 10

# (name, spec, input N x C x H x W, class weights); num_classes = len(class weights).
# Odd sizes on purpose: floor-mode pooling drops a row and a column, strided "same" conv has a ragged edge.
NETS = [
    ("bn_pool_dense", "c5bn-p-c6v-fc7-fc", (3, 3, 9, 11), [1.0, 2.0, 0.5, 1.5]),
    ("stride_gap", "c4k5s2-gap-fc", (2, 1, 13, 17), [1.0, 3.0, 0.5]),
]

OPTIMIZERS = {
    "adam": lambda params: torch.optim.Adam(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8),
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1),
    "sgd": lambda params: torch.optim.SGD(params, lr=0.05, momentum=0.9),
}


def write_tensor(out, name, tensor):
    values = tensor.detach().reshape(-1).tolist()
    out.write(f"tensor {name} {tensor.dim()} {' '.join(str(d) for d in tensor.shape)}\n")
    out.write(" ".join("%.17g" % v for v in values) + "\n")


def batch_norms(model):
    return [m for m in model if isinstance(m, nn.BatchNorm2d)]


def loss_curve(initial_model, make_optimizer, x, labels):
    """Loss before each of CURVE_STEPS full-batch training steps, and the trained model."""
    model = copy.deepcopy(initial_model)
    model.train()
    optimizer = make_optimizer(model.parameters())
    losses = []
    for _ in range(CURVE_STEPS):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return torch.tensor(losses), model


def write_net(out, name, spec, input_shape, class_weights):
    torch.manual_seed(SEED)
    num_classes = len(class_weights)
    x = torch.randn(*input_shape)
    labels = torch.randint(0, num_classes, (input_shape[0],))
    while labels.unique().numel() < 2:  # a single class would leave the softmax gradient degenerate
        labels = torch.randint(0, num_classes, (input_shape[0],))
    model = build_network(spec, input_shape[1:], num_classes)
    init_he_(model)
    initial_model = copy.deepcopy(model)

    out.write(f"net {name} {spec} {num_classes}\n")
    write_tensor(out, "input", x)
    write_tensor(out, "labels", labels.double())
    for i, param in enumerate(model.parameters()):
        write_tensor(out, f"param.{i}", param)

    model.train()
    x_leaf = x.clone().requires_grad_()
    logits = model(x_leaf)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    write_tensor(out, "logits", logits)
    write_tensor(out, "loss", loss.reshape(1))
    for i, param in enumerate(model.parameters()):
        write_tensor(out, f"grad.param.{i}", param.grad)
    write_tensor(out, "grad.input", x_leaf.grad)
    for j, bn in enumerate(batch_norms(model)):
        write_tensor(out, f"bn.{j}.running_mean", bn.running_mean)
        write_tensor(out, f"bn.{j}.running_var", bn.running_var)

    weights = torch.tensor(class_weights)
    weighted_logits = logits.detach().requires_grad_()
    weighted_loss = F.cross_entropy(weighted_logits, labels, weight=weights)
    weighted_loss.backward()
    write_tensor(out, "class_weights", weights)
    write_tensor(out, "weighted_loss", weighted_loss.reshape(1))
    write_tensor(out, "grad.weighted.logits", weighted_logits.grad)

    for optimizer_name, make_optimizer in OPTIMIZERS.items():
        curve, trained = loss_curve(initial_model, make_optimizer, x, labels)
        write_tensor(out, f"curve.{optimizer_name}", curve)
        if optimizer_name == "adam":
            for i, param in enumerate(trained.parameters()):
                write_tensor(out, f"adam.final.param.{i}", param)
            # Running stats after CURVE_STEPS training forwards; eval_logits depend on them.
            for j, bn in enumerate(batch_norms(trained)):
                write_tensor(out, f"adam.final.bn.{j}.running_mean", bn.running_mean)
                write_tensor(out, f"adam.final.bn.{j}.running_var", bn.running_var)
            trained.eval()
            with torch.no_grad():
                write_tensor(out, "eval_logits", trained(x))
    out.write("end\n")


def main(path):
    torch.set_default_dtype(torch.float64)
    with open(path, "w") as out:
        out.write(f"edgeqc-golden {FORMAT_VERSION}\n")
        for net in NETS:
            write_net(out, *net)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
