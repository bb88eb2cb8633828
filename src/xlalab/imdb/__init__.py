"""IMDb-style binary sentiment (negative/positive): fine-tune a pretrained encoder, judged by the F1
of the positive class against the best baseline.

Sources: Hugging Face ``stanfordnlp/imdb``, the Kaggle "IMDB Dataset of 50K Movie Reviews" CSV,
``local`` files in either format, and an offline default (Rotten Tomatoes fresh/rotten snippets).
The stages after download are the text-classification family's (``xlalab.textclf``).
"""
