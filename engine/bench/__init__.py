"""The project's own benchmarks (`engine bench …`)."""
