"""reviews's plot stage is the text-classification family's: ``textclf/figures.py``."""

from ..core import runner
from ..textclf.figures import plot
from .project import PROJECT

__all__ = ["plot"]

if __name__ == "__main__":
    runner.main(PROJECT, "plot", plot)
