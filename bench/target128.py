"""CPU latency of the 128 px architecture that `scripts/train_bundled.sh gpu128` trains (random weights).

    python bench/target128.py [--threads 2]

Prints the same table as `glean-hub bench` for 8x, 16x and 32x at batch 1 and 4: reference fp32 vs fast fp32.
"""

import argparse

import torch

from glean_hub.bench import bench_model, format_table, random_model, settings_for
from glean_hub.config import BankConfig, GLEANConfig

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)
# the widths of the gpu128 profile in scripts/train_bundled.sh
bank = BankConfig(out_size=128, style_channels=256, num_mlps=8, channel_multiplier=0.5, channel_max=256)
rows = []
for scale in (8, 16, 32):
    config = GLEANConfig(in_size=128 // scale, bank=bank, rrdb_channels=64, num_rrdbs=8, rrdb_growth=32, decoder_channels=64)
    rows += bench_model(random_model(config, "cpu"), f"gpu128_{scale}x", settings_for(["fp32"]), [1, 4], "cpu", repeats=5)
print(format_table(rows))
