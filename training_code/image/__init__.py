"""The image (PyTorch CNN, served with ONNX Runtime) workload behind the image_*.py scripts."""
