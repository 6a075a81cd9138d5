"""Pack a category's images as square JPEG crops at the training resolution, for a small upload.

    python scripts/pack_data.py ../shared/data/faces .data/faces --resolution 128 --category faces

The GPU machine of the `device` tool cannot see ../shared and takes at most 64 MiB per call: pack one
category into an ignored folder (`echo /.data/ >> .git/info/exclude`), carry it, and train with
`--data .data/faces`. The folder's pack.json records the crop policy, so the model config still says
how its training crops were made. The images keep their licences: never commit them.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from glean_hub.train.data import default_crop_policy, pack_dataset  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("src", help="image folder with train/ and val/ (or flat)")
parser.add_argument("dst", help="output folder")
parser.add_argument("--resolution", type=int, default=128)
parser.add_argument("--category", help="picks the crop policy (faces: face, others: center)")
parser.add_argument("--crop-policy", choices=["center", "face", "pad"])
parser.add_argument("--quality", type=int, default=95, help="JPEG quality (default 95)")
args = parser.parse_args()
policy = default_crop_policy(args.crop_policy, args.category)
print(f"{pack_dataset(args.src, args.dst, args.resolution, policy, args.quality)} images -> {args.dst} ({policy} crops)")
