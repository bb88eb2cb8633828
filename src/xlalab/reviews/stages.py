"""The reviews pipeline: the shared text-classification stages on 3-class review sentiment."""
from ..textclf.stages import TextProject, make_stages
from .data import LABELS, download

PROJECT = TextProject(name="reviews", labels=LABELS, download=download, word_clouds=True)
STAGES = make_stages(PROJECT)
