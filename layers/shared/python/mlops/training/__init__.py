"""Training: fit a spec's pipeline, search, evaluate, gate, export to ONNX, and the training
pipeline's steps and runs."""
