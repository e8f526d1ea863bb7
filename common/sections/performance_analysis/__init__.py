"""batch-size and precision sweeps, inference latency and throughput"""
