"""The model and its data: the network, the prepared images, the feature cache and the feeds
built on it, training, LiteRT and the TFLite metadata."""
