"""Distribution: strategy resolution, Reverb tables, actor processes."""
