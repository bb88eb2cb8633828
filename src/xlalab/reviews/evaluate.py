"""reviews's evaluate stage is the text-classification family's: ``textclf/evaluate.py``."""

from ..core import launch
from ..textclf.evaluate import evaluate
from .project import PROJECT

__all__ = ["evaluate"]

if __name__ == "__main__":
    launch.main(PROJECT, "evaluate", evaluate)
