"""SpiderBench-offline: a real zoo, real tasks and measured ground truth, built from offline assets (see README.md)."""
