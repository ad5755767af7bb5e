"""SpiderBench v2: more targets, ground truth over fine-tuning seeds, sources disjoint from the zoo and training."""
