"""PyTorch's own post-training int8 quantization of an edgeqc float model, for the accuracy comparison with
`edgeqc quantize`: the same weights (read from the .eqc file), the same preprocessing (torch_ref.py's replica of
edgeqc's data path, normalised with the model's own mean and deviation), calibrated on up to 500 images of the
training folder (a seeded draw), evaluated on the test folder against the float model in PyTorch. Eager
torch.ao.quantization with the backend's default qconfig (per-channel weights, histogram activation observers),
conv + batch norm + ReLU fused. Prints one markdown row in bench/quantize_accuracy.sh's columns: set, backend, top-1
agreement, accuracy and macro-F1 of float and int8 (the float figures equal edgeqc's when the weights were read
right).
Usage: /usr/bin/python3 bench/torch_ptq_accuracy.py MODEL.eqc DATASET_DIR [--backend onednn] [--threads 2]
"""

import argparse
import os
import random
import struct

import numpy as np
import torch

from torch_quantized import quantized_model
from torch_ref import Decoder, Resizer, build_network, list_split, load_images

ROLE_ATTRIBUTES = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
                   "running_mean": "running_mean", "running_var": "running_var"}


class Reader:
    def __init__(self, data):
        self.data, self.at = data, 0

    def take(self, fmt):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def string(self):
        length = self.take("I")
        text = self.data[self.at:self.at + length].decode()
        self.at += length
        return text


def read_eqc(path):
    """(architecture, class names, (channels, height, width), mean, std, {tensor name: numpy array}) of a float
    .eqc model (format v1-v3 with f32 tensors; engine/model_file.cpp is the authority)."""
    data = open(path, "rb").read()
    if data[:8] != b"EQCMODEL":
        raise SystemExit(f"{path}: not an edgeqc model file")
    header = Reader(data[8:])
    version, sections = header.take("I"), header.take("I")
    found = {}
    for _ in range(sections):
        tag, length = header.take("I"), header.take("Q")
        found[struct.pack("<I", tag).decode()] = data[8 + header.at:8 + header.at + length]
        header.at += length
    meta = Reader(found["META"])
    architecture = meta.string()
    classes = [meta.string() for _ in range(meta.take("I"))]
    channels, height, width = meta.take("i"), meta.take("i"), meta.take("i")
    stats = meta.take("I")
    mean = [meta.take("f") for _ in range(stats)]
    std = [meta.take("f") for _ in range(stats)]
    tensors = {}
    tens = Reader(found["TENS"])
    for _ in range(tens.take("I")):
        name, kind, rank = tens.string(), tens.take("B"), tens.take("B")
        shape = [tens.take("I") for _ in range(rank)]
        if kind != 0:
            raise SystemExit(f"{path}: tensor '{name}' is not f32 (version {version}); give the float model")
        count = int(np.prod(shape))
        tensors[name] = np.frombuffer(tens.data, dtype="<f4", count=count, offset=tens.at).reshape(shape).copy()
        tens.at += 4 * count
    return architecture, classes, (channels, height, width), mean, std, tensors


def load_weights(model, tensors):
    modules = list(model.children())
    for name, values in tensors.items():
        layer, role = name.split(".", 1)
        getattr(modules[int(layer)], ROLE_ATTRIBUTES[role]).data.copy_(torch.from_numpy(values))


def macro_f1(truth, predicted, classes):
    scores = []
    for c in range(classes):
        tp = int(((predicted == c) & (truth == c)).sum())
        fp = int(((predicted == c) & (truth != c)).sum())
        fn = int(((predicted != c) & (truth == c)).sum())
        if tp + fp + fn:  # classes present in the labels or the predictions, as edgeqc (and scikit-learn)
            scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("dataset", help="a folder with train/ and test/ labelled folders")
    parser.add_argument("--backend", default="onednn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    architecture, classes, shape, mean, std, tensors = read_eqc(args.model)
    model = build_network(architecture, shape, len(classes))
    load_weights(model, tensors)
    model.eval()
    decoder, resizer = Decoder(), Resizer(shape[1], shape[2])
    train = list_split(os.path.join(args.dataset, "train"), classes)
    random.Random(args.seed).shuffle(train)
    calibration, _ = load_images(decoder, train[:args.images], shape[0], resizer)
    test_x, test_y = load_images(decoder, list_split(os.path.join(args.dataset, "test"), classes), shape[0], resizer)
    mean_t, std_t = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
    calibration, test_x = (calibration - mean_t) / std_t, (test_x - mean_t) / std_t
    quantized = quantized_model(model, args.backend, calibration)
    with torch.inference_mode():
        float_predicted = torch.cat([model(b) for b in test_x.split(64)]).argmax(1)
        int8_predicted = torch.cat([quantized(b) for b in test_x.split(64)]).argmax(1)
    agreement = (float_predicted == int8_predicted).float().mean().item()
    accuracy = [(p == test_y).float().mean().item() for p in (float_predicted, int8_predicted)]
    f1 = [macro_f1(test_y, p, len(classes)) for p in (float_predicted, int8_predicted)]
    name = os.path.basename(os.path.normpath(args.dataset))
    print(f"| {name} | PyTorch {torch.__version__} {args.backend} | {len(test_y)} | {100 * agreement:.2f} % | "
          f"{accuracy[0]:.4f} | {accuracy[1]:.4f} | {100 * (accuracy[1] - accuracy[0]):+.2f} | "
          f"{f1[0]:.4f} | {f1[1]:.4f} | {f1[1] - f1[0]:+.4f} |")


if __name__ == "__main__":
    main()
