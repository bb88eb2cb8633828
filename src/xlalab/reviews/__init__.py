"""Three-class review sentiment (negative/neutral/positive): fine-tune a pretrained encoder, judged
by accuracy and macro-F1.

Sources: a Hugging Face star-rated review dataset (stars mapped 1-2 / 3 / 4-5 by params), ``local``
parquet/CSV, and an offline default (Rotten Tomatoes rotten / plot / fresh, where "neutral" means an
objective plot summary, not a lukewarm review).
"""
