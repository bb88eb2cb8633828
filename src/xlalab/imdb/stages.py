"""The imdb pipeline: the shared text-classification stages on binary movie-review sentiment."""
from ..textclf.stages import TextProject, make_stages
from .data import LABELS, download

PROJECT = TextProject(name="imdb", labels=LABELS, download=download, positive="positive")
STAGES = make_stages(PROJECT)
