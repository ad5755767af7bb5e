"""SpiderBench-offline, text side: a MiniLM text zoo, held-out text tasks, measured ground truth, a text selector."""
