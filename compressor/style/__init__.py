"""Style transfer, the flagship workload: loss network, perceptual losses, training."""
