"""`python -m imagen_video.distill METHOD CONFIG.yaml` (what torchrun runs): the `distill` subcommand."""

import sys

from imagen_video.cli import main

if __name__ == "__main__":
    sys.exit(main(["distill", *sys.argv[1:]]))
