"""SpiderBench's text zoo (a real MiniLM, its descendants, tiny BERTs) and the text protocol v2 fine-tunes it with."""
