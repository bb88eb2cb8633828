"""Shared text classification: fine-tune a pretrained encoder with a classification head.

The ``imdb`` (binary) and ``reviews`` (3-class) projects are thin layers over this package: each
brings its data connectors and a ``TextProject`` description; the stages themselves live here.

Modules:
- ``corpus``: checked tables of (text, label), the offline Rotten Tomatoes corpus, data cards.
- ``features``: tokenisation to a fixed length, subsampling, the cached feature file.
- ``model``: resolving the model name or path, loading it, freezing layers, the loop's Task.
- ``baselines``: majority class, TF-IDF + logistic regression, frozen embeddings + logistic regression.
- ``figures``: the plots.
- ``stages``: download, featurize, train, evaluate, plot for any ``TextProject``.
"""
