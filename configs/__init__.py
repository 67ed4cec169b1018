"""ml_collections presets: cpu (default), paper (Table 2), gpu (the paper's scaled
to one accelerator), bench_tabular, atari."""
