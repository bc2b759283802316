"""PyTorch reference for edgeqc's accuracy benchmark: the same spec grammar, preprocessing, split and schedule.

Its numbers answer "how well should this net do on this data?"; it does not try to reproduce edgeqc's random
streams (init, shuffling), so single runs differ by seed noise, not by method. Also the spec parser that
tests/golden/make_golden.py imports.
"""

import argparse
import copy
import ctypes
import ctypes.util
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm"}
STATS_MAX_IMAGES = 512
STD_FLOOR = 1e-3
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
SGD_MOMENTUM = 0.9
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
ROBUST_DEFAULT_ARCH = "c32bn-p-c64bn-p-c512bn-p-c512bn-p-c256bn-p-fc"

# ---------------------------------------------------------------------------------------------------------------
# Network spec grammar (kept token for token in step with edgeqc's C++ parser)
# ---------------------------------------------------------------------------------------------------------------

CONV_TOKEN = re.compile(r"c(\d+)(?:k(\d+))?(?:s(\d+))?(v)?(bn)?")
POOL_TOKEN = re.compile(r"p(\d+)?(?:s(\d+))?")
DENSE_TOKEN = re.compile(r"fc(\d+)?")
DROP_TOKEN = re.compile(r"drop(\d*\.?\d+)")


class GlobalAvgPool(nn.Module):
    """N x C x H x W -> N x C."""

    def forward(self, x):
        return x.mean(dim=(2, 3))


def build_network(spec, in_shape, num_classes):
    """Turn a spec such as 'c32bn-p-fc' into an nn.Sequential for inputs of shape in_shape = (C, H, W).

    Module order equals edgeqc's parameter-arena order, so list(model.parameters()) lines up with the arena.
    """
    tokens = spec.split("-")
    if not tokens or tokens[-1] != "fc":
        raise ValueError(f"spec '{spec}' must end with the classifier token 'fc'")
    channels, height, width = in_shape
    flat = None  # feature count once the activations are N x F; None while they are N x C x H x W
    layers = []
    for position, token in enumerate(tokens):
        if m := CONV_TOKEN.fullmatch(token):
            if flat is not None:
                raise ValueError(f"'{token}': convolution after the activations were flattened")
            filters, kernel = int(m[1]), int(m[2] or 3)
            stride, valid, batch_norm = int(m[3] or 1), m[4] is not None, m[5] is not None
            padding = 0 if valid else kernel // 2
            layers.append(nn.Conv2d(channels, filters, kernel, stride=stride, padding=padding, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(filters, eps=BN_EPS, momentum=BN_MOMENTUM))
            layers.append(nn.ReLU())
            channels = filters
            height = (height + 2 * padding - kernel) // stride + 1
            width = (width + 2 * padding - kernel) // stride + 1
        elif m := POOL_TOKEN.fullmatch(token):
            if flat is not None:
                raise ValueError(f"'{token}': pooling after the activations were flattened")
            kernel = int(m[1] or 2)
            stride = int(m[2] or kernel)
            layers.append(nn.MaxPool2d(kernel, stride=stride))
            height = (height - kernel) // stride + 1
            width = (width - kernel) // stride + 1
        elif token == "gap":
            if flat is not None:
                raise ValueError("'gap' needs N x C x H x W activations")
            layers.append(GlobalAvgPool())
            flat = channels
        elif m := DENSE_TOKEN.fullmatch(token):
            is_classifier = m[1] is None
            if is_classifier and position != len(tokens) - 1:
                raise ValueError("the classifier token 'fc' must be the last token")
            if flat is None:
                layers.append(nn.Flatten())
                flat = channels * height * width
            outputs = num_classes if is_classifier else int(m[1])
            layers.append(nn.Linear(flat, outputs))
            if not is_classifier:
                layers.append(nn.ReLU())
            flat = outputs
        elif m := DROP_TOKEN.fullmatch(token):
            layers.append(nn.Dropout(float(m[1])))
        else:
            raise ValueError(f"unknown spec token '{token}' in '{spec}'")
        if height < 1 or width < 1:
            raise ValueError(f"'{token}' shrinks the {in_shape[1]}x{in_shape[2]} input to nothing")
    return nn.Sequential(*layers)


@torch.no_grad()
def init_he_(model):
    """edgeqc's default init: weights ~ N(0, sqrt(2 / fan_in)), biases 0, BN gamma 1 / beta 0 (torch's BN default)."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            module.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            if module.bias is not None:
                module.bias.zero_()


def replay_streams(prefix, model, train_count, epochs, parts):
    """Loads edgeqc's initial weights into model (arena order = parameter order) and returns its epoch orders,
    each only if named in parts ("init", "orders"); None instead of orders when they are not replayed."""
    if "init" in parts:
        load_initial_weights(prefix, model)
    if "orders" not in parts:
        return None
    orders = [[int(i) for i in line.split()] for line in open(prefix + ".orders.txt") if line.strip()]
    if len(orders) < epochs or any(sorted(order) != list(range(train_count)) for order in orders):
        raise SystemExit(f"{prefix}: needs {epochs} orders, each a permutation of the {train_count} training images")
    return orders


def load_initial_weights(prefix, model):
    entries = [line.split() for line in open(prefix + ".init.txt") if line.strip()]
    values = np.fromfile(prefix + ".init.f32", dtype="<f4")
    parameters = list(model.parameters())
    if len(entries) != len(parameters) or sum(int(count) for _, count in entries) != len(values):
        raise SystemExit(f"{prefix}: {len(entries)} tensors do not fit the network's {len(parameters)}")
    offset = 0
    with torch.no_grad():
        for (name, count), parameter in zip(entries, parameters):
            count = int(count)
            if count != parameter.numel():
                raise SystemExit(f"{prefix}: tensor {name} has {count} values, the network's has {parameter.numel()}")
            parameter.copy_(torch.from_numpy(values[offset:offset + count].copy()).view_as(parameter))
            offset += count


# ---------------------------------------------------------------------------------------------------------------
# Data: listing, decoding, resizing, split and normalisation exactly as edgeqc's data/ does it
# ---------------------------------------------------------------------------------------------------------------


def list_class_images(class_dir):
    """Image files under class_dir (recursive), hidden names skipped, sorted by their path as a string."""
    found = []
    for root, dirs, files in os.walk(class_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                found.append(os.path.join(root, name))
    return sorted(found)


def list_split(root, classes):
    """[(path, label)] for root/<class>/..., class-major in the given class order."""
    samples = []
    for label, name in enumerate(classes):
        samples += [(path, label) for path in list_class_images(os.path.join(root, name))]
    return samples


TJPF_RGB, TJPF_GRAY, TJCS_GRAY = 0, 6, 2  # turbojpeg.h


class Decoder:
    """The C++ engine's own decoders through ctypes, so pixels are bit-identical (IDCTs differ between JPEG
    libraries by +-1 grey level): libjpeg-turbo for JPEG, the very libstb the engine links for the rest."""

    def __init__(self):
        path = ctypes.util.find_library("stb") or "libstb.so.0"
        turbo_path = ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0"
        try:
            self.stb = ctypes.CDLL(path)
            self.turbo = ctypes.CDLL(turbo_path)
        except OSError as error:
            sys.exit(f"cannot load libstb or libturbojpeg ({error}); install Debian's libstb-dev and libturbojpeg0-dev")
        self.stb.stbi_load.restype = ctypes.POINTER(ctypes.c_ubyte)
        self.stb.stbi_load.argtypes = [ctypes.c_char_p] + [ctypes.POINTER(ctypes.c_int)] * 3 + [ctypes.c_int]
        self.stb.stbi_image_free.argtypes = [ctypes.c_void_p]
        self.stb.stbi_failure_reason.restype = ctypes.c_char_p
        t = self.turbo
        t.tjInitDecompress.restype = ctypes.c_void_p
        t.tjDecompressHeader3.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong] + [ctypes.POINTER(ctypes.c_int)] * 4
        t.tjDecompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p] + [ctypes.c_int] * 5
        t.tjGetErrorStr2.argtypes = [ctypes.c_void_p]
        t.tjGetErrorStr2.restype = ctypes.c_char_p
        self.handle = t.tjInitDecompress()

    def hwc(self, path):
        """H x W x stored-channels uint8 pixels of the file."""
        with open(path, "rb") as f:
            data = f.read()
        if data[:3] == b"\xff\xd8\xff":
            width, height, subsampling, colorspace = (ctypes.c_int() for _ in range(4))
            t = self.turbo
            if t.tjDecompressHeader3(self.handle, data, len(data), ctypes.byref(width), ctypes.byref(height),
                                     ctypes.byref(subsampling), ctypes.byref(colorspace)) != 0:
                raise RuntimeError(f"{path}: {t.tjGetErrorStr2(self.handle).decode()}")
            stored = 1 if colorspace.value == TJCS_GRAY else 3
            out = np.empty((height.value, width.value, stored), dtype=np.uint8)
            if t.tjDecompress2(self.handle, data, len(data), out.ctypes.data, width.value, 0, height.value,
                               TJPF_GRAY if stored == 1 else TJPF_RGB, 0) != 0:
                raise RuntimeError(f"{path}: {t.tjGetErrorStr2(self.handle).decode()}")
            return out
        width, height, stored = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        pixels = self.stb.stbi_load(os.fsencode(path), ctypes.byref(width), ctypes.byref(height),
                                    ctypes.byref(stored), 0)
        if not pixels:
            raise RuntimeError(f"{path}: {self.stb.stbi_failure_reason().decode()}")
        try:
            count = width.value * height.value * stored.value
            return np.ctypeslib.as_array(pixels, shape=(count,)).reshape(height.value, width.value, stored.value).copy()
        finally:
            self.stb.stbi_image_free(pixels)


def decode(decoder, path, channels):
    """channels x H x W float32 in [0, 1]; grey = 0.299 R + 0.587 G + 0.114 B, alpha dropped."""
    hwc = decoder.hwc(path)
    stored = hwc.shape[2]
    hwc = hwc.astype(np.float32) / np.float32(255.0)
    if stored < 3:  # grey or grey + alpha
        grey = hwc[None, :, :, 0]
        return np.repeat(grey, 3, axis=0) if channels == 3 else grey.copy()
    colour = hwc[:, :, :3]
    if channels == 3:
        return np.ascontiguousarray(colour.transpose(2, 0, 1))
    return (colour @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[None]


def resize_matrix(size_in, size_out):
    """size_out x size_in matrix: area averaging when shrinking, half-pixel bilinear when growing."""
    if size_out == size_in:
        return np.eye(size_in)
    matrix = np.zeros((size_out, size_in))
    for i in range(size_out):
        if size_out < size_in:
            # Same double-precision expressions as data/image.cpp, so the weights round identically.
            lo, hi = i * size_in / size_out, (i + 1) * size_in / size_out
            for j in range(int(math.floor(lo)), min(int(math.ceil(hi)), size_in)):
                matrix[i, j] = (min(j + 1, hi) - max(j, lo)) * (size_out / size_in)
        else:
            src = min(max((i + 0.5) * size_in / size_out - 0.5, 0.0), size_in - 1.0)
            j0 = int(math.floor(src))
            j1 = min(j0 + 1, size_in - 1)
            t = src - j0
            matrix[i, j0] += 1.0 - t
            matrix[i, j1] += t
    return matrix


class Resizer:
    """Caches the per-axis matrices: the datasets hold a few hundred distinct sizes at most."""

    def __init__(self, height, width):
        self.height, self.width, self.cache = height, width, {}

    def matrix(self, size_in, size_out):
        if (size_in, size_out) not in self.cache:
            self.cache[size_in, size_out] = resize_matrix(size_in, size_out)
        return self.cache[size_in, size_out]

    def __call__(self, image):
        rows = self.matrix(image.shape[1], self.height)
        cols = self.matrix(image.shape[2], self.width)
        return (rows @ image.astype(np.float64) @ cols.T).astype(np.float32)


def load_images(decoder, samples, channels, resizer):
    images = np.empty((len(samples), channels, resizer.height, resizer.width), dtype=np.float32)
    for index, (path, _) in enumerate(samples):
        images[index] = resizer(decode(decoder, path, channels))
    labels = np.array([label for _, label in samples], dtype=np.int64)
    return torch.from_numpy(images), torch.from_numpy(labels)


def split_validation(samples, num_classes, fraction):
    """Per class in sorted order, image i is held out iff floor((i+1) f) > floor(i f): evenly spread, deterministic."""
    train, val = [], []
    for label in range(num_classes):
        members = [sample for sample in samples if sample[1] == label]
        for i, sample in enumerate(members):
            (val if math.floor((i + 1) * fraction) > math.floor(i * fraction) else train).append(sample)
    return train, val


def channel_stats(images):
    """Per-channel mean and std (population) over up to STATS_MAX_IMAGES images picked at floor(k n / m)."""
    count = len(images)
    picked = min(count, STATS_MAX_IMAGES)
    subset = images[[k * count // picked for k in range(picked)]].double()
    mean = subset.mean(dim=(0, 2, 3))
    std = subset.std(dim=(0, 2, 3), unbiased=False).clamp(min=STD_FLOOR)
    return mean.float(), std.float()


# ---------------------------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------------------------


def learning_rate(step, base_lr, warmup_steps, total_steps, schedule):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "cosine":
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
    return base_lr


def make_optimizer(args, parameters):
    if args.optimizer == "sgd":
        # torch's SGD weight decay is coupled L2 (added to the gradient); there is no decoupled variant.
        return torch.optim.SGD(parameters, lr=args.lr, momentum=SGD_MOMENTUM, weight_decay=args.weight_decay)
    if args.weight_decay > 0:
        return torch.optim.AdamW(parameters, lr=args.lr, betas=ADAM_BETAS, eps=ADAM_EPS, weight_decay=args.weight_decay)
    return torch.optim.Adam(parameters, lr=args.lr, betas=ADAM_BETAS, eps=ADAM_EPS)


@torch.no_grad()
def predict(model, images, batch):
    model.eval()
    return torch.cat([model(images[i:i + batch]).argmax(dim=1) for i in range(0, len(images), batch)])


def classification_report(truth, predicted, classes):
    num_classes = len(classes)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)  # rows: true class, columns: predicted
    np.add.at(confusion, (truth.numpy(), predicted.numpy()), 1)
    per_class = []
    for c, name in enumerate(classes):
        hits, predicted_c, support = confusion[c, c], confusion[:, c].sum(), confusion[c, :].sum()
        precision = hits / predicted_c if predicted_c else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"class": name, "precision": float(precision), "recall": float(recall),
                          "f1": float(f1), "support": int(support)})
    present = [row for row in per_class if row["support"] > 0]
    return {
        "accuracy": float(np.trace(confusion) / max(1, confusion.sum())),
        "macro_f1": float(np.mean([row["f1"] for row in per_class])),
        # Classes absent from the test set have no recall to average.
        "balanced_accuracy": float(np.mean([row["recall"] for row in present])) if present else 0.0,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def parse_size(text):
    height, width = (int(part) for part in text.lower().split("x"))
    return height, width


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_root", help="folder with train/<class>/ and test/<class>/")
    parser.add_argument("--arch", default=ROBUST_DEFAULT_ARCH)
    parser.add_argument("--size", default="80x120", type=parse_size, help="HxW after resizing")
    parser.add_argument("--channels", type=int, choices=(1, 3), default=1)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam")
    parser.add_argument("--weight-decay", type=float, default=0.0, help="decoupled (AdamW) for adam, L2 for sgd")
    parser.add_argument("--warmup-epochs", type=int, default=0)
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    parser.add_argument("--init", choices=("he", "torch"), default="he")
    parser.add_argument("--val-split", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write arguments, history and test metrics to this file")
    parser.add_argument("--replay-streams", metavar="PREFIX",
                        help="start from edgeqc's initial weights and use its epoch orders, as written by "
                             "build/edgeqc_streams (PREFIX.init.txt, PREFIX.init.f32, PREFIX.orders.txt)")
    parser.add_argument("--replay-only", choices=("init", "orders"),
                        help="replay only edgeqc's initial weights or only its epoch orders (PyTorch draws the other)")
    return parser.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    height, width = args.size

    train_root, test_root = os.path.join(args.data_root, "train"), os.path.join(args.data_root, "test")
    classes = sorted(d for d in os.listdir(train_root)
                     if not d.startswith(".") and os.path.isdir(os.path.join(train_root, d)))
    train_samples, val_samples = split_validation(list_split(train_root, classes), len(classes), args.val_split)
    test_samples = list_split(test_root, classes)

    decoder, resizer = Decoder(), Resizer(height, width)
    started = time.perf_counter()
    train_x, train_y = load_images(decoder, train_samples, args.channels, resizer)
    val_x, val_y = load_images(decoder, val_samples, args.channels, resizer)
    test_x, test_y = load_images(decoder, test_samples, args.channels, resizer)
    mean, std = channel_stats(train_x)
    for images in (train_x, val_x, test_x):
        images.sub_(mean.view(1, -1, 1, 1)).div_(std.view(1, -1, 1, 1))
    print(f"classes {classes}; train {len(train_x)} val {len(val_x)} test {len(test_x)}; "
          f"mean {mean.tolist()} std {std.tolist()}; loaded in {time.perf_counter() - started:.1f} s", flush=True)

    model = build_network(args.arch, (args.channels, height, width), len(classes))
    if args.init == "he":
        init_he_(model)
    if args.replay_only and not args.replay_streams:
        raise SystemExit("--replay-only needs --replay-streams PREFIX")
    replayed = (args.replay_only,) if args.replay_only else ("init", "orders")
    epoch_orders = (replay_streams(args.replay_streams, model, len(train_x), args.epochs, replayed)
                    if args.replay_streams else None)
    optimizer = make_optimizer(args, model.parameters())
    shuffler = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = math.ceil(len(train_x) / args.batch)
    warmup_steps, total_steps = args.warmup_epochs * steps_per_epoch, args.epochs * steps_per_epoch

    history, best_val, best_state, step = [], -1.0, None, 0
    train_seconds = 0.0
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        model.train()
        loss_sum, correct = 0.0, 0
        order = (torch.tensor(epoch_orders[epoch - 1]) if epoch_orders is not None
                 else torch.randperm(len(train_x), generator=shuffler))
        for batch_indices in order.split(args.batch):
            lr = learning_rate(step, args.lr, warmup_steps, total_steps, args.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            logits = model(train_x[batch_indices])
            loss = F.cross_entropy(logits, train_y[batch_indices])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(batch_indices)
            correct += (logits.argmax(dim=1) == train_y[batch_indices]).sum().item()
            step += 1
        train_seconds += time.perf_counter() - epoch_start
        val_acc = (predict(model, val_x, args.batch) == val_y).float().mean().item() if len(val_x) else None
        if val_acc is not None and val_acc > best_val:
            best_val, best_state = val_acc, copy.deepcopy(model.state_dict())
        seconds = time.perf_counter() - epoch_start
        history.append({"epoch": epoch, "train_loss": loss_sum / len(train_x), "train_acc": correct / len(train_x),
                        "val_acc": val_acc, "lr": lr, "seconds": seconds})
        val_text = f"{val_acc:.4f}" if val_acc is not None else "-"
        print(f"epoch {epoch:3d}  train_loss {loss_sum / len(train_x):.4f}  train_acc {correct / len(train_x):.4f}  "
              f"val_acc {val_text}  lr {lr:.3g}  {seconds:.1f} s", flush=True)

    if best_state is not None:
        model.load_state_dict(best_state)
    test_start = time.perf_counter()
    test_pred = predict(model, test_x, args.batch)
    test_seconds = time.perf_counter() - test_start
    report = classification_report(test_y, test_pred, classes)

    mean_epoch = sum(h["seconds"] for h in history) / len(history)
    timing = {"mean_epoch_seconds": mean_epoch,
              "train_img_per_s": len(train_x) * args.epochs / train_seconds,
              "test_img_per_s": len(test_x) / test_seconds}
    chosen = f"best validation epoch (val_acc {best_val:.4f})" if best_state is not None else "last epoch"
    print(f"test ({chosen}): accuracy {report['accuracy']:.4f}  macro_f1 {report['macro_f1']:.4f}  "
          f"balanced_accuracy {report['balanced_accuracy']:.4f}")
    print(f"{'class':>28s} {'precision':>9s} {'recall':>7s} {'f1':>7s} {'support':>7s}")
    for row in report["per_class"]:
        print(f"{row['class']:>28s} {row['precision']:9.4f} {row['recall']:7.4f} {row['f1']:7.4f} {row['support']:7d}")
    print("confusion (rows: true, columns: predicted)")
    for name, row in zip(classes, report["confusion"]):
        print(f"{name:>28s} " + " ".join(f"{count:5d}" for count in row))
    print(f"mean epoch {mean_epoch:.2f} s  train {timing['train_img_per_s']:.1f} img/s  "
          f"test {timing['test_img_per_s']:.1f} img/s  threads {args.threads}")

    if args.json:
        arguments = {**vars(args), "size": f"{height}x{width}"}
        result = {"arguments": arguments, "torch_version": torch.__version__, "classes": classes,
                  "counts": {"train": len(train_x), "val": len(val_x), "test": len(test_x)},
                  "normalisation": {"mean": mean.tolist(), "std": std.tolist()},
                  "history": history, "best_val_acc": best_val if best_state is not None else None,
                  "test": report, "timing": timing}
        with open(args.json, "w") as out:
            json.dump(result, out, indent=1)


if __name__ == "__main__":
    main(sys.argv[1:])
