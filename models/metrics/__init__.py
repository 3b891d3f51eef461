"""Image-quality metrics for trained generators: features from the standard FID Inception-v3
(`inception`; its network file is located and hash-checked without torch by
workers.shared.feature_network, which the API imports for /readyz), and the distances between feature
sets — FID, KID and precision/recall (`distances`). Nothing is imported here, so importing the package
costs nothing and pulls in no torch."""
