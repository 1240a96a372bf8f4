"""`python -m imagen_video.train CONFIG.yaml ...` (what torchrun runs): the `train` subcommand."""

import sys

from imagen_video.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
