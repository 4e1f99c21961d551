"""Offline replay of a journal: timelines, why-is-it-stuck, determinism checks."""
