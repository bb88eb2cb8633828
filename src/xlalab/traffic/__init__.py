"""traffic: unsupervised network-traffic anomaly detection (Isolation Forest, an autoencoder, ECOD,
COPOD) on NSL-KDD and other intrusion data, judged by precision, recall and F1 against random scores
and flag-everything."""
