"""housing: house-price regression on the Kaggle House Prices (Ames) data, with SHAP and LIME."""
