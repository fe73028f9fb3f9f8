"""The tabular (XGBoost / scikit-learn) workload behind preprocess.py, train.py, evaluate.py, inference.py."""
