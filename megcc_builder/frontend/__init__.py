"""Model file readers: each turns one format into the Graph IR."""
