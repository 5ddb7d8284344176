#!/usr/bin/python3
"""Writes a subset of Fashion-MNIST as the CSV table the fashion-torch app
ingests: a header `label,px0,...,px783`, then one row per image, the label
(0-9) and the 784 pixels row by row, each scaled to [0, 1] (pixel / 255,
written with 6 significant digits), which are the model's features.

Reads the IDX files of Debian's dataset-fashion-mnist
(/usr/share/datasets/fashion-mnist/*-idx?-ubyte.gz) with gzip, struct and
numpy. The rows are a random subset (numpy seed `--seed`) of the training
images, or of the test images with `--source t10k`; the same arguments
give the same file, byte for byte.

    /usr/bin/python3 prepare.py OUTPUT.csv [--rows 20000] [--seed 1]
                                [--source train|t10k]

The file is written beside OUTPUT and renamed into place, so a Slipway
server watching it (`trigger: {on: [new_data]}`) never reads half of it.
"""

import argparse
import gzip
import os
import struct
import sys

import numpy as np

DATA_DIR = "/usr/share/datasets/fashion-mnist"
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def read_idx(path, magic, item_dims):
    """The uint8 array stored in the gzipped IDX file `path`, whose items
    have `item_dims` dimensions (2 for images, 0 for labels)."""
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        sys.exit("prepare.py: cannot read %s (%s); install Debian's "
                 "dataset-fashion-mnist" % (path, e))
    header = ">%dI" % (2 + item_dims)
    fields = struct.unpack_from(header, data)
    if fields[0] != magic:
        sys.exit("prepare.py: %s is not an IDX file of %d-dimensional "
                 "items (magic %d, expected %d)" %
                 (path, item_dims, fields[0], magic))
    shape = fields[1:]
    items = np.frombuffer(data, dtype=np.uint8,
                          offset=struct.calcsize(header))
    if items.size != int(np.prod(shape)):
        sys.exit("prepare.py: %s holds %d bytes of items, its header says "
                 "%s" % (path, items.size, "x".join(map(str, shape))))
    return items.reshape(shape)


def main():
    parser = argparse.ArgumentParser(
        description="Write a Fashion-MNIST subset as a CSV table "
                    "(label, px0..px783 scaled to [0, 1]).")
    parser.add_argument("output", help="the CSV file to write")
    parser.add_argument("--rows", type=int, default=20000,
                        help="images to write (default 20000)")
    parser.add_argument("--seed", type=int, default=1,
                        help="seed of the random subset (default 1)")
    parser.add_argument("--source", choices=("train", "t10k"),
                        default="train",
                        help="the training images (60,000) or the test "
                             "images (10,000)")
    args = parser.parse_args()

    images = read_idx(os.path.join(DATA_DIR, args.source +
                                   "-images-idx3-ubyte.gz"), IMAGES_MAGIC, 2)
    labels = read_idx(os.path.join(DATA_DIR, args.source +
                                   "-labels-idx1-ubyte.gz"), LABELS_MAGIC, 0)
    if len(images) != len(labels):
        sys.exit("prepare.py: %d images but %d labels in %s" %
                 (len(images), len(labels), args.source))
    if not 1 <= args.rows <= len(images):
        sys.exit("prepare.py: --rows must be between 1 and %d, got %d" %
                 (len(images), args.rows))
    chosen = np.random.default_rng(args.seed).permutation(
        len(images))[:args.rows]
    pixels = images.reshape(len(images), -1)

    # Every cell is one of 256 texts: format each once.
    text = np.array(["%.6g" % (v / 255.0) for v in range(256)], dtype=object)
    tmp = args.output + ".tmp"
    with open(tmp, "w") as f:
        f.write("label," + ",".join("px%d" % i
                                    for i in range(pixels.shape[1])) + "\n")
        for i in chosen:
            f.write("%d,%s\n" % (labels[i], ",".join(text[pixels[i]])))
    os.replace(tmp, args.output)
    print("wrote %s: %d %s images, %d pixel columns" %
          (args.output, len(chosen), args.source, pixels.shape[1]))


if __name__ == "__main__":
    main()
