"""reviews's featurize stage is the text-classification family's: ``textclf/features.py``."""

from ..core import runner
from ..textclf.features import featurize
from .project import PROJECT

__all__ = ["featurize"]

if __name__ == "__main__":
    runner.main(PROJECT, "featurize", featurize)
