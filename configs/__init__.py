"""ml_collections presets: cpu (default), paper (Table 2), bench_tabular, atari."""
