"""reviews's train stage is the text-classification family's: ``textclf/train.py``."""

from ..core import launch
from ..textclf.train import train
from .project import PROJECT

__all__ = ["train"]

if __name__ == "__main__":
    launch.main(PROJECT, "train", train)
