"""Run-level entry points: each launcher calls one function here."""
