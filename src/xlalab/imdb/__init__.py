"""IMDb-style binary sentiment (negative/positive): fine-tune a pretrained encoder, judged by F1.

Sources: Hugging Face ``stanfordnlp/imdb``, the Kaggle "IMDB Dataset of 50K Movie Reviews" CSV,
``local`` files in either format, and an offline default (Rotten Tomatoes fresh/rotten snippets).
"""
