"""Three-class review sentiment (negative/neutral/positive): fine-tune a pretrained encoder, judged
by macro-F1 against the best baseline.

Sources: a Hugging Face star-rated review dataset (stars mapped 1-2 / 3 / 4-5 by params), ``local``
parquet/CSV, and an offline default (Rotten Tomatoes rotten / plot / fresh, where "neutral" means an
objective plot summary, not a lukewarm review). The stages after download are the
text-classification family's (``xlalab.textclf``).
"""
