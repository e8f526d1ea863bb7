"""device and host utilization over the whole run, per stage"""
